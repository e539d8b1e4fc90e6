-- +goose Up
-- A redeem-link hand-out looks up the recipient's earlier hand-out from the link once, planned on
-- every call (EXECUTE), and cg_allocate, given p_reassign false, skips its reassign-window look-up,
-- which could only find the same (the two run under the same advisory lock).
-- PL/pgSQL keeps, per connection, the generic plan it makes after five calls. Made while
-- allocations was nearly empty and had no statistics (a new installation, a bench after TRUNCATE,
-- autovacuum off), that plan of the look-ups read the merchant's or the list's every allocation
-- through allocations_by_id or the primary key and sorted them, for as long as the pooled
-- connection lived: each hand-out cost more than the one before, and BenchmarkRedeemLinks fell
-- from 2,100 hand-outs/s at the start of a fresh list to 110/s after 50,000 (auto_explain of the
-- gateway's sessions showed the plan). Planned with the call's values on the table as it is, the
-- look-up is one probe of allocations_recipient. The API's allocation keeps its cached plan:
-- planning its look-up on every call halved BenchmarkAllocate.
SET lock_timeout = '10s';
DROP FUNCTION cg_allocate(uuid, uuid, bigint, text, text, text, text, text, text, text);

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

-- +goose Down
SET lock_timeout = '10s';
DROP FUNCTION cg_allocate(uuid, uuid, bigint, text, text, text, text, text, text, text, boolean);

-- +goose StatementBegin
CREATE FUNCTION cg_allocate(
    p_merchant uuid, p_list uuid, p_pos bigint, p_recipient_key text, p_ext text, p_email text,
    p_phone text, p_campaign text, p_channel text, p_actor text,
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

    IF l.reassign_window > 0 THEN
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
    SELECT a.seq INTO v_seq FROM allocations a
     WHERE a.merchant_id = p_merchant AND a.recipient_key = p_recipient_key AND a.list_id = p_list
       AND a.campaign = p_campaign
     ORDER BY a.allocated_at DESC LIMIT 1;
    IF FOUND THEN
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
      FROM cg_allocate(p_merchant, p_list, p_pos, p_recipient_key, p_ext, p_email, p_phone, p_campaign, p_channel, p_actor) r;
    IF outcome = 'ok' AND NOT reused AND p_link IS NOT NULL THEN
        -- Last, so the shard's row lock is held only until the commit (64 shards, made with the
        -- link, as list_counters).
        UPDATE redeem_link_counters k SET handed_out = k.handed_out + 1
         WHERE k.merchant_id = p_merchant AND k.link_id = p_link AND k.shard = v_shard;
    END IF;
END
$fn$;
-- +goose StatementEnd
