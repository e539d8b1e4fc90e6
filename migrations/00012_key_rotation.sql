-- +goose Up
-- Key rotation: each of a merchant's two keys may have one previous key, the one the last rotation
-- replaced, which keeps working until its expiry (the grace period the rotation asked for). Only
-- SHA-256 hashes are kept, as for the current keys. A rotation during a grace period replaces the
-- previous key, which stops at once.
SET lock_timeout = '10s';

ALTER TABLE merchants
    ADD COLUMN previous_api_key_hash               bytea,
    ADD COLUMN previous_api_key_expires_at         timestamptz,
    ADD COLUMN previous_storefront_key_hash        bytea,
    ADD COLUMN previous_storefront_key_expires_at  timestamptz,
    ADD CONSTRAINT merchants_previous_api_key_check
        CHECK ((previous_api_key_hash IS NULL) = (previous_api_key_expires_at IS NULL)),
    ADD CONSTRAINT merchants_previous_storefront_key_check
        CHECK ((previous_storefront_key_hash IS NULL) = (previous_storefront_key_expires_at IS NULL));

-- +goose Down
SET lock_timeout = '10s';
ALTER TABLE merchants
    DROP CONSTRAINT merchants_previous_api_key_check,
    DROP CONSTRAINT merchants_previous_storefront_key_check,
    DROP COLUMN previous_api_key_hash,
    DROP COLUMN previous_api_key_expires_at,
    DROP COLUMN previous_storefront_key_hash,
    DROP COLUMN previous_storefront_key_expires_at;
