package store_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/coupongate/coupongate/store"
)

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	// A real refused connection, as pgx reports it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := pgx.Connect(context.Background(), "postgres://postgres@"+addr+"/coupons?sslmode=disable")
	if refused == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "test"} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"connection refused wrapped", fmt.Errorf("db: list lists: %w", refused), true},
		{"admin shutdown", pg("57P01"), true},
		{"crash shutdown", pg("57P02"), true},
		{"cannot connect now", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"too many connections", pg("53300"), true},
		{"read-only after failover", fmt.Errorf("db: update list: %w", pg("25006")), true},
		{"deadline", fmt.Errorf("db: %w", context.DeadlineExceeded), true},
		{"bad connection (database/sql)", driver.ErrBadConn, true},
		{"closed connection", fmt.Errorf("db: %w", pgconn.ErrConnClosed), true},
		{"connection dropped mid-query", fmt.Errorf("db: list lists: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", fmt.Errorf("db: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true},
		{"unique violation", pg("23505"), false},
		{"undefined table", pg("42P01"), false},
		{"caller went away", fmt.Errorf("db: %w", context.Canceled), false},
		{"plain error", errors.New("something else"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := store.IsUnavailable(tc.err); got != tc.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestIsUnavailableFromServer makes the errors of a failover happen on the real PostgreSQL and
// checks each is unavailability, through pgx and through database/sql (which gorm uses): a session
// ended by the server (57P01 admin_shutdown, what a primary shutting down for a switch-over
// sends), a write in a read-only transaction (25006, what a primary turned standby answers), and a
// multi-host connect that finds no node taking writes (target_session_attrs; the local server is
// no standby, so asking for one fails the way asking a standby for read-write does).
func TestIsUnavailableFromServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	terminated := func(t *testing.T, query func() error, pid func() int) {
		t.Helper()
		admin, err := pgx.Connect(ctx, env.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		p := pid()
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", p); err != nil {
			t.Fatal(err)
		}
		err = query()
		if err == nil {
			t.Fatal("a query on a terminated session succeeded")
		}
		if !store.IsUnavailable(err) {
			t.Fatalf("IsUnavailable(%v) = false for a session the server ended", err)
		}
	}
	t.Run("session ended by the server (pgx)", func(t *testing.T) {
		t.Parallel()
		conn, err := pgx.Connect(ctx, env.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		terminated(t, func() error {
			_, err := conn.Exec(ctx, "SELECT 1")
			return err
		}, func() int { return int(conn.PgConn().PID()) })
	})
	t.Run("session ended by the server (database/sql)", func(t *testing.T) {
		t.Parallel()
		cfg, err := pgx.ParseConfig(env.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		sqlConn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sqlConn.Close()
		terminated(t, func() error {
			_, err := sqlConn.ExecContext(ctx, "SELECT 1")
			return err
		}, func() int {
			var pid int
			if err := sqlConn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			return pid
		})
	})
	t.Run("write in a read-only transaction", func(t *testing.T) {
		t.Parallel()
		conn, err := pgx.Connect(ctx, env.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "CREATE TABLE read_only_probe (id int)")
			return err
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
			t.Fatalf("write in a read-only transaction: %v, want SQLSTATE 25006", err)
		}
		if !store.IsUnavailable(fmt.Errorf("db: %w", err)) {
			t.Fatalf("IsUnavailable(%v) = false", err)
		}
	})
	t.Run("no host takes what target_session_attrs asks", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		cfg, err := pgconn.ParseConfig(env.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("postgres://%s@%s,%s:%d/%s?sslmode=disable&target_session_attrs=standby",
			cfg.User, closed, cfg.Host, cfg.Port, cfg.Database)
		_, err = pgx.Connect(ctx, url)
		if err == nil {
			t.Fatal("a connect asking for a standby found one")
		}
		if !store.IsUnavailable(fmt.Errorf("db: %w", err)) {
			t.Fatalf("IsUnavailable(%v) = false", err)
		}
	})
}
