package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Secret returns the stored secret called name, creating it with generate on first use. created
// says whether this call made it. Processes starting together agree on one value: the insert waits
// for a racing insert to commit and then does nothing, and the read that follows is a new statement
// that sees the winner's row.
func (db *DB) Secret(ctx context.Context, name string, generate func() string) (value string, created bool, err error) {
	err = db.pool.QueryRow(ctx, `INSERT INTO system_secrets (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING RETURNING value`, name, generate()).Scan(&value)
	if err == nil {
		return value, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("db: secret %s: %w", name, err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT value FROM system_secrets WHERE name = $1`, name).Scan(&value); err != nil {
		return "", false, fmt.Errorf("db: secret %s: %w", name, err)
	}
	return value, false, nil
}
