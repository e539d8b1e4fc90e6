package store

import (
	"context"
	"fmt"
)

// Secret returns the stored secret called name, creating it with generate on first use. created
// says whether this call made it; concurrent first calls agree on one value.
func (db *DB) Secret(ctx context.Context, name string, generate func() string) (value string, created bool, err error) {
	err = db.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO system_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value)
		SELECT value, true FROM ins UNION ALL SELECT value, false FROM system_secrets WHERE name = $1 LIMIT 1`,
		name, generate()).Scan(&value, &created)
	if err != nil {
		return "", false, fmt.Errorf("db: secret %s: %w", name, err)
	}
	return value, created, nil
}
