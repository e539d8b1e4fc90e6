package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// ScannerSettings implements core.ScannerStore.
func (db *DB) ScannerSettings(ctx context.Context, merchantID, userID uuid.UUID) (core.ScannerSettings, error) {
	var s core.ScannerSettings
	err := db.pool.QueryRow(ctx, `SELECT scanner_pin_digest IS NOT NULL, scan_lists FROM dashboard_users
		WHERE merchant_id = $1 AND id = $2 AND removed_at IS NULL`, merchantID, userID).Scan(&s.HasPIN, &s.Lists)
	if err != nil {
		return core.ScannerSettings{}, notFound(err, core.ErrUserNotFound)
	}
	return s, nil
}

// SetScannerPIN implements core.ScannerStore. The unique index on (merchant_id,
// scanner_pin_digest) refuses a digest another user of the merchant has.
func (db *DB) SetScannerPIN(ctx context.Context, merchantID, userID uuid.UUID, digest []byte) error {
	err := db.updateUser(ctx, "set scanner pin", `UPDATE dashboard_users SET scanner_pin_digest = $3
		WHERE merchant_id = $1 AND id = $2 AND removed_at IS NULL`, merchantID, userID, digest)
	if isUniqueViolation(err) {
		return core.ErrScannerPINTaken
	}
	return err
}

// SetScanLists implements core.ScannerStore.
func (db *DB) SetScanLists(ctx context.Context, merchantID, userID uuid.UUID, lists []uuid.UUID) error {
	return db.updateUser(ctx, "set scan lists", `UPDATE dashboard_users SET scan_lists = $3
		WHERE merchant_id = $1 AND id = $2 AND removed_at IS NULL`, merchantID, userID, lists)
}

func (db *DB) updateUser(ctx context.Context, what, sql string, merchantID, userID uuid.UUID, v any) error {
	tag, err := db.pool.Exec(ctx, sql, merchantID, userID, v)
	if err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return core.ErrUserNotFound
	}
	return nil
}

// ScannerPINOwner implements core.ScannerStore: one read of the unique index.
func (db *DB) ScannerPINOwner(ctx context.Context, merchantID uuid.UUID, digest []byte) (core.ScannerPIN, bool, error) {
	var p core.ScannerPIN
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+`, u.scan_lists FROM dashboard_users u
		WHERE u.merchant_id = $1 AND u.scanner_pin_digest = $2 AND u.removed_at IS NULL`, merchantID, digest), &p.Lists)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.ScannerPIN{}, false, nil
	}
	if err != nil {
		return core.ScannerPIN{}, false, fmt.Errorf("db: scanner pin owner: %w", err)
	}
	p.User = u.User
	return p, true, nil
}
