-- +goose Up
-- Redemption decisions move into core (issue 15): core.UseLedger.Decide holds every rule (the use
-- limit, a paid order counted once, over-uses recorded, require_issued flagged, the counters a first
-- use moves, the hold a use ends), and the store reads what they are decided on under the codes'
-- row locks and writes the decisions (store/codeuse.go). The functions that decided them in SQL
-- are no longer called. A gateway or worker of the version before still calls them: from the moment
-- this migration runs until it is replaced, its order calls fail (the API answers an error the
-- caller can retry; webhook receipts stay received, and the new workers apply them).
SET lock_timeout = '10s';
DROP FUNCTION cg_apply_webhook_batch(uuid, uuid[], text[], text[], integer[], boolean[], uuid[], bigint[], text[], text[], text[], text[], text[], bigint[], boolean[], text[], text[], jsonb[], jsonb[], text[]);
DROP FUNCTION cg_apply_paid_codes(uuid, uuid[], bigint[], text[], text[], text[], text[], bigint[], boolean[], text[], text[], jsonb[], jsonb[]);
DROP FUNCTION cg_apply_order_code(uuid, text, text, text, text, uuid, bigint, text, bigint, boolean, text, text, jsonb, jsonb, text, smallint);

-- +goose Down
-- The functions as migration 00023 made them, for the version before to call again.
SET lock_timeout = '10s';

-- +goose StatementBegin
CREATE FUNCTION cg_apply_order_code(
    p_merchant uuid, p_platform text, p_shop text, p_order text, p_status text,
    p_list uuid, p_seq bigint, p_kind text, p_use_limit bigint, p_require_issued boolean,
    p_actor text, p_channel text, p_recipient jsonb, p_details jsonb, p_status_event text, p_shard smallint,
    OUT outcome text, OUT uses integer, OUT from_state text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_ref      text := p_platform || ':' || p_shop || ':' || p_order;
    v_counted  boolean;
    v_counts   boolean;
    v_hold     uuid;
    v_state    text;
    v_uses     integer;
    v_details  jsonb := coalesce(p_details, '{}'::jsonb);
BEGIN
    IF p_status <> 'paid' THEN
        INSERT INTO order_codes (merchant_id, platform, shop, order_id, list_id, seq, status)
        VALUES (p_merchant, p_platform, p_shop, p_order, p_list, p_seq, p_status)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            outcome := 'recorded';
            SELECT r.counted INTO v_counted FROM redemptions r
             WHERE r.merchant_id = p_merchant AND r.platform = p_platform AND r.shop = p_shop
               AND r.order_id = p_order AND r.list_id = p_list AND r.seq = p_seq;
            INSERT INTO code_events (merchant_id, list_id, seq, type, actor, channel, recipient, order_ref, details)
            VALUES (p_merchant, p_list, p_seq, p_status_event, p_actor, p_channel, p_recipient, v_ref,
                    v_details || jsonb_build_object('after_redemption', coalesce(v_counted, false)));
        ELSE
            outcome := 'already_recorded';
        END IF;
        SELECT c.uses INTO STRICT uses FROM codes c
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = p_seq;
        RETURN;
    END IF;

    -- The code's row lock first: every (order, code) decision of a code is taken under it, so the
    -- key's insert below meets a committed key or none, and the use it counts is decided with it.
    SELECT c.state, c.uses, c.hold_id INTO STRICT v_state, v_uses, v_hold FROM codes c
     WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = p_seq FOR UPDATE;
    uses := v_uses;
    v_counts := NOT (p_use_limit > 0 AND v_uses >= p_use_limit);
    INSERT INTO redemptions (merchant_id, platform, shop, order_id, list_id, seq, counted, actor)
    VALUES (p_merchant, p_platform, p_shop, p_order, p_list, p_seq, v_counts, p_actor)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- The order and code were decided before: answer that decision again.
        SELECT r.counted INTO STRICT v_counted FROM redemptions r
         WHERE r.merchant_id = p_merchant AND r.platform = p_platform AND r.shop = p_shop
           AND r.order_id = p_order AND r.list_id = p_list AND r.seq = p_seq;
        outcome := CASE WHEN v_counted THEN 'already_counted' ELSE 'over_use' END;
        RETURN;
    END IF;
    IF NOT v_counts THEN
        outcome := 'over_use';
        INSERT INTO code_events (merchant_id, list_id, seq, type, actor, channel, recipient, order_ref, details)
        VALUES (p_merchant, p_list, p_seq, 'over_use', p_actor, p_channel, p_recipient, v_ref,
                v_details || jsonb_build_object('uses', v_uses, 'limit', p_use_limit));
        RETURN;
    END IF;
    IF p_require_issued AND v_state = 'available' THEN
        v_details := v_details || jsonb_build_object('not_issued', true); -- paid with a code never handed out: counted, and flagged
    END IF;
    UPDATE codes c SET uses = c.uses + 1, state = 'redeemed', redeemed_at = coalesce(c.redeemed_at, now()),
           hold_id = NULL, held_until = NULL
     WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = p_seq
    RETURNING c.uses INTO uses;
    -- A hold still running ends with the use. An active hold is always the code's hold_id (a hold
    -- is taken over only once it ran out, and released or redeemed it is cleared with it).
    IF v_hold IS NOT NULL THEN
        UPDATE reservations rv SET ended_at = now(), ended_by = 'redeemed'
         WHERE rv.merchant_id = p_merchant AND rv.id = v_hold AND rv.list_id = p_list AND rv.seq = p_seq
           AND rv.ended_at IS NULL AND rv.expires_at > now();
    END IF;
    IF p_kind = 'unique' AND v_state <> 'redeemed' THEN
        from_state := v_state;
        IF p_shard IS NOT NULL THEN
            UPDATE list_counters lc SET redeemed = lc.redeemed + 1,
                   available = lc.available - CASE WHEN v_state = 'available' THEN 1 ELSE 0 END,
                   delivered = lc.delivered - CASE WHEN v_state = 'delivered' THEN 1 ELSE 0 END
             WHERE lc.merchant_id = p_merchant AND lc.list_id = p_list AND lc.shard = p_shard;
        END IF;
    END IF;
    outcome := 'redeemed';
    INSERT INTO code_events (merchant_id, list_id, seq, type, actor, channel, recipient, order_ref, details)
    VALUES (p_merchant, p_list, p_seq, 'redeemed', p_actor, p_channel, p_recipient, v_ref,
            v_details || jsonb_build_object('use', uses));
END
$fn$;
-- +goose StatementEnd

-- cg_apply_paid_codes is cg_apply_order_code for many paid events at once, each on a code of its
-- own (a code appears once in the arrays): one statement per step for the whole set instead of
-- one call per code. The rules are cg_apply_order_code's, step by step: the codes' row locks (in
-- list and seq order), then the keys with their decisions, the decisions met again, the uses,
-- the holds ended, the timeline events. It moves no counters: from_state says what the caller
-- moves. Rows come back one per element, idx its 1-based position.
-- +goose StatementBegin
CREATE FUNCTION cg_apply_paid_codes(
    p_merchant uuid, p_list uuid[], p_seq bigint[], p_platform text[], p_shop text[], p_order text[],
    p_kind text[], p_use_limit bigint[], p_require_issued boolean[], p_actor text[], p_channel text[],
    p_recipient jsonb[], p_details jsonb[])
RETURNS TABLE (idx integer, outcome text, uses integer, from_state text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_n      integer := cardinality(p_list);
    v_i      integer[];
    v_state  text[];
    v_uses   integer[];
    v_hold   uuid[];
    v_new    integer[];
    v_done   integer[];
    v_used   integer[];
BEGIN
    IF v_n = 0 THEN
        RETURN;
    END IF;
    -- The codes' row locks, in one order, so two sets (or a set and single calls) cannot deadlock
    -- on them.
    SELECT coalesce(array_agg(x.i ORDER BY x.list_id, x.seq), '{}'), array_agg(x.state ORDER BY x.list_id, x.seq),
           array_agg(x.uses ORDER BY x.list_id, x.seq), array_agg(x.hold_id ORDER BY x.list_id, x.seq)
      INTO v_i, v_state, v_uses, v_hold
      FROM (SELECT u.i::integer AS i, c.list_id, c.seq, c.state, c.uses, c.hold_id
              FROM unnest(p_list, p_seq) WITH ORDINALITY AS u(list_id, seq, i)
              JOIN codes c ON c.merchant_id = p_merchant AND c.list_id = u.list_id AND c.seq = u.seq
             ORDER BY c.list_id, c.seq
               FOR UPDATE OF c) x;
    IF cardinality(v_i) <> v_n THEN
        RAISE EXCEPTION 'cg_apply_paid_codes: % of % codes found', cardinality(v_i), v_n USING ERRCODE = 'no_data_found';
    END IF;

    -- The keys, each with its decision: a use counts when one is left. Only the keys inserted
    -- here are decided here.
    WITH ins AS (
        INSERT INTO redemptions (merchant_id, platform, shop, order_id, list_id, seq, counted, actor)
        SELECT p_merchant, p_platform[l.i], p_shop[l.i], p_order[l.i], p_list[l.i], p_seq[l.i],
               NOT (p_use_limit[l.i] > 0 AND l.uses >= p_use_limit[l.i]), p_actor[l.i]
          FROM unnest(v_i, v_uses) AS l(i, uses)
         ORDER BY l.i
        ON CONFLICT DO NOTHING
        RETURNING list_id, seq, counted)
    SELECT coalesce(array_agg(l.i) FILTER (WHERE ins.list_id IS NOT NULL), '{}'),
           coalesce(array_agg(l.i) FILTER (WHERE ins.counted), '{}')
      INTO v_new, v_done
      FROM unnest(v_i) AS l(i)
      LEFT JOIN ins ON ins.list_id = p_list[l.i] AND ins.seq = p_seq[l.i];

    -- The uses, the holds they end.
    WITH counted AS (
        UPDATE codes c SET uses = c.uses + 1, state = 'redeemed', redeemed_at = coalesce(c.redeemed_at, now()),
               hold_id = NULL, held_until = NULL
          FROM unnest(v_done) AS d(i)
         WHERE c.merchant_id = p_merchant AND c.list_id = p_list[d.i] AND c.seq = p_seq[d.i]
        RETURNING d.i, c.uses)
    SELECT array_agg(counted.uses ORDER BY l.ord) INTO v_used
      FROM unnest(v_i) WITH ORDINALITY AS l(i, ord) LEFT JOIN counted ON counted.i = l.i;
    UPDATE reservations rv SET ended_at = now(), ended_by = 'redeemed'
      FROM unnest(v_i, v_hold) AS l(i, hold)
     WHERE l.i = ANY (v_done) AND l.hold IS NOT NULL
       AND rv.merchant_id = p_merchant AND rv.id = l.hold AND rv.list_id = p_list[l.i] AND rv.seq = p_seq[l.i]
       AND rv.ended_at IS NULL AND rv.expires_at > now();

    -- The timeline: a use counted, or a paid order refused for want of a use.
    INSERT INTO code_events (merchant_id, list_id, seq, type, actor, channel, recipient, order_ref, details)
    SELECT p_merchant, p_list[l.i], p_seq[l.i], CASE WHEN l.used IS NOT NULL THEN 'redeemed' ELSE 'over_use' END,
           p_actor[l.i], p_channel[l.i], p_recipient[l.i], p_platform[l.i] || ':' || p_shop[l.i] || ':' || p_order[l.i],
           coalesce(p_details[l.i], '{}'::jsonb) || CASE
               WHEN l.used IS NULL THEN jsonb_build_object('uses', l.uses, 'limit', p_use_limit[l.i])
               WHEN p_require_issued[l.i] AND l.state = 'available' THEN jsonb_build_object('not_issued', true, 'use', l.used)
               ELSE jsonb_build_object('use', l.used) END
      FROM unnest(v_i, v_state, v_uses, v_used) AS l(i, state, uses, used)
     WHERE l.i = ANY (v_new)
     ORDER BY l.i;

    -- A key met again answers the decision its row records (committed: read after the locks).
    RETURN QUERY
    SELECT l.i,
           CASE WHEN l.i = ANY (v_done) THEN 'redeemed'
                WHEN l.i = ANY (v_new) THEN 'over_use'
                WHEN r.counted THEN 'already_counted'
                ELSE 'over_use' END,
           coalesce(l.used, l.uses),
           CASE WHEN l.i = ANY (v_done) AND p_kind[l.i] = 'unique' AND l.state <> 'redeemed' THEN l.state END
      FROM unnest(v_i, v_state, v_uses, v_used) AS l(i, state, uses, used)
      LEFT JOIN redemptions r ON NOT (l.i = ANY (v_new)) AND r.merchant_id = p_merchant AND r.platform = p_platform[l.i]
           AND r.shop = p_shop[l.i] AND r.order_id = p_order[l.i] AND r.list_id = p_list[l.i] AND r.seq = p_seq[l.i]
     ORDER BY l.i;
END
$fn$;
-- +goose StatementEnd

-- cg_apply_webhook_batch applies a batch (or a part of one) of a merchant's stored webhook
-- deliveries in one statement, so its transaction is one round trip and one commit:
--   * it claims those of p_deliveries still received that no other transaction holds (FOR UPDATE
--     SKIP LOCKED) and returns their ids; the others, and their applications, are left alone;
--   * it applies the claimed deliveries' applications (order events on codes, aligned arrays,
--     p_app_delivery the 1-based index of each one's delivery): those marked p_simple (paid, on a
--     code no other application of the batch names) together (cg_apply_paid_codes), then the
--     others one by one in their order (cg_apply_order_code), with the same rules as one at a time;
--   * it records the claimed deliveries' outcomes (p_statuses, p_notes);
--   * last, it moves each list's counters once, on a shard drawn at random, the lists in id order,
--     so a shard's row lock is held only until the commit.
-- +goose StatementBegin
CREATE FUNCTION cg_apply_webhook_batch(
    p_merchant uuid, p_deliveries uuid[], p_statuses text[], p_notes text[],
    p_app_delivery integer[], p_simple boolean[], p_list uuid[], p_seq bigint[], p_platform text[], p_shop text[],
    p_order text[], p_status text[], p_kind text[], p_use_limit bigint[], p_require_issued boolean[], p_actor text[],
    p_channel text[], p_recipient jsonb[], p_details jsonb[], p_status_event text[])
RETURNS SETOF uuid
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_claimed uuid[];
    v_set     integer[];
    v_moved   uuid[] := '{}';
    v_from    text[] := '{}';
    v_state   text;
    v_i       integer;
    v_shard   smallint;
    r         record;
BEGIN
    SELECT coalesce(array_agg(x.id), '{}') INTO v_claimed
      FROM (SELECT d.id FROM webhook_deliveries d
             WHERE d.merchant_id = p_merchant AND d.id = ANY (p_deliveries) AND d.status = 'received'
               FOR UPDATE SKIP LOCKED) x;
    IF cardinality(v_claimed) = 0 THEN
        RETURN;
    END IF;

    -- The paid events on codes of their own, together.
    SELECT coalesce(array_agg(a.i ORDER BY a.i), '{}') INTO v_set
      FROM generate_subscripts(p_app_delivery, 1) AS a(i)
     WHERE p_simple[a.i] AND p_deliveries[p_app_delivery[a.i]] = ANY (v_claimed);
    IF cardinality(v_set) > 0 THEN
        SELECT v_moved || coalesce(array_agg(p_list[v_set[pc.idx]]) FILTER (WHERE pc.from_state IS NOT NULL), '{}'),
               v_from || coalesce(array_agg(pc.from_state) FILTER (WHERE pc.from_state IS NOT NULL), '{}')
          INTO v_moved, v_from
          FROM cg_apply_paid_codes(p_merchant,
                 (SELECT array_agg(p_list[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_seq[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_platform[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_shop[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_order[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_kind[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_use_limit[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_require_issued[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_actor[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_channel[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_recipient[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o)),
                 (SELECT array_agg(p_details[s] ORDER BY o) FROM unnest(v_set) WITH ORDINALITY AS u(s, o))) AS pc;
    END IF;

    -- The others, one by one, in their order.
    FOR v_i IN SELECT a.i FROM generate_subscripts(p_app_delivery, 1) AS a(i)
                WHERE NOT p_simple[a.i] AND p_deliveries[p_app_delivery[a.i]] = ANY (v_claimed) ORDER BY a.i LOOP
        SELECT oc.from_state INTO v_state FROM cg_apply_order_code(p_merchant, p_platform[v_i], p_shop[v_i], p_order[v_i],
               p_status[v_i], p_list[v_i], p_seq[v_i], p_kind[v_i], p_use_limit[v_i], p_require_issued[v_i], p_actor[v_i],
               p_channel[v_i], p_recipient[v_i], p_details[v_i], p_status_event[v_i], NULL) AS oc;
        IF v_state IS NOT NULL THEN
            v_moved := v_moved || p_list[v_i];
            v_from := v_from || v_state;
        END IF;
    END LOOP;

    UPDATE webhook_deliveries d SET status = p_statuses[u.o], error = p_notes[u.o], processed_at = clock_timestamp()
      FROM unnest(p_deliveries) WITH ORDINALITY AS u(id, o)
     WHERE d.merchant_id = p_merchant AND d.id = u.id AND u.id = ANY (v_claimed);

    FOR r IN SELECT m.list_id, count(*) AS redeemed, count(*) FILTER (WHERE m.state = 'available') AS available,
                    count(*) FILTER (WHERE m.state = 'delivered') AS delivered
               FROM unnest(v_moved, v_from) AS m(list_id, state) GROUP BY m.list_id ORDER BY m.list_id LOOP
        v_shard := floor(random() * 64)::smallint;
        UPDATE list_counters lc SET redeemed = lc.redeemed + r.redeemed, available = lc.available - r.available,
               delivered = lc.delivered - r.delivered
         WHERE lc.merchant_id = p_merchant AND lc.list_id = r.list_id AND lc.shard = v_shard;
    END LOOP;

    RETURN QUERY SELECT unnest(v_claimed);
END
$fn$;
-- +goose StatementEnd
