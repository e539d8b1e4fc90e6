-- +goose Up
-- Redeem links: public pages (/r/{slug}) that hand out a list's codes, one per recipient per link,
-- with the merchant's texts. Hand-outs are ordinary allocations (channel redeem_link, campaign
-- "redeem_link:<id>"); the number handed out through each link is kept in 64 counter shards so
-- concurrent hand-outs do not queue on one row.
SET lock_timeout = '10s';

CREATE TABLE redeem_links (
    merchant_id  uuid NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    list_id      uuid NOT NULL,
    slug         text NOT NULL UNIQUE,
    name         text NOT NULL,
    identify_by  text NOT NULL CHECK (identify_by IN ('email', 'none')),
    starts_at    timestamptz,
    ends_at      timestamptz,
    page         jsonb NOT NULL DEFAULT '{}',
    redirect     text NOT NULL DEFAULT 'none' CHECK (redirect IN ('none', 'shopify', 'url')),
    redirect_url text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id),
    FOREIGN KEY (merchant_id, list_id) REFERENCES code_lists (merchant_id, id) ON DELETE CASCADE
);
CREATE INDEX redeem_links_list ON redeem_links (merchant_id, list_id, created_at, id);

CREATE TABLE redeem_link_counters (
    merchant_id uuid NOT NULL,
    link_id     uuid NOT NULL,
    shard       smallint NOT NULL,
    handed_out  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, link_id, shard),
    FOREIGN KEY (merchant_id, link_id) REFERENCES redeem_links (merchant_id, id) ON DELETE CASCADE
);

-- cg_allocate_once is cg_allocate for a recipient who gets one code from a campaign, ever: under
-- the same advisory lock cg_allocate takes on (list, recipient, campaign), a code the recipient
-- already has from the campaign is answered again (reused), whatever the list's reassign window;
-- else cg_allocate hands one out and the link's counter counts it. The expiry is the code's own
-- (cg_code_expires_at, migrations/00016). Being PL/pgSQL, each statement
-- sees what committed before it ran, so the check after the lock sees every earlier hand-out.
-- +goose StatementBegin
CREATE FUNCTION cg_allocate_once(
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

-- +goose Down
SET lock_timeout = '10s';
DROP FUNCTION cg_allocate_once(uuid, uuid, bigint, text, text, text, text, text, text, text, uuid);
DROP TABLE redeem_link_counters;
DROP TABLE redeem_links;
