-- +goose Up
-- Scanner PINs are made by Coupongate (six random digits, unique within the merchant) and stored
-- as an HMAC-SHA256 digest keyed from APP_SECRET over the merchant and the PIN, so the PIN typed
-- on a redeem page is found with one read of the unique index (issue 12, point 4). The argon2id
-- hashes of the PINs people chose are dropped: every existing scanner PIN is cleared, and each
-- person makes a new one (Your scanner PIN, or an owner on the team page).
SET lock_timeout = '10s';

ALTER TABLE dashboard_users
    DROP COLUMN scanner_pin_hash,
    ADD COLUMN scanner_pin_digest bytea;

CREATE UNIQUE INDEX dashboard_users_scanner_pin ON dashboard_users (merchant_id, scanner_pin_digest);

-- +goose Down
-- The old column comes back empty: the digests cannot be turned back into argon2id hashes.
SET lock_timeout = '10s';
DROP INDEX dashboard_users_scanner_pin;
ALTER TABLE dashboard_users
    DROP COLUMN scanner_pin_digest,
    ADD COLUMN scanner_pin_hash text;
