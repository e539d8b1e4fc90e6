-- +goose Up
-- A delivery is 'sending' while its message is with the provider: a worker that finds it so after
-- a crash does not send it again (shown as queued by the API).
SET lock_timeout = '10s';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'waiting'));
CREATE INDEX deliveries_lists_waiting ON deliveries (merchant_id, list_id) WHERE status = 'waiting';
CREATE INDEX deliveries_sending ON deliveries (updated_at) WHERE status = 'sending';

-- +goose Down
DROP INDEX deliveries_sending;
DROP INDEX deliveries_lists_waiting;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('queued', 'sent', 'failed', 'waiting'));
