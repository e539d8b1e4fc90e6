-- +goose Up
-- What makes pushes and installs safe against the races a review found: when the discount's
-- creation was started (so a rerun adopts only a discount made since), when the list's codes last
-- changed and up to when a finished run covered them (so the sweeper finds a change a running push
-- could not take), and when the shop was last installed (so a late app/uninstalled delivery from
-- before a reinstall is not applied).
SET lock_timeout = '10s';

ALTER TABLE list_connections
    ADD COLUMN creating_at    timestamptz,
    ADD COLUMN changed_at     timestamptz,
    ADD COLUMN synced_through timestamptz;
ALTER TABLE connections ADD COLUMN installed_at timestamptz;
-- A compliance delivery for a shop that is no longer routed finds the merchant that connected it.
CREATE INDEX connections_by_shop ON connections (platform, shop, created_at);

-- +goose Down
DROP INDEX connections_by_shop;
ALTER TABLE connections DROP COLUMN installed_at;
ALTER TABLE list_connections DROP COLUMN creating_at, DROP COLUMN changed_at, DROP COLUMN synced_through;
