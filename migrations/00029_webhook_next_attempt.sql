-- +goose Up
-- A webhook message records when its next attempt is due, so that the dispatcher finds one whose
-- retry task was lost (Redis failed over and lost its queue, or an enqueue failed after the
-- commit) a minute after that time, instead of once the whole retry schedule (about 28 hours)
-- could have ended. A message never tried is due when it is made. Messages pending now keep what
-- they had: an untried one is due from its creation, one being retried 26 hours after it.
SET lock_timeout = '10s';
ALTER TABLE webhook_messages ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
UPDATE webhook_messages SET next_attempt_at = created_at + CASE WHEN attempts > 0 THEN interval '26 hours' ELSE interval '0' END
 WHERE status = 'pending';
DROP INDEX webhook_messages_pending;
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE status = 'pending';

-- +goose Down
SET lock_timeout = '10s';
DROP INDEX webhook_messages_due;
CREATE INDEX webhook_messages_pending ON webhook_messages (created_at) WHERE status = 'pending';
ALTER TABLE webhook_messages DROP COLUMN next_attempt_at;
