-- +goose Up
-- What the dashboard's Messages and Shops pages read: a list's templates, deliveries and bulk jobs
-- newest first (keyset paging), whether a template still has messages to send, and a push's
-- failed codes with the shop's reasons.
SET lock_timeout = '10s';

CREATE INDEX deliveries_list_recent ON deliveries (merchant_id, list_id, created_at DESC, id DESC);
CREATE INDEX deliveries_unsent_template ON deliveries (merchant_id, template_id)
    WHERE status IN ('queued', 'sending', 'waiting');
CREATE INDEX delivery_jobs_list_recent ON delivery_jobs (merchant_id, list_id, created_at DESC, id DESC);
CREATE INDEX templates_list_recent ON templates (merchant_id, list_id, created_at DESC, id DESC);
DROP INDEX templates_list;
CREATE INDEX code_pushes_failed ON code_pushes (merchant_id, list_id, connection_id, seq)
    WHERE state = 'failed';

-- +goose Down
SET lock_timeout = '10s';
DROP INDEX code_pushes_failed;
CREATE INDEX templates_list ON templates (merchant_id, list_id);
DROP INDEX templates_list_recent;
DROP INDEX delivery_jobs_list_recent;
DROP INDEX deliveries_unsent_template;
DROP INDEX deliveries_list_recent;
