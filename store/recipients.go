package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// RecipientCodes implements core.RecipientStore from the allocations_recipient index.
func (db *DB) RecipientCodes(ctx context.Context, merchantID uuid.UUID, keys []string, limit int) ([]core.RecipientCode, error) {
	rows, err := db.pool.Query(ctx, `SELECT list_id, code FROM (
			SELECT DISTINCT ON (a.list_id, a.seq) a.list_id, c.code, a.allocated_at
			FROM allocations a
			JOIN codes c ON c.merchant_id = a.merchant_id AND c.list_id = a.list_id AND c.seq = a.seq
			WHERE a.merchant_id = $1 AND a.recipient_key = ANY($2)
			ORDER BY a.list_id, a.seq, a.allocated_at DESC) latest
		ORDER BY allocated_at DESC LIMIT $3`, merchantID, keys, limit)
	if err != nil {
		return nil, fmt.Errorf("db: recipient codes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.RecipientCode, error) {
		var rc core.RecipientCode
		return rc, r.Scan(&rc.ListID, &rc.Code)
	})
	if err != nil {
		return nil, fmt.Errorf("db: recipient codes: %w", err)
	}
	return out, nil
}
