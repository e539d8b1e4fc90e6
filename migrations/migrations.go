// Package migrations holds the SQL migrations of the Coupongate schema, embedded in every binary.
//
// Files are numbered goose migrations (NNNNN_name.sql) with Up and Down sections; each starts with
// SET lock_timeout so a migration never queues behind live traffic for long. Apply them with
// `couponctl migrate` or let the gateway and worker apply them at start (store.Migrate), which
// serialises concurrent runners with a PostgreSQL advisory lock.
package migrations

import "embed"

// FS is the embedded migration files.
//
//go:embed *.sql
var FS embed.FS
