-- +goose Up
-- Distribution and redemption: storefront holds, order events and redemptions, and the allocation
-- statement.
SET lock_timeout = '10s';

-- A storefront hold on a single-use code. The code row carries hold_id/held_until for the checks;
-- this row lets DELETE /storefront/v1/reservations/{id} find the code and records the outcome.
CREATE TABLE reservations (
    merchant_id  uuid NOT NULL,
    id           uuid NOT NULL,
    list_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    customer_key text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    ended_by     text CHECK (ended_by IN ('released', 'redeemed')),
    PRIMARY KEY (merchant_id, id)
);

-- Every (order, code, status) an order event reported, once: the idempotency record of the
-- non-paid statuses (their timeline events are written when the row is first inserted).
CREATE TABLE order_codes (
    merchant_id uuid NOT NULL,
    platform    text NOT NULL,
    shop        text NOT NULL,
    order_id    text NOT NULL,
    list_id     uuid NOT NULL,
    seq         bigint NOT NULL,
    status      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, platform, shop, order_id, list_id, seq, status)
);

-- One row per (platform, shop, order, code) that was paid: the key that makes a redemption count
-- once whatever the platform retries. counted is false when the code had no use left (an over-use,
-- recorded on the timeline, never silently dropped).
CREATE TABLE redemptions (
    merchant_id uuid NOT NULL,
    platform    text NOT NULL,
    shop        text NOT NULL,
    order_id    text NOT NULL,
    list_id     uuid NOT NULL,
    seq         bigint NOT NULL,
    counted     boolean NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, platform, shop, order_id, list_id, seq)
);
CREATE INDEX redemptions_code ON redemptions (merchant_id, list_id, seq);

-- cg_allocate hands one code of a list to a recipient, in one round trip and one transaction.
--
-- p_pos is the position the caller drew from the list's cursor (a Redis counter). The code at that
-- position is taken only if it is still available and issuable now (guarded UPDATE), so a stale or
-- reset cursor can never hand a code out twice; it answers 'miss' and the caller draws again. With
-- p_pos NULL it falls back to the first free position (FOR UPDATE SKIP LOCKED), which also finds
-- the holes a cursor stepped over.
--
-- An advisory transaction lock on (list, recipient, campaign) makes concurrent requests of one
-- recipient queue, so the reassign-window check and the allocation are atomic for that recipient.
-- Outcomes: ok, miss, list_not_found, list_archived, list_not_started, list_expired, list_exhausted.
-- It answers through OUT parameters (one row, no tuplestore), the cheapest way out of PL/pgSQL.
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
    v_count bigint;
    v_shard smallint := floor(random() * 64)::smallint;
BEGIN
    reused := false;
    SELECT cl.kind, cl.max_assignments, cl.starts_at, cl.expires_at, cl.archived_at, cl.reassign_window, cl.next_seq,
           cl.low_stock_threshold, cl.stock_state
      INTO l.kind, l.max_assignments, l.starts_at, l.expires_at, l.archived_at, l.reassign_window, l.next_seq,
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
            SELECT c.code, c.available_till INTO v_code, v_till FROM codes c
             WHERE c.merchant_id = p_merchant AND c.list_id = p_list AND c.seq = v_seq;
            outcome := 'ok';
            seq := v_seq;
            code := v_code;
            expires_at := least(l.expires_at, v_till);
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
    expires_at := least(l.expires_at, v_till);
    available := v_count;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION cg_allocate(uuid, uuid, bigint, text, text, text, text, text, text, text);
DROP TABLE redemptions, order_codes, reservations;
