-- +goose Up
-- Messages: channels (sealed provider credentials), templates, deliveries of codes to recipients
-- (one by one or from a CSV job), alert addresses, and outgoing webhooks with every attempt.
SET lock_timeout = '10s';

CREATE TABLE channels (
    merchant_id uuid NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    -- what may be shown (host, port, from, provider, project…)
    settings    jsonb NOT NULL,
    -- AES-256-GCM sealed JSON of the secrets (password, auth token, service account)
    secrets     bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, channel)
);

ALTER TABLE templates
    ADD COLUMN subject    text NOT NULL DEFAULT '',
    ADD COLUMN text       text NOT NULL DEFAULT '',
    ADD COLUMN html       text NOT NULL DEFAULT '',
    ADD COLUMN title      text NOT NULL DEFAULT '',
    ADD COLUMN body       text NOT NULL DEFAULT '',
    ADD COLUMN locale     text NOT NULL DEFAULT 'en-US',
    ADD COLUMN time_zone  text NOT NULL DEFAULT 'UTC',
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- A CSV of recipients to send a list's codes to.
CREATE TABLE delivery_jobs (
    merchant_id uuid NOT NULL,
    id          uuid NOT NULL,
    list_id     uuid NOT NULL,
    channel     text NOT NULL,
    template_id uuid NOT NULL,
    campaign    text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'uploading' CHECK (status IN ('uploading', 'queued', 'running', 'done', 'failed')),
    total       bigint NOT NULL DEFAULT 0,
    -- rows of the file read so far (the checkpoint) and rows refused (no usable recipient)
    rows_done   bigint NOT NULL DEFAULT 0,
    invalid     bigint NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);
CREATE TABLE delivery_job_chunks (
    merchant_id uuid NOT NULL,
    job_id      uuid NOT NULL,
    n           integer NOT NULL,
    data        bytea NOT NULL,
    PRIMARY KEY (merchant_id, job_id, n)
);

-- One message of a code to one recipient. A recipient gets one delivery per list, channel and
-- campaign: asking again answers the same delivery.
CREATE TABLE deliveries (
    merchant_id   uuid NOT NULL,
    id            uuid NOT NULL,
    list_id       uuid NOT NULL,
    job_id        uuid,
    channel       text NOT NULL,
    template_id   uuid NOT NULL,
    campaign      text NOT NULL DEFAULT '',
    recipient_key text NOT NULL,
    recipient     jsonb NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'waiting')),
    seq           bigint,
    code          text,
    error         text NOT NULL DEFAULT '',
    attempts      integer NOT NULL DEFAULT 0,
    provider_id   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, list_id, channel, recipient_key, campaign)
);
CREATE INDEX deliveries_waiting ON deliveries (merchant_id, list_id, created_at) WHERE status = 'waiting';
CREATE INDEX deliveries_job ON deliveries (merchant_id, job_id, status) WHERE job_id IS NOT NULL;
CREATE INDEX deliveries_stalled ON deliveries (updated_at) WHERE status = 'queued';

CREATE TABLE alert_settings (
    merchant_id uuid PRIMARY KEY,
    emails      text[] NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_endpoints (
    merchant_id   uuid NOT NULL,
    id            uuid NOT NULL,
    url           text NOT NULL,
    events        text[] NOT NULL,
    secret        bytea NOT NULL,
    state         text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    -- when the endpoint started failing (reset by a success); failing for days disables it
    failing_since timestamptz,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);

-- One event for one endpoint, with the id it keeps across retries.
CREATE TABLE webhook_messages (
    merchant_id  uuid NOT NULL,
    id           text NOT NULL,
    endpoint_id  uuid NOT NULL,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, endpoint_id, id)
);
CREATE INDEX webhook_messages_pending ON webhook_messages (created_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    merchant_id uuid NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    endpoint_id uuid NOT NULL,
    message_id  text NOT NULL,
    event_type  text NOT NULL,
    status_code integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    duration_ms integer NOT NULL DEFAULT 0,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (merchant_id, endpoint_id, id);

-- One alert email per stock crossing (a domain event), sent once.
CREATE TABLE alert_messages (
    merchant_id uuid NOT NULL,
    event_id    bigint NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    error       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, event_id)
);

-- Deliveries of codes (code.delivered) are read in order per merchant.
CREATE INDEX allocations_by_id ON allocations (merchant_id, id);

-- How far each merchant's events were handed to webhooks and alerts: domain events by id, code
-- timeline events (delivered, redeemed) by id.
CREATE TABLE event_cursors (
    merchant_id      uuid PRIMARY KEY,
    domain_event_id  bigint NOT NULL DEFAULT 0,
    code_event_id    bigint NOT NULL DEFAULT 0,
    allocation_id    bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP INDEX allocations_by_id;
DROP TABLE alert_messages, event_cursors, webhook_attempts, webhook_messages, webhook_endpoints, alert_settings,
    deliveries, delivery_job_chunks, delivery_jobs, channels;
ALTER TABLE templates DROP COLUMN subject, DROP COLUMN text, DROP COLUMN html, DROP COLUMN title,
    DROP COLUMN body, DROP COLUMN locale, DROP COLUMN time_zone, DROP COLUMN updated_at;
