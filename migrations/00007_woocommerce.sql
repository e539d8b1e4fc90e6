-- +goose Up
-- WooCommerce stores: their deliveries come to a URL that names the connection, so a reference
-- table routes a connection id to its merchant (as shop_routes does for Shopify shop domains);
-- and each connection says which order statuses count as paid.
SET lock_timeout = '10s';

CREATE TABLE connection_routes (
    connection_id uuid PRIMARY KEY,
    merchant_id   uuid NOT NULL,
    platform      text NOT NULL
);

ALTER TABLE connections ADD COLUMN paid_statuses text[];

-- A pushed code as the shop knows it, folded to lower case: WooCommerce lowercases coupon codes,
-- so an order's code is found through the push even in a case-sensitive list.
ALTER TABLE code_pushes ADD COLUMN code_key text;
CREATE INDEX code_pushes_key ON code_pushes (merchant_id, code_key) WHERE state = 'pushed';

-- +goose Down
DROP INDEX code_pushes_key;
ALTER TABLE code_pushes DROP COLUMN code_key;
ALTER TABLE connections DROP COLUMN paid_statuses;
DROP TABLE connection_routes;
