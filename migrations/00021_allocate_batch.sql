-- +goose Up
-- Group commit of allocations (core.Allocator gathers the requests one process makes for one list
-- at the same moment): cg_allocate_batch hands out the codes at the given positions to a batch of
-- recipients in one statement and one transaction, set-based, with the rules of cg_allocate:
--   * each (recipient, campaign) of the batch is distinct (core sends duplicates later, so they
--     meet the first one's hand-out as a sequential caller would) and holds its advisory lock, taken
--     in one order (sorted by key) so that two batches can not deadlock on them;
--   * within the list's reassign window the recipient's earlier code is handed back (reused);
--     that look-up runs once per batch, planned with the batch's values (EXECUTE);
--   * a code is taken only if it is still available at the position (else the answer is 'miss' and
--     core tries again through cg_allocate);
--   * one allocations row per new code, one counter move per batch (one shard row, locked last).
--   * p_link, a redeem link handing the codes out, makes it cg_allocate_once's batch: a recipient
--     gets one code from the link's campaign ever (no window), and the link's hand-out count goes
--     up by the batch's new codes.
-- Each look-up is written so that its only plan is a probe of an index per request (LATERAL …
-- LIMIT 1, the codes by primary key): the planner's row estimates of a list just imported, not yet
-- analysed, say one code, and a join (or seq = ANY) planned on them read the whole list for every
-- batch.
-- Rows come back in the order of the arrays, one per request, with idx its 1-based position.
SET lock_timeout = '10s';

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

-- +goose Down
DROP FUNCTION cg_allocate_batch(uuid, uuid, bigint[], text[], text[], text[], text[], text[], text[], text[], uuid);
