-- +goose Up
-- The scanner (issue 12): each dashboard user's scanner PIN, stored as an argon2id hash, and the
-- lists a staff member may scan (NULL: every list).
SET lock_timeout = '10s';

ALTER TABLE dashboard_users
    ADD COLUMN scanner_pin_hash text,
    ADD COLUMN scan_lists uuid[];

-- +goose Down
SET lock_timeout = '10s';
ALTER TABLE dashboard_users
    DROP COLUMN scan_lists,
    DROP COLUMN scanner_pin_hash;
