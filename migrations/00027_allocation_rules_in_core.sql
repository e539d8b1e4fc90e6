-- +goose Up
-- Allocation decisions move into core (issue 15): core.AllocationLedger.Decide holds every rule (a
-- list's start, end and archive, the reassign window, a redeem link's one code ever, a fixed list's
-- max_assignments, which code is issuable now, how the counts move), and the store reads what they
-- are decided on under the recipients' advisory locks and the codes' row locks and writes the
-- decisions (store/allocation.go). The functions that decided them in SQL are no longer called. A
-- gateway or worker of the version before still calls them: from the moment this migration runs
-- until it is replaced, its allocations fail (the API answers an error the caller can retry; a
-- message waiting for its code is tried again by the new workers). cg_deliver_chunk (00024), a bulk
-- send's set-based statement, keeps its own copy of the rules.
SET lock_timeout = '10s';
DROP FUNCTION cg_allocate_batch(uuid, uuid, bigint[], text[], text[], text[], text[], text[], text[], text[], uuid);
DROP FUNCTION cg_allocate_once(uuid, uuid, bigint, text, text, text, text, text, text, text, uuid);
DROP FUNCTION cg_allocate(uuid, uuid, bigint, text, text, text, text, text, text, text, boolean);

-- +goose Down
-- The functions as migrations 00020 and 00021 made them, for the version before to call again.
SET lock_timeout = '10s';

-- +goose StatementBegin
CREATE FUNCTION cg_allocate(
    p_merchant uuid, p_list uuid, p_pos bigint, p_recipient_key text, p_ext text, p_email text,
    p_phone text, p_campaign text, p_channel text, p_actor text, p_reassign boolean DEFAULT true,
    OUT outcome text, OUT seq bigint, OUT code text, OUT expires_at timestamptz, OUT reused boolean,
    OUT available bigint, OUT next_seq bigint, OUT low_stock_threshold bigint, OUT stock_state text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    l       code_lists%ROWTYPE;
    v_now   timestamptz := now();
    v_seq   bigint;
    v_code  text;
    v_till  timestamptz;
    v_valid_for bigint;
    v_delivered timestamptz;
    v_count bigint;
    v_shard smallint := floor(random() * 64)::smallint;
BEGIN
    reused := false;
    SELECT cl.kind, cl.max_assignments, cl.starts_at, cl.expires_at, cl.archived_at, cl.reassign_window, cl.next_seq, cl.valid_for,
           cl.low_stock_threshold, cl.stock_state
      INTO l.kind, l.max_assignments, l.starts_at, l.expires_at, l.archived_at, l.reassign_window, l.next_seq, v_valid_for,
           l.low_stock_threshold, l.stock_state
      FROM code_lists cl WHERE cl.merchant_id = p_merchant AND cl.id = p_list;
    IF NOT FOUND THEN
        outcome := 'list_not_found';
        RETURN;
    END IF;
    next_seq := l.next_seq;
    low_stock_threshold := l.low_stock_threshold;
    stock_state := l.stock_state;
    IF l.archived_at IS NOT NULL THEN outcome := 'list_archived';
    ELSIF l.starts_at IS NOT NULL AND l.starts_at > v_now THEN outcome := 'list_not_started';
    ELSIF l.expires_at IS NOT NULL AND l.expires_at <= v_now THEN outcome := 'list_expired';
    END IF;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock(hashtextextended(p_list::text || '|' || p_recipient_key || '|' || p_campaign, 0));

    IF p_reassign AND l.reassign_window > 0 THEN
        SELECT a.seq INTO v_seq FROM allocations a
         WHERE a.merchant_id = p_merchant AND a.recipient_key = p_recipient_key AND a.list_id = p_list
           AND a.campaign = p_campaign AND a.allocated_at > v_now - make_interval(secs => l.reassign_window)
         ORDER BY a.allocated_at DESC LIMIT 1;
        IF FOUND THEN
            SELECT c.code, c.available_till, c.delivered_at INTO v_code, v_till, v_delivered FROM codes c
             WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = v_seq;
            outcome := 'ok';
            seq := v_seq;
            code := v_code;
            expires_at := cg_code_expires_at(l.expires_at, v_till, v_delivered, v_valid_for);
            reused := true;
            RETURN;
        END IF;
    END IF;

    IF l.kind = 'fixed' THEN
        -- The one shared code: its row lock serialises assignments, so max_assignments holds.
        SELECT c.seq, c.code, c.available_till INTO v_seq, v_code, v_till FROM codes c
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = 1 FOR UPDATE;
        SELECT coalesce(sum(lc.delivered), 0) INTO v_count FROM list_counters lc
         WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list;
        IF l.max_assignments > 0 AND v_count >= l.max_assignments THEN
            outcome := 'list_exhausted';
            available := 0::bigint;
            RETURN;
        END IF;
        UPDATE codes c SET state = CASE WHEN c.state = 'available' THEN 'delivered' ELSE c.state END,
               delivered_at = coalesce(c.delivered_at, v_now)
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = 1;
        UPDATE list_counters lc SET delivered = lc.delivered + 1,
               available = lc.available - CASE WHEN l.max_assignments > 0 AND v_count + 1 >= l.max_assignments THEN 1 ELSE 0 END
         WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list AND lc.shard = 0;
    ELSE
        IF p_pos IS NULL THEN
            SELECT coalesce(sum(lc.available), 0) INTO v_count FROM list_counters lc
             WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list;
            IF v_count > 0 THEN
                SELECT c.seq INTO v_seq FROM codes c
                 WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.state = 'available'
                   AND (c.issue_start IS NULL OR c.issue_start <= v_now) AND (c.issue_end IS NULL OR c.issue_end > v_now)
                   AND (c.available_till IS NULL OR c.available_till > v_now)
                   AND (c.hold_id IS NULL OR c.held_until <= v_now)
                 ORDER BY c.seq LIMIT 1 FOR UPDATE SKIP LOCKED;
            END IF;
            IF v_seq IS NULL THEN
                outcome := 'list_exhausted';
                available := v_count;
                RETURN;
            END IF;
        ELSE
            v_seq := p_pos;
        END IF;
        UPDATE codes c SET state = 'delivered', delivered_at = v_now, recipient_external_id = p_ext,
               recipient_email = p_email, recipient_phone = p_phone, campaign = p_campaign
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = v_seq AND c.state = 'available'
           AND (c.issue_start IS NULL OR c.issue_start <= v_now) AND (c.issue_end IS NULL OR c.issue_end > v_now)
           AND (c.available_till IS NULL OR c.available_till > v_now)
           AND (c.hold_id IS NULL OR c.held_until <= v_now)
        RETURNING c.code, c.available_till INTO v_code, v_till;
        IF NOT FOUND THEN
            outcome := 'miss';
            RETURN;
        END IF;
    END IF;

    INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, recipient_external_id, recipient_email,
                             recipient_phone, campaign, channel, actor, allocated_at)
    VALUES (p_merchant, p_list, v_seq, p_recipient_key, p_ext, p_email, p_phone, p_campaign, p_channel, p_actor, v_now);

    IF l.kind = 'fixed' THEN
        SELECT coalesce(sum(lc.available), 0) INTO v_count FROM list_counters lc
         WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list;
    ELSE
        -- The exact available count (64 rows) only near the tail of the list, where a stock crossing
        -- can be: positions ahead of this one bound the codes left. Elsewhere NULL; the sweeper
        -- re-checks every list's stock state in any case.
        v_count := NULL;
        IF p_pos IS NULL OR l.next_seq - v_seq <= l.low_stock_threshold + 1024 THEN
            SELECT coalesce(sum(lc.available), 0) - 1 INTO v_count FROM list_counters lc
             WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list;
        END IF;
        -- Last, so the shard's row lock is held only until the commit.
        UPDATE list_counters lc SET available = lc.available - 1, delivered = lc.delivered + 1
         WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list AND lc.shard = v_shard;
    END IF;
    outcome := 'ok';
    seq := v_seq;
    code := v_code;
    expires_at := cg_code_expires_at(l.expires_at, v_till, v_now, v_valid_for);
    available := v_count;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION cg_allocate_once(
    p_merchant uuid, p_list uuid, p_pos bigint, p_recipient_key text, p_ext text, p_email text,
    p_phone text, p_campaign text, p_channel text, p_actor text, p_link uuid,
    OUT outcome text, OUT seq bigint, OUT code text, OUT expires_at timestamptz, OUT reused boolean,
    OUT available bigint, OUT next_seq bigint, OUT low_stock_threshold bigint, OUT stock_state text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_seq   bigint;
    v_shard smallint := floor(random() * 64)::smallint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_list::text || '|' || p_recipient_key || '|' || p_campaign, 0));
    -- Planned on every call (EXECUTE), so allocations_recipient serves it (00020).
    EXECUTE 'SELECT a.seq FROM allocations a
              WHERE a.merchant_id = $1 AND a.recipient_key = $2 AND a.list_id = $3 AND a.campaign = $4
              ORDER BY a.allocated_at DESC LIMIT 1'
       INTO v_seq USING p_merchant, p_recipient_key, p_list, p_campaign;
    IF v_seq IS NOT NULL THEN
        SELECT c.code, cg_code_expires_at(l.expires_at, c.available_till, c.delivered_at, l.valid_for),
               l.next_seq, l.low_stock_threshold, l.stock_state
          INTO code, expires_at, next_seq, low_stock_threshold, stock_state
          FROM codes c JOIN code_lists l ON l.merchant_id = c.merchant_id AND l.id = c.list_id
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = v_seq;
        IF FOUND THEN
            outcome := 'ok';
            seq := v_seq;
            reused := true;
            RETURN;
        END IF;
    END IF;
    SELECT r.outcome, r.seq, r.code, r.expires_at, r.reused, r.available, r.next_seq, r.low_stock_threshold, r.stock_state
      INTO outcome, seq, code, expires_at, reused, available, next_seq, low_stock_threshold, stock_state
      FROM cg_allocate(p_merchant, p_list, p_pos, p_recipient_key, p_ext, p_email, p_phone, p_campaign, p_channel, p_actor, false) r;
    IF outcome = 'ok' AND NOT reused AND p_link IS NOT NULL THEN
        -- Last, so the shard's row lock is held only until the commit (64 shards, made with the
        -- link, as list_counters).
        UPDATE redeem_link_counters k SET handed_out = k.handed_out + 1
         WHERE k.merchant_id = p_merchant AND k.link_id = p_link AND k.shard = v_shard;
    END IF;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION cg_allocate_batch(
    p_merchant uuid, p_list uuid, p_pos bigint[], p_keys text[], p_ext text[], p_email text[],
    p_phone text[], p_campaign text[], p_channel text[], p_actor text[], p_link uuid DEFAULT NULL)
RETURNS TABLE (idx integer, outcome text, seq bigint, code text, expires_at timestamptz, reused boolean,
               available bigint, next_seq bigint, low_stock_threshold bigint, stock_state text,
               reassign_window integer)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    l            record;
    v_now        timestamptz := now();
    v_n          integer := cardinality(p_keys);
    v_refusal    text;
    v_old_idx    integer[] := '{}';
    v_old_seq    bigint[];
    v_old_code   text[];
    v_old_exp    timestamptz[];
    v_new_idx    integer[] := '{}';
    v_new_seq    bigint[] := '{}';
    v_new_code   text[] := '{}';
    v_new_till   timestamptz[] := '{}';
    v_code       text;
    v_till       timestamptz;
    v_count      bigint;
    v_shard      smallint := floor(random() * 64)::smallint;
BEGIN
    SELECT cl.kind, cl.max_assignments, cl.starts_at, cl.expires_at, cl.archived_at, cl.reassign_window,
           cl.next_seq, cl.valid_for, cl.low_stock_threshold, cl.stock_state
      INTO l FROM code_lists cl WHERE cl.merchant_id = p_merchant AND cl.id = p_list;
    IF NOT FOUND THEN
        RETURN QUERY SELECT i, 'list_not_found', NULL::bigint, NULL::text, NULL::timestamptz, false, NULL::bigint,
                            NULL::bigint, NULL::bigint, NULL::text, 0 FROM generate_series(1, v_n) i;
        RETURN;
    ELSIF l.archived_at IS NOT NULL THEN v_refusal := 'list_archived';
    ELSIF l.starts_at IS NOT NULL AND l.starts_at > v_now THEN v_refusal := 'list_not_started';
    ELSIF l.expires_at IS NOT NULL AND l.expires_at <= v_now THEN v_refusal := 'list_expired';
    END IF;
    -- A redeem link hands a recipient's code back even from a list that no longer hands out new
    -- ones (as cg_allocate_once does): its refusal waits for the look-up.
    IF v_refusal IS NOT NULL AND p_link IS NULL THEN
        RETURN QUERY SELECT i, v_refusal, NULL::bigint, NULL::text, NULL::timestamptz, false, NULL::bigint,
                            l.next_seq, l.low_stock_threshold::bigint, l.stock_state::text, l.reassign_window
                       FROM generate_series(1, v_n) i;
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock(s.k)
       FROM (SELECT DISTINCT hashtextextended(p_list::text || '|' || u.k || '|' || u.c, 0) AS k
               FROM unnest(p_keys, p_campaign) AS u(k, c) ORDER BY 1) s;

    IF l.kind = 'fixed' THEN
        -- The one shared code is serialised by its row lock in cg_allocate; batches of a fixed list
        -- only save the round trips and the commits.
        IF p_link IS NULL THEN
            RETURN QUERY SELECT u.i::integer, r.outcome, r.seq, r.code, r.expires_at, r.reused, r.available,
                                r.next_seq, r.low_stock_threshold, r.stock_state, l.reassign_window
              FROM generate_series(1, v_n) AS u(i)
              CROSS JOIN LATERAL cg_allocate(p_merchant, p_list, NULL, p_keys[u.i], p_ext[u.i], p_email[u.i],
                                             p_phone[u.i], p_campaign[u.i], p_channel[u.i], p_actor[u.i]) r
             ORDER BY u.i;
        ELSE
            RETURN QUERY SELECT u.i::integer, r.outcome, r.seq, r.code, r.expires_at, r.reused, r.available,
                                r.next_seq, r.low_stock_threshold, r.stock_state, l.reassign_window
              FROM generate_series(1, v_n) AS u(i)
              CROSS JOIN LATERAL cg_allocate_once(p_merchant, p_list, NULL, p_keys[u.i], p_ext[u.i], p_email[u.i],
                                                  p_phone[u.i], p_campaign[u.i], p_channel[u.i], p_actor[u.i], p_link) r
             ORDER BY u.i;
        END IF;
        RETURN;
    END IF;

    IF l.reassign_window > 0 OR p_link IS NOT NULL THEN
        EXECUTE 'SELECT coalesce(array_agg(u.i), ''{}''), array_agg(c.seq), array_agg(c.code),
                        array_agg(cg_code_expires_at($6, c.available_till, c.delivered_at, $7))
                   FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(k, c, i)
                   CROSS JOIN LATERAL (
                        SELECT a.seq FROM allocations a
                         WHERE a.merchant_id = $3 AND a.recipient_key = u.k AND a.list_id = $4
                           AND a.campaign = u.c AND ($5::timestamptz IS NULL OR a.allocated_at > $5)
                         ORDER BY a.allocated_at DESC LIMIT 1) prior
                   CROSS JOIN LATERAL (
                        SELECT c.seq, c.code, c.available_till, c.delivered_at FROM codes c
                         WHERE c.merchant_id = $3 AND c.list_id = $4 AND c.seq = prior.seq LIMIT 1) c'
           INTO v_old_idx, v_old_seq, v_old_code, v_old_exp
          USING p_keys, p_campaign, p_merchant, p_list,
                CASE WHEN p_link IS NULL THEN v_now - make_interval(secs => l.reassign_window) END,
                l.expires_at, l.valid_for;
    END IF;

    -- Each code is taken by its primary key, the one plan no row estimate can spoil; the
    -- allocation rows then go in as one INSERT.
    FOR i IN 1 .. v_n LOOP
        CONTINUE WHEN i = ANY (v_old_idx) OR v_refusal IS NOT NULL;
        UPDATE codes c SET state = 'delivered', delivered_at = v_now, recipient_external_id = p_ext[i],
               recipient_email = p_email[i], recipient_phone = p_phone[i], campaign = p_campaign[i]
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = p_pos[i] AND c.state = 'available'
           AND (c.issue_start IS NULL OR c.issue_start <= v_now) AND (c.issue_end IS NULL OR c.issue_end > v_now)
           AND (c.available_till IS NULL OR c.available_till > v_now)
           AND (c.hold_id IS NULL OR c.held_until <= v_now)
        RETURNING c.code, c.available_till INTO v_code, v_till;
        IF FOUND THEN
            v_new_idx := v_new_idx || i;
            v_new_seq := v_new_seq || p_pos[i];
            v_new_code := v_new_code || v_code;
            v_new_till := v_new_till || v_till;
        END IF;
    END LOOP;
    INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, recipient_external_id, recipient_email,
                             recipient_phone, campaign, channel, actor, allocated_at)
    SELECT p_merchant, p_list, p_pos[n.i], p_keys[n.i], p_ext[n.i], p_email[n.i], p_phone[n.i], p_campaign[n.i],
           p_channel[n.i], p_actor[n.i], v_now
      FROM unnest(v_new_idx) AS n(i);

    IF cardinality(v_new_idx) > 0 THEN
        -- The exact available count (64 rows) only near the tail of the list, where a stock crossing
        -- can be, as in cg_allocate; each new code answers the count left after it.
        IF l.next_seq - (SELECT min(s) FROM unnest(v_new_seq) s) <= l.low_stock_threshold + 1024 + v_n THEN
            SELECT coalesce(sum(lc.available), 0) INTO v_count FROM list_counters lc
             WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list;
        END IF;
        -- Last, so the shard's row lock is held only until the commit.
        UPDATE list_counters lc SET available = lc.available - cardinality(v_new_idx),
               delivered = lc.delivered + cardinality(v_new_idx)
         WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list AND lc.shard = v_shard;
        IF p_link IS NOT NULL THEN
            UPDATE redeem_link_counters k SET handed_out = k.handed_out + cardinality(v_new_idx)
             WHERE k.merchant_id = p_merchant AND k.link_id = p_link AND k.shard = v_shard;
        END IF;
    END IF;

    RETURN QUERY
    SELECT u.i::integer,
           CASE WHEN o.i IS NOT NULL OR n.i IS NOT NULL THEN 'ok' ELSE coalesce(v_refusal, 'miss') END,
           coalesce(o.seq, n.seq), coalesce(o.code, n.code),
           CASE WHEN o.i IS NOT NULL THEN o.exp
                WHEN n.i IS NOT NULL THEN cg_code_expires_at(l.expires_at, n.till, v_now, l.valid_for) END,
           o.i IS NOT NULL,
           CASE WHEN n.i IS NOT NULL THEN v_count - n.rank END,
           l.next_seq, l.low_stock_threshold::bigint, l.stock_state::text, l.reassign_window
      FROM generate_series(1, v_n) AS u(i)
      LEFT JOIN unnest(v_old_idx, v_old_seq, v_old_code, v_old_exp) AS o(i, seq, code, exp) ON o.i = u.i
      LEFT JOIN unnest(v_new_idx, v_new_seq, v_new_code, v_new_till) WITH ORDINALITY AS n(i, seq, code, till, rank)
             ON n.i = u.i
     ORDER BY u.i;
END
$fn$;
-- +goose StatementEnd
