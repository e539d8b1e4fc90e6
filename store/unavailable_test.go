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
