-- +goose Up
-- Each WooCommerce app authorization's state is taken once: a replayed callback is refused.
SET lock_timeout = '10s';

CREATE TABLE connect_nonces (
    merchant_id uuid NOT NULL,
    nonce       text NOT NULL,
    used_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, nonce)
);

-- +goose Down
DROP TABLE connect_nonces;
