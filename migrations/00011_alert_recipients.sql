-- +goose Up
-- An alert goes to each alert address on its own: the addresses it reached, and those that
-- refused it for good, are kept so a retry sends only to the ones still owed.
ALTER TABLE alert_messages ADD COLUMN sent_to text[] NOT NULL DEFAULT '{}',
    ADD COLUMN refused_by text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE alert_messages DROP COLUMN sent_to, DROP COLUMN refused_by;
