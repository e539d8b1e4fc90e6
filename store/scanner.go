package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// ScannerSettings implements core.ScannerStore.
func (db *DB) ScannerSettings(ctx context.Context, merchantID, userID uuid.UUID) (core.ScannerSettings, error) {
	var s core.ScannerSettings
	err := db.pool.QueryRow(ctx, `SELECT scanner_pin_hash IS NOT NULL, scan_lists FROM dashboard_users
		WHERE merchant_id = $1 AND id = $2 AND removed_at IS NULL`, merchantID, userID).Scan(&s.HasPIN, &s.Lists)
	if err != nil {
		return core.ScannerSettings{}, notFound(err, core.ErrUserNotFound)
	}
	return s, nil
}

// SetScannerPIN implements core.ScannerStore.
func (db *DB) SetScannerPIN(ctx context.Context, merchantID, userID uuid.UUID, hash string) error {
	var h *string
	if hash != "" {
		h = &hash
	}
	return db.updateUser(ctx, "set scanner pin", `UPDATE dashboard_users SET scanner_pin_hash = $3
		WHERE merchant_id = $1 AND id = $2 AND removed_at IS NULL`, merchantID, userID, h)
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

// ScannerPINs implements core.ScannerStore. A team is small, so its PINs come in one piece.
func (db *DB) ScannerPINs(ctx context.Context, merchantID uuid.UUID) ([]core.ScannerPIN, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+`, u.scanner_pin_hash, u.scan_lists FROM dashboard_users u
		WHERE u.merchant_id = $1 AND u.removed_at IS NULL AND u.scanner_pin_hash IS NOT NULL
		ORDER BY u.created_at, u.id LIMIT 1000`, merchantID)
	if err != nil {
		return nil, fmt.Errorf("db: scanner pins: %w", err)
	}
	defer rows.Close()
	var out []core.ScannerPIN
	for rows.Next() {
		var p core.ScannerPIN
		u, err := scanUser(rows, &p.Hash, &p.Lists)
		if err != nil {
			return nil, fmt.Errorf("db: scanner pins: %w", err)
		}
		p.User = u.User
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: scanner pins: %w", err)
	}
	return out, nil
}
