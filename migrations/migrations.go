// Package migrations holds the SQL migrations of the Coupongate schema, embedded in every binary.
//
// Files are numbered goose migrations (NNNNN_name.sql) with Up and Down sections. store.Migrate
// runs every one on sessions with lock_timeout set (5 s), so a migration never queues live traffic
// behind it for long; a file may SET a longer one for itself, and concurrent runners wait for each
// other on a PostgreSQL advisory lock. Apply them with `couponctl migrate`: the gateway and the
// worker do not, and refuse to start on a schema behind their build (store.CheckSchema).
package migrations

import "embed"

// FS is the embedded migration files.
//
//go:embed *.sql
var FS embed.FS
