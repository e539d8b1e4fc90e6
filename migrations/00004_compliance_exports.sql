-- +goose Up
-- Customer data exports answering Shopify customers/data_request: one document per delivery, kept
-- for the merchant to hand to the customer. The document is personal data: customers/redact and
-- shop/redact delete it.
SET lock_timeout = '10s';

CREATE TABLE compliance_exports (
    merchant_id  uuid NOT NULL,
    id           uuid NOT NULL,
    delivery_id  uuid NOT NULL,
    platform     text NOT NULL,
    shop         text NOT NULL,
    -- the platform's customer id ("" when the request named none) and data request id
    customer_ref text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    document     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, delivery_id)
);
CREATE INDEX compliance_exports_shop ON compliance_exports (merchant_id, platform, shop, customer_ref);

-- +goose Down
DROP TABLE compliance_exports;
