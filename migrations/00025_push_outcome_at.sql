-- +goose Up
-- A code's push outcome (pushed or refused by the shop) is its own timeline event, read from its
-- code_pushes row instead of a code_events row written beside it: one row fewer per code pushed
-- (a third of a push's bookkeeping). outcome_at is when the shop's answer was recorded; it stays
-- when a pushed code is later deleted from the shop (that is its own 'unpushed' event). Rows
-- recorded before this migration have no outcome_at: their events are in code_events.
SET lock_timeout = '10s';
ALTER TABLE code_pushes ADD COLUMN outcome_at timestamptz;

-- +goose Down
ALTER TABLE code_pushes DROP COLUMN outcome_at;
