package store

// The gateway and the worker do not migrate: couponctl migrate does (make run, the compose
// service and the Kubernetes Job run it). At start they check the schema here and refuse to run on
// one that lacks a migration of their build.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"

	"github.com/coupongate/coupongate/migrations"
)

// SchemaBehindError says the database lacks migrations this build embeds: Applied is the highest
// version goose recorded (0 when none, or when the database does not exist), Latest the highest
// embedded one.
type SchemaBehindError struct {
	Applied, Latest int64
	// NoDatabase says the database DATABASE_URL names does not exist.
	NoDatabase bool
}

// Error says what is missing and what to run.
func (e *SchemaBehindError) Error() string {
	if e.NoDatabase {
		return fmt.Sprintf("the database does not exist; run `couponctl migrate`, which creates it and applies migrations 1 to %d", e.Latest)
	}
	return fmt.Sprintf("the database schema is at migration %d and this build needs %d; run `couponctl migrate`", e.Applied, e.Latest)
}

// LatestMigration is the highest version among the embedded migrations (migrations.FS).
func LatestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// CheckSchema reads the highest applied migration from goose's version table (goose_db_version)
// and returns a *SchemaBehindError when it is below LatestMigration, or when the table or the
// database itself is missing. A schema ahead of this build (a newer release migrated it) is
// accepted: migrations only add what older code does not read. It changes nothing.
func (db *DB) CheckSchema(ctx context.Context) error {
	latest, err := LatestMigration()
	if err != nil {
		return err
	}
	var (
		applied int64
		table   bool
	)
	err = db.pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&table)
	if err == nil && table {
		err = db.pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version`).Scan(&applied)
	}
	if IsNoDatabase(err) {
		return &SchemaBehindError{Latest: latest, NoDatabase: true}
	}
	if err != nil {
		return fmt.Errorf("read the schema's version: %w", err)
	}
	if applied < latest {
		return &SchemaBehindError{Applied: applied, Latest: latest}
	}
	return nil
}

// IsNoDatabase says whether err is PostgreSQL's answer that the database DATABASE_URL names does
// not exist (SQLSTATE 3D000), as Open or a first query gives it.
func IsNoDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000" // invalid_catalog_name
}
