package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// ShopRoute implements shopify.WebhookIntakeStore (checked in internal/app).
func (db *DB) ShopRoute(ctx context.Context, platform, shop string) (core.ShopRoute, bool, error) {
	var r core.ShopRoute
	err := db.pool.QueryRow(ctx, `SELECT merchant_id, connection_id FROM shop_routes WHERE platform = $1 AND shop = $2`,
		platform, shop).Scan(&r.MerchantID, &r.ConnectionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// StoreWebhookReceipt implements shopify.WebhookIntakeStore (checked in internal/app): the route lookup and the insert
// are one statement, so a receipt costs one round trip to PostgreSQL. A compliance topic of a
// shop that is no longer routed (shop/redact comes 48 hours after the uninstall) goes to the
// merchant that connected the shop last: a lookup across merchants, on the rare compliance path.
func (db *DB) StoreWebhookReceipt(ctx context.Context, d *core.WebhookReceipt) (found, inserted bool, err error) {
	var merchantID *uuid.UUID
	err = db.pool.QueryRow(ctx, `WITH route AS (
			SELECT merchant_id FROM (
				SELECT merchant_id, 0 AS rank FROM shop_routes WHERE platform = $1 AND shop = $2
				UNION ALL
				(SELECT merchant_id, 1 FROM connections WHERE $9 AND platform = $1 AND shop = $2 ORDER BY created_at DESC LIMIT 1)
			) candidates ORDER BY rank LIMIT 1),
		stored AS (
			INSERT INTO webhook_deliveries (merchant_id, id, platform, shop, topic, event_key, webhook_id, triggered_at, body, status)
			SELECT route.merchant_id, $3, $1, $2, $4, $5, $6, $7, $8, 'received' FROM route
			ON CONFLICT (merchant_id, platform, shop, event_key) DO NOTHING
			RETURNING id)
		SELECT (SELECT merchant_id FROM route), EXISTS (SELECT 1 FROM stored)`,
		d.Platform, d.Shop, d.ID, d.Topic, d.EventKey, d.WebhookID, d.TriggeredAt, d.Body, d.Compliance).Scan(&merchantID, &inserted)
	if err != nil || merchantID == nil {
		return false, false, err
	}
	d.MerchantID = *merchantID
	return true, inserted, nil
}

// WebhookReceipt implements shopify.WebhookProcessStore (checked in internal/app).
func (db *DB) WebhookReceipt(ctx context.Context, merchantID, id uuid.UUID) (core.WebhookReceipt, bool, error) {
	d := core.WebhookReceipt{MerchantID: merchantID, ID: id}
	err := db.pool.QueryRow(ctx, `SELECT platform, shop, topic, event_key, webhook_id, triggered_at, body, status, error
		FROM webhook_deliveries WHERE merchant_id = $1 AND id = $2`, merchantID, id).
		Scan(&d.Platform, &d.Shop, &d.Topic, &d.EventKey, &d.WebhookID, &d.TriggeredAt, &d.Body, &d.Status, &d.Error)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	return d, err == nil, err
}

// FinishWebhookReceipt implements shopify.WebhookProcessStore (checked in internal/app).
func (db *DB) FinishWebhookReceipt(ctx context.Context, merchantID, id uuid.UUID, status, note string) error {
	_, err := db.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = $3, error = $4, processed_at = now()
		WHERE merchant_id = $1 AND id = $2`, merchantID, id, status, note)
	return err
}

// OrderCodes implements shopify.WebhookProcessStore (checked in internal/app): the codes an order redeemed or recorded,
// from its redemption rows.
func (db *DB) OrderCodes(ctx context.Context, merchantID uuid.UUID, platform, shop, orderID string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT c.code FROM redemptions r
		JOIN codes c ON c.merchant_id = r.merchant_id AND c.list_id = r.list_id AND c.seq = r.seq
		WHERE r.merchant_id = $1 AND r.platform = $2 AND r.shop = $3 AND r.order_id = $4
		ORDER BY c.code`, merchantID, platform, shop, orderID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// UninstallShop implements shopify.WebhookProcessStore (checked in internal/app). An uninstall from before the shop's
// latest install (a late retry of app/uninstalled) changes nothing.
func (db *DB) UninstallShop(ctx context.Context, merchantID uuid.UUID, platform, shop string, triggeredAt *time.Time) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// The app's token is revoked with the uninstall: forget it, stop the shop's pushes, and
		// stop routing its webhooks.
		_, err := tx.Exec(ctx, `WITH gone AS (
				UPDATE connections SET state = 'uninstalled', credentials = NULL, credentials_version = credentials_version + 1,
					token_expires_at = NULL, remote_webhooks = '[]', updated_at = now()
				WHERE merchant_id = $1 AND platform = $2 AND shop = $3 AND state <> 'uninstalled'
					AND ($4::timestamptz IS NULL OR installed_at IS NULL OR installed_at < $4)
				RETURNING id),
			stopped AS (
				UPDATE list_connections SET state = 'stopped', updated_at = now()
				WHERE merchant_id = $1 AND connection_id IN (SELECT id FROM gone))
			DELETE FROM shop_routes WHERE platform = $2 AND shop = $3 AND merchant_id = $1
				AND connection_id IN (SELECT id FROM gone)`, merchantID, platform, shop, triggeredAt)
		return err
	})
}

// StalledWebhookReceipts implements core.SweepStore (through the partial index on received
// receipts).
func (db *DB) StalledWebhookReceipts(ctx context.Context, before time.Time, limit int) ([]core.WebhookRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id, id, platform FROM webhook_deliveries
		WHERE status = 'received' AND received_at < $1 ORDER BY received_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.WebhookRef, error) {
		var w core.WebhookRef
		return w, r.Scan(&w.MerchantID, &w.ID, &w.Platform)
	})
}
