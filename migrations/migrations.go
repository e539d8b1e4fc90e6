// Package migrations holds the SQL migrations of the Coupongate schema, embedded in every binary.
//
// Files are numbered goose migrations (NNNNN_name.sql) with Up and Down sections. store.Migrate
// runs every one on sessions with lock_timeout set (5 s), so a migration never queues live traffic
// behind it for long; a file may SET a longer one for itself. Apply them with `couponctl migrate`
// or let the gateway and worker apply them at start (store.Migrate), which serialises concurrent
// runners with a PostgreSQL advisory lock.
package migrations

import "embed"

// FS is the embedded migration files.
//
//go:embed *.sql
var FS embed.FS
