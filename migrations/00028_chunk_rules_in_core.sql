-- +goose Up
-- A bulk send's chunk is decided in core (issue 15): core.DecideChunk refuses a chunk of a list
-- that hands out nothing, lets a recipient with a delivery keep it and decides every other one as
-- an allocation is (core.AllocationLedger.Decide); the store reads what it is decided on under the
-- recipients' advisory locks and the codes' row locks and writes the decision (store/
-- deliverychunk.go). cg_deliver_chunk, the last SQL function that decided hand-outs, is no longer
-- called. A worker of the version before still calls it: from the moment this migration runs
-- until it is replaced, its bulk sends' chunks fail, and their tasks are retried (by the new
-- workers, from the job's checkpoint; a chunk makes no delivery twice).
SET lock_timeout = '10s';
DROP FUNCTION cg_deliver_chunk(uuid, uuid, uuid, text, uuid, text, text, bigint, uuid[], text[], text[], text[], text[], jsonb[], timestamptz);

-- +goose Down
-- The function as migration 00024 made it, for the version before to call again.
SET lock_timeout = '10s';

-- +goose StatementBegin
CREATE FUNCTION cg_deliver_chunk(
    p_merchant uuid, p_list uuid, p_job uuid, p_channel text, p_template uuid, p_campaign text, p_actor text,
    p_start bigint, p_ids uuid[], p_keys text[], p_ext text[], p_email text[], p_phone text[], p_recipients jsonb[],
    p_created timestamptz)
RETURNS TABLE (idx integer, id uuid, status text, seq bigint, code text, error text, created boolean, outcome text,
               available bigint, low_stock_threshold bigint, stock_state text, last_seq bigint)
LANGUAGE plpgsql
-- The static statements are planned once per connection (a job's chunks spread over a pool's
-- connections, so the five custom plans PostgreSQL makes first were most of them); the look-ups
-- that depend on the chunk's values are EXECUTEd, planned with them.
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
    l          record;
    v_now      timestamptz := now();
    v_n        integer := cardinality(p_keys);
    v_refusal  text;
    v_found    integer[];
    v_f_id     uuid[];
    v_f_status text[];
    v_f_seq    bigint[];
    v_f_code   text[];
    v_f_error  text[];
    v_made     integer[];
    v_m_status text[];
    v_m_seq    bigint[];
    v_m_code   text[];
    v_need     integer[];
    v_old_idx  integer[] := '{}';
    v_old_seq  bigint[] := '{}';
    v_old_code text[] := '{}';
    v_pick     bigint[] := '{}';
    v_more     bigint[];
    v_new_idx  integer[] := '{}';
    v_new_seq  bigint[] := '{}';
    v_new_code text[] := '{}';
    v_k        integer := 0;
    v_count    bigint;
    v_last     bigint;
    v_sort     text;
    v_fixed    record;
    v_avail    bigint;
    v_shard    smallint := floor(random() * 64)::smallint;
BEGIN
    SELECT cl.kind, cl.max_assignments, cl.starts_at, cl.expires_at, cl.archived_at, cl.reassign_window,
           cl.low_stock_threshold, cl.stock_state
      INTO l FROM code_lists cl WHERE cl.merchant_id = p_merchant AND cl.id = p_list;
    IF NOT FOUND THEN
        v_refusal := 'list_not_found';
    ELSIF l.archived_at IS NOT NULL THEN v_refusal := 'list_archived';
    ELSIF l.starts_at IS NOT NULL AND l.starts_at > v_now THEN v_refusal := 'list_not_started';
    ELSIF l.expires_at IS NOT NULL AND l.expires_at <= v_now THEN v_refusal := 'list_expired';
    END IF;
    IF v_refusal IS NOT NULL THEN
        RETURN QUERY SELECT i, NULL::uuid, NULL::text, NULL::bigint, NULL::text, NULL::text, false, v_refusal,
                            NULL::bigint, NULL::bigint, NULL::text, NULL::bigint
                       FROM generate_series(1, v_n) i;
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock(s.k)
       FROM (SELECT DISTINCT hashtextextended(p_list::text || '|' || u.k || '|' || p_campaign, 0) AS k
               FROM unnest(p_keys) AS u(k) ORDER BY 1) s;

    -- Recipients with a delivery already (a rerun of the chunk, a request made before): one probe
    -- of the deliveries' unique key each (LIMIT 1 keeps it a probe whatever the statistics say).
    SELECT coalesce(array_agg(u.i::integer ORDER BY u.i), '{}'), coalesce(array_agg(d.id ORDER BY u.i), '{}'),
           coalesce(array_agg(d.status ORDER BY u.i), '{}'), coalesce(array_agg(d.seq ORDER BY u.i), '{}'),
           coalesce(array_agg(d.code ORDER BY u.i), '{}'), coalesce(array_agg(d.error ORDER BY u.i), '{}')
      INTO v_found, v_f_id, v_f_status, v_f_seq, v_f_code, v_f_error
      FROM unnest(p_keys) WITH ORDINALITY u(k, i)
     CROSS JOIN LATERAL (SELECT d.id, d.status, d.seq, d.code, d.error FROM deliveries d
                          WHERE d.merchant_id = p_merchant AND d.list_id = p_list AND d.channel = p_channel
                            AND d.recipient_key = u.k AND d.campaign = p_campaign LIMIT 1) d;

    -- Within the reassign window a recipient's earlier code, planned with the chunk's values
    -- (EXECUTE), as cg_allocate's look-up is since 00020, and with sorts off: only
    -- allocations_recipient gives the newest first without one, so the probe stays a probe even
    -- while allocations has no statistics yet (a new table a job fills faster than autovacuum
    -- analyzes it), when the primary key's range of the list looks as cheap.
    IF l.reassign_window > 0 THEN
        v_sort := current_setting('enable_sort');
        PERFORM set_config('enable_sort', 'off', true);
        EXECUTE 'SELECT coalesce(array_agg(u.i ORDER BY u.i), ''{}''), coalesce(array_agg(a.seq ORDER BY u.i), ''{}''),
                        coalesce(array_agg(c.code ORDER BY u.i), ''{}'')
                   FROM unnest($1::text[]) WITH ORDINALITY u(k, i)
                   CROSS JOIN LATERAL (SELECT a.seq FROM allocations a
                                        WHERE a.merchant_id = $2 AND a.recipient_key = u.k AND a.list_id = $3 AND a.campaign = $4
                                          AND a.allocated_at > $5
                                        ORDER BY a.allocated_at DESC LIMIT 1) a
                   JOIN codes c ON c.merchant_id = $2 AND c.list_id = $3 AND c.seq = a.seq
                  WHERE u.i <> ALL ($6)'
           INTO v_old_idx, v_old_seq, v_old_code
          USING p_keys, p_merchant, p_list, p_campaign, v_now - make_interval(secs => l.reassign_window), v_found;
        PERFORM set_config('enable_sort', v_sort, true);
    END IF;

    SELECT coalesce(array_agg(i ORDER BY i), '{}') INTO v_need FROM generate_series(1, v_n) i
     WHERE i <> ALL (v_found) AND i <> ALL (v_old_idx);

    IF cardinality(v_need) > 0 AND l.kind = 'fixed' THEN
        -- The one shared code: its row lock serialises hand-outs, so max_assignments holds.
        SELECT c.seq, c.code INTO v_fixed FROM codes c
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = 1 FOR UPDATE;
        IF FOUND THEN
            SELECT coalesce(sum(lc.delivered), 0) INTO v_count FROM list_counters lc
             WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list;
            v_k := cardinality(v_need);
            IF l.max_assignments > 0 THEN
                v_k := greatest(0, least(v_k, l.max_assignments - v_count));
            END IF;
            IF v_k > 0 THEN
                UPDATE codes c SET state = CASE WHEN c.state = 'available' THEN 'delivered' ELSE c.state END,
                       delivered_at = coalesce(c.delivered_at, v_now)
                 WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = 1;
                v_new_idx := v_need[1:v_k];
                v_new_seq := array_fill(1::bigint, ARRAY[v_k]);
                v_new_code := array_fill(v_fixed.code::text, ARRAY[v_k]);
            END IF;
        END IF;
    ELSIF cardinality(v_need) > 0 THEN
        EXECUTE 'SELECT coalesce(array_agg(s.seq ORDER BY s.seq), ''{}'') FROM (
                   SELECT c.seq FROM codes c
                    WHERE c.merchant_id = $1 AND c.list_id = $2 AND c.seq >= $3 AND c.state = ''available''
                      AND (c.issue_start IS NULL OR c.issue_start <= $4) AND (c.issue_end IS NULL OR c.issue_end > $4)
                      AND (c.available_till IS NULL OR c.available_till > $4)
                      AND (c.hold_id IS NULL OR c.held_until <= $4)
                    ORDER BY c.seq LIMIT $5 FOR UPDATE SKIP LOCKED) s'
           INTO v_pick USING p_merchant, p_list, coalesce(p_start, 1), v_now, cardinality(v_need);
        IF cardinality(v_pick) < cardinality(v_need) AND coalesce(p_start, 1) > 1 THEN
            -- Short after the chunk's range: the codes left before it (holes other processes left).
            EXECUTE 'SELECT coalesce(array_agg(s.seq ORDER BY s.seq), ''{}'') FROM (
                       SELECT c.seq FROM codes c
                        WHERE c.merchant_id = $1 AND c.list_id = $2 AND c.seq < $3 AND c.state = ''available''
                          AND (c.issue_start IS NULL OR c.issue_start <= $4) AND (c.issue_end IS NULL OR c.issue_end > $4)
                          AND (c.available_till IS NULL OR c.available_till > $4)
                          AND (c.hold_id IS NULL OR c.held_until <= $4)
                        ORDER BY c.seq LIMIT $5 FOR UPDATE SKIP LOCKED) s'
               INTO v_more USING p_merchant, p_list, p_start, v_now, cardinality(v_need) - cardinality(v_pick);
            v_pick := v_more || v_pick;
        END IF;
        v_k := cardinality(v_pick);
        IF v_k > 0 THEN
            -- The k-th code picked goes to the k-th recipient in need (seq = ANY: one probe of the
            -- primary key per code, whatever the statistics say).
            WITH upd AS (
                UPDATE codes c SET state = 'delivered', delivered_at = v_now,
                       recipient_external_id = p_ext[v_need[array_position(v_pick, c.seq)]],
                       recipient_email = p_email[v_need[array_position(v_pick, c.seq)]],
                       recipient_phone = p_phone[v_need[array_position(v_pick, c.seq)]], campaign = p_campaign
                 WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = ANY (v_pick) AND c.state = 'available'
                RETURNING v_need[array_position(v_pick, c.seq)] AS i, c.seq, c.code
            )
            SELECT coalesce(array_agg(upd.i ORDER BY upd.i), '{}'), coalesce(array_agg(upd.seq ORDER BY upd.i), '{}'),
                   coalesce(array_agg(upd.code ORDER BY upd.i), '{}')
              INTO v_new_idx, v_new_seq, v_new_code FROM upd;
            v_k := cardinality(v_new_idx);
        END IF;
    END IF;

    IF v_k > 0 THEN
        INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, recipient_external_id, recipient_email,
                                 recipient_phone, campaign, channel, actor, allocated_at)
        SELECT p_merchant, p_list, n.s, p_keys[n.i], p_ext[n.i], p_email[n.i], p_phone[n.i], p_campaign, p_channel, p_actor, v_now
          FROM unnest(v_new_idx, v_new_seq) AS n(i, s);
    END IF;

    WITH made AS (
        INSERT INTO deliveries (merchant_id, id, list_id, job_id, channel, template_id, campaign, recipient_key, recipient,
                                status, seq, code, created_at)
        SELECT p_merchant, p_ids[u.i], p_list, p_job, p_channel, p_template, p_campaign, p_keys[u.i], p_recipients[u.i],
               CASE WHEN g.s IS NULL THEN 'waiting' ELSE 'queued' END, g.s, g.c, p_created
          FROM generate_series(1, v_n) u(i)
          LEFT JOIN (SELECT * FROM unnest(v_old_idx, v_old_seq, v_old_code)
                     UNION ALL
                     SELECT * FROM unnest(v_new_idx, v_new_seq, v_new_code)) AS g(i, s, c) ON g.i = u.i
         WHERE u.i <> ALL (v_found)
            ON CONFLICT (merchant_id, list_id, channel, recipient_key, campaign) DO NOTHING
        RETURNING id, status, seq, code
    )
    SELECT coalesce(array_agg(x.i::integer ORDER BY x.i), '{}'), coalesce(array_agg(made.status ORDER BY x.i), '{}'),
           coalesce(array_agg(made.seq ORDER BY x.i), '{}'), coalesce(array_agg(made.code ORDER BY x.i), '{}')
      INTO v_made, v_m_status, v_m_seq, v_m_code
      FROM made JOIN unnest(p_ids) WITH ORDINALITY x(id, i) ON x.id = made.id;

    SELECT coalesce(sum(lc.available), 0) INTO v_avail FROM list_counters lc
     WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list;
    IF v_k > 0 THEN
        -- As cg_allocate counts it: a fixed list's code leaves the available count with its last
        -- permitted hand-out.
        IF l.kind = 'fixed' THEN
            v_count := CASE WHEN l.max_assignments > 0 AND v_count < l.max_assignments AND v_count + v_k >= l.max_assignments
                            THEN 1 ELSE 0 END;
            v_shard := 0;
        ELSE
            v_count := v_k;
        END IF;
        v_avail := v_avail - v_count;
        -- Last, so the shard's row lock is held only until the commit.
        UPDATE list_counters lc SET available = lc.available - v_count, delivered = lc.delivered + v_k
         WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list AND lc.shard = v_shard;
    END IF;

    v_last := (SELECT max(x) FROM unnest(v_new_seq) x);
    RETURN QUERY
        SELECT f.i, f.id, f.status, f.seq, f.code, f.error, false, 'ok'::text, v_avail, l.low_stock_threshold::bigint,
               l.stock_state::text, v_last
          FROM unnest(v_found, v_f_id, v_f_status, v_f_seq, v_f_code, v_f_error) AS f(i, id, status, seq, code, error)
        UNION ALL
        SELECT m.i, p_ids[m.i], m.status, m.seq, m.code, ''::text, true, 'ok'::text, v_avail, l.low_stock_threshold::bigint,
               l.stock_state::text, v_last
          FROM unnest(v_made, v_m_status, v_m_seq, v_m_code) AS m(i, status, seq, code)
        UNION ALL
        -- A delivery a concurrent request stored first (its INSERT met the unique key): as it is.
        SELECT u.i, d.id, d.status, d.seq, d.code, d.error, false, 'ok'::text, v_avail, l.low_stock_threshold::bigint,
               l.stock_state::text, v_last
          FROM generate_series(1, v_n) u(i)
         CROSS JOIN LATERAL (SELECT d.id, d.status, d.seq, d.code, d.error FROM deliveries d
                              WHERE d.merchant_id = p_merchant AND d.list_id = p_list AND d.channel = p_channel
                                AND d.recipient_key = p_keys[u.i] AND d.campaign = p_campaign LIMIT 1) d
         WHERE u.i <> ALL (v_found) AND u.i <> ALL (v_made);
END
$fn$;
-- +goose StatementEnd
