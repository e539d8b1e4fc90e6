package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// orderManualDiscount is the order_codes status that records an order's manual discount on a
// code. It is no order status: nothing applies it, and OrderCodes (which reads redemptions) never
// returns the code for the order.
const orderManualDiscount = core.EventManualDiscount

// RecordManualDiscount implements core.ManualDiscountStore. The (platform, shop, order, code,
// manual_discount) row of order_codes is the idempotency key, as it is for the non-paid statuses:
// only the transaction that inserted it writes the timeline event. The code itself is not touched.
func (db *DB) RecordManualDiscount(ctx context.Context, merchantID uuid.UUID, ev core.ManualDiscountEvent, title string, f core.FoundCode) (bool, error) {
	orderRef := ev.Platform + ":" + ev.Shop + ":" + ev.OrderID
	var customer any
	if !ev.Customer.IsZero() {
		customer = ev.Customer
	}
	recorded := false
	err := db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO order_codes (merchant_id, platform, shop, order_id, list_id, seq, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			merchantID, ev.Platform, ev.Shop, ev.OrderID, f.List.ID, f.Seq, orderManualDiscount)
		if err != nil {
			return fmt.Errorf("db: record manual discount: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		recorded = true
		details := map[string]any{"platform": ev.Platform, "shop": ev.Shop, "order_id": ev.OrderID, "title": title}
		return addEvent(ctx, tx, merchantID, f.List.ID, f.Seq, core.EventManualDiscount, ev.Actor, ev.Platform, customer, orderRef, details)
	})
	if err != nil {
		return false, err
	}
	return recorded, nil
}

var _ core.ManualDiscountStore = (*DB)(nil)
