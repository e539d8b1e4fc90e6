package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// RecordExpirations implements core.SweepStore in one statement: the guarded UPDATE marks each
// newly expired list once (a changed expiry clears the mark, see UpdateList), and its RETURNING
// rows become the events, so two sweepers never record one expiry twice.
func (db *DB) RecordExpirations(ctx context.Context, now time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `WITH expired AS (
			UPDATE code_lists SET expired_event_at = $2
			WHERE expires_at <= $2 AND expired_event_at IS NULL
			RETURNING merchant_id, id, expires_at)
		INSERT INTO domain_events (merchant_id, type, list_id, payload)
		SELECT merchant_id, $1, id, jsonb_build_object('list_id', id, 'expires_at', expires_at) FROM expired`, EventListExpired, now)
	if err != nil {
		return 0, fmt.Errorf("db: record expirations: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ListsPastAStockCrossing implements core.SweepStore: unarchived lists that handed out codes and
// whose available count is below what their stock state says (ok but under the threshold, or not
// out but empty).
func (db *DB) ListsPastAStockCrossing(ctx context.Context, limit int) ([]core.ListRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT l.merchant_id, l.id FROM code_lists l
		CROSS JOIN LATERAL (SELECT coalesce(sum(c.available), 0) AS available, coalesce(sum(c.delivered + c.redeemed), 0) AS used
			FROM list_counters c WHERE c.merchant_id = l.merchant_id AND c.list_id = l.id) s
		WHERE l.archived_at IS NULL AND l.stock_state <> 'out' AND s.used > 0
		  AND (s.available = 0 OR (l.stock_state = 'ok' AND s.available < l.low_stock_threshold))
		LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("db: lists past a stock crossing: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.ListRef, error) {
		var l core.ListRef
		return l, r.Scan(&l.MerchantID, &l.ID)
	})
}
