package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/migrations"
	"github.com/coupongate/coupongate/store"
)

// A migration that must wait for a table another session holds gives up after lock_timeout with
// a clear error, instead of waiting (and queueing every query on that table behind it). Migration
// 11 alters alert_messages and sets no lock_timeout of its own.
func TestMigrateGivesUpOnABusyTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, drop, err := dbtest.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, 10); err != nil {
		t.Fatal(err)
	}

	// A long transaction reading alert_messages: ALTER TABLE must wait for it.
	busy, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close(ctx)
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE alert_messages IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	waitAtMost, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	started := time.Now()
	err = store.Migrate(waitAtMost, dbURL, quiet)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("migrating past a locked table after %s: %v; want lock_not_available (55P03) after lock_timeout",
			time.Since(started).Round(time.Second), err)
	}
	if took := time.Since(started); took > 15*time.Second {
		t.Fatalf("the migration waited %s for the lock", took)
	}

	// Once the table is free, the same migration goes through.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, dbURL, quiet); err != nil {
		t.Fatal(err)
	}
	var applied bool
	if err := busy.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_name = 'alert_messages' AND column_name = 'sent_to')`).Scan(&applied); err != nil || !applied {
		t.Fatalf("migration 11 not applied after the lock was released: %v %v", applied, err)
	}
}
