-- +goose Up
-- Shopify webhooks: the shop routing table and the durable record of every delivery.
SET lock_timeout = '10s';

-- Which merchant and connection a shop belongs to, written when a shop connects. A webhook arrives
-- with only the shop domain, so this is looked up without a merchant_id: under Citus it is a
-- reference table.
CREATE TABLE shop_routes (
    platform      text NOT NULL,
    shop          text NOT NULL,
    merchant_id   uuid NOT NULL,
    connection_id uuid NOT NULL,
    PRIMARY KEY (platform, shop)
);

-- Every verified webhook delivery of a known shop, stored before the 2xx. event_key is the
-- platform's event id (X-Shopify-Event-Id, falling back to X-Shopify-Webhook-Id): a retried or
-- duplicated delivery hits the unique key and is dropped.
CREATE TABLE webhook_deliveries (
    merchant_id  uuid NOT NULL,
    id           uuid NOT NULL,
    platform     text NOT NULL,
    shop         text NOT NULL,
    topic        text NOT NULL,
    event_key    text NOT NULL,
    webhook_id   text NOT NULL DEFAULT '',
    triggered_at timestamptz,
    received_at  timestamptz NOT NULL DEFAULT now(),
    body         bytea NOT NULL,
    status       text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'processed', 'failed', 'ignored')),
    error        text NOT NULL DEFAULT '',
    processed_at timestamptz,
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, platform, shop, event_key)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at) WHERE status = 'received';

-- +goose Down
DROP TABLE webhook_deliveries, shop_routes;
