-- +goose Up
-- Connected shops: their credentials (sealed with a key derived from APP_SECRET), the webhooks we
-- subscribed, the reconciliation watermark; and pushes of a list's codes into a shop, with the
-- state of every pushed code.
SET lock_timeout = '10s';

ALTER TABLE connections
    -- AES-256-GCM sealed JSON: access and refresh tokens with their expiry. Empty once forgotten.
    ADD COLUMN credentials        bytea,
    -- bumped on every credentials write, so a refresh that lost a race is noticed
    ADD COLUMN credentials_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN token_expires_at   timestamptz,
    ADD COLUMN scopes             text NOT NULL DEFAULT '',
    -- the platform's ids of the webhook subscriptions we made, for disconnecting
    ADD COLUMN remote_webhooks    jsonb NOT NULL DEFAULT '[]',
    -- orders updated up to here were reconciled
    ADD COLUMN synced_at          timestamptz,
    ADD COLUMN error              text NOT NULL DEFAULT '',
    ADD COLUMN updated_at         timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX connections_shop ON connections (merchant_id, platform, shop);
CREATE INDEX connections_active ON connections (platform, state) WHERE state = 'active';

-- A push of a list into a connected shop. next_seq is the cursor: codes of the list with a
-- higher or equal seq were not submitted yet, so codes added later are pushed on the next run.
ALTER TABLE list_connections
    ADD COLUMN state       text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'pushing', 'active', 'error', 'stopped')),
    ADD COLUMN discount    jsonb NOT NULL DEFAULT '{}',
    -- the shop's id of the discount that holds the codes (Shopify: a DiscountCodeNode gid)
    ADD COLUMN remote_id   text NOT NULL DEFAULT '',
    -- the code the discount is being created with, recorded before the call so a rerun adopts it
    ADD COLUMN creating_seq bigint,
    ADD COLUMN next_seq    bigint NOT NULL DEFAULT 1,
    ADD COLUMN pushed      bigint NOT NULL DEFAULT 0,
    ADD COLUMN failed      bigint NOT NULL DEFAULT 0,
    ADD COLUMN deleted     bigint NOT NULL DEFAULT 0,
    ADD COLUMN error       text NOT NULL DEFAULT '',
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();
CREATE INDEX list_connections_connection ON list_connections (merchant_id, connection_id);

-- Every code of a push that was submitted to the shop. A row is written before the platform call
-- (submitted, no batch yet), gets the platform's batch id after it, and ends pushed or failed; a
-- pushed code removed from the list is deleted from the shop and ends deleted.
CREATE TABLE code_pushes (
    merchant_id   uuid NOT NULL,
    list_id       uuid NOT NULL,
    connection_id uuid NOT NULL,
    seq           bigint NOT NULL,
    state         text NOT NULL CHECK (state IN ('submitted', 'pushed', 'failed', 'deleted')),
    batch_id      text NOT NULL DEFAULT '',
    remote_id     text NOT NULL DEFAULT '',
    error         text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, list_id, connection_id, seq)
);
CREATE INDEX code_pushes_open ON code_pushes (merchant_id, list_id, connection_id, batch_id)
    WHERE state = 'submitted';

-- +goose Down
DROP TABLE code_pushes;
DROP INDEX list_connections_connection;
ALTER TABLE list_connections DROP COLUMN state, DROP COLUMN discount, DROP COLUMN remote_id,
    DROP COLUMN creating_seq, DROP COLUMN next_seq, DROP COLUMN pushed, DROP COLUMN failed,
    DROP COLUMN deleted, DROP COLUMN error, DROP COLUMN updated_at;
DROP INDEX connections_active;
DROP INDEX connections_shop;
ALTER TABLE connections DROP COLUMN credentials, DROP COLUMN credentials_version,
    DROP COLUMN token_expires_at, DROP COLUMN scopes, DROP COLUMN remote_webhooks,
    DROP COLUMN synced_at, DROP COLUMN error, DROP COLUMN updated_at;
