package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsUnavailable reports whether err means PostgreSQL could not be reached or could not serve the
// query right now, so that the caller should come back later rather than treat it as a bug: a
// refused, reset or dropped connection (EOF mid-query), a timed-out connect or pool acquire (a
// context deadline), a server that is shutting down or starting up (SQLSTATE 57P01, 57P02,
// 57P03), any connection exception (class 08), too many connections (53300), and a primary that
// became a standby in a failover (25006 read_only_sql_transaction). It looks through every
// wrapper, gorm's and database/sql's included. A cancelled context is not unavailability: the
// caller went away.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection_exception and its subclasses
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now: starting up, or a standby not yet accepting
			pgErr.Code == "53300", // too_many_connections
			pgErr.Code == "25006": // read_only_sql_transaction: the primary failed over to a standby
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	// Most errors pgconn makes itself (rather than relays from the server) carry SafeToRetry: a
	// failed write on the connection, a closed connection, a timeout.
	var fromPgconn interface{ SafeToRetry() bool }
	// A connection that breaks mid-query surfaces as the bare network error.
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &connectErr) ||
		errors.As(err, &fromPgconn) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) ||
		errors.As(err, &netErr)
}
