package store

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// ConnectStore connects a store (WooCommerce) to a merchant with its credentials: the merchant's
// connection to the same site when there is one (reconnected, with the new keys), else a new
// one. The connection is routed by its id, for the webhooks that name it in their URL.
func (db *DB) ConnectStore(ctx context.Context, c core.Connection, creds core.Credentials) (core.Connection, bool, error) {
	var out core.Connection
	created := false
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var id uuid.UUID
		err := tx.QueryRow(ctx, `SELECT id FROM connections WHERE merchant_id = $1 AND platform = $2 AND shop = $3 FOR UPDATE`,
			c.MerchantID, c.Platform, c.Shop).Scan(&id)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			id, created = uuid.New(), true
			if _, err := tx.Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, $3, $4)`,
				c.MerchantID, id, c.Platform, c.Shop); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		sealed, err := db.sealCredentials(c.MerchantID, id, creds)
		if err != nil {
			return err
		}
		out, err = scanConnection(tx.QueryRow(ctx, `UPDATE connections SET state = 'active', error = '', scopes = $3,
			credentials = $4, credentials_version = credentials_version + 1, paid_statuses = coalesce($5, paid_statuses),
			installed_at = now(), updated_at = now()
			WHERE merchant_id = $1 AND id = $2 RETURNING `+connectionColumns, c.MerchantID, id, c.Scopes, sealed, c.PaidStatuses))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO connection_routes (connection_id, merchant_id, platform) VALUES ($1, $2, $3)
			ON CONFLICT (connection_id) DO NOTHING`, id, c.MerchantID, c.Platform)
		return err
	})
	return out, created, err
}

// RoutedConnection finds a connection by its id alone (a delivery URL names it) with its
// credentials opened; found is false for an id that is not routed.
func (db *DB) RoutedConnection(ctx context.Context, connectionID uuid.UUID) (core.Connection, core.Credentials, bool, error) {
	var sealed []byte
	var c core.Connection
	row := db.pool.QueryRow(ctx, `SELECT `+prefixed("c.", connectionColumns)+`, c.credentials FROM connection_routes r
		JOIN connections c ON c.merchant_id = r.merchant_id AND c.id = r.connection_id WHERE r.connection_id = $1`, connectionID)
	var synced *timeUTC
	err := row.Scan(&c.MerchantID, &c.ID, &c.Platform, &c.Shop, &c.State, &c.Scopes, &synced, &c.Error, &c.CreatedAt, &c.UpdatedAt,
		&c.PaidStatuses, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Connection{}, core.Credentials{}, false, nil
	}
	if err != nil {
		return core.Connection{}, core.Credentials{}, false, err
	}
	if synced != nil {
		t := synced.Time()
		c.SyncedAt = &t
	}
	creds, err := db.openCredentials(c.MerchantID, c.ID, sealed)
	return c, creds, true, err
}

// InsertWebhookReceipt stores a verified receipt unless one with the same (merchant, platform,
// shop, event key) exists; inserted tells which.
func (db *DB) InsertWebhookReceipt(ctx context.Context, d core.WebhookReceipt) (bool, error) {
	tag, err := db.pool.Exec(ctx, `INSERT INTO webhook_deliveries
		(merchant_id, id, platform, shop, topic, event_key, webhook_id, triggered_at, body, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'received')
		ON CONFLICT (merchant_id, platform, shop, event_key) DO NOTHING`,
		d.MerchantID, d.ID, d.Platform, d.Shop, d.Topic, d.EventKey, d.WebhookID, d.TriggeredAt, d.Body)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// prefixed qualifies each column of a comma-separated list with prefix.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// ConnectionOfShop returns the merchant's connection to a platform's shop (or site).
func (db *DB) ConnectionOfShop(ctx context.Context, merchantID uuid.UUID, platform, shop string) (core.Connection, bool, error) {
	c, err := scanConnection(db.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections
		WHERE merchant_id = $1 AND platform = $2 AND shop = $3`, merchantID, platform, shop))
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Connection{}, false, nil
	}
	return c, err == nil, err
}

// UseConnectNonce records an app authorization's nonce as used; fresh is false when it was used
// before (a replayed callback). Nonces older than a day are forgotten on the way.
func (db *DB) UseConnectNonce(ctx context.Context, merchantID uuid.UUID, nonce string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `WITH old AS (
			DELETE FROM connect_nonces WHERE merchant_id = $1 AND used_at < now() - interval '1 day')
		INSERT INTO connect_nonces (merchant_id, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING`, merchantID, nonce)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// LockConnection serialises the work on one connection's platform setup (connect, creating its
// webhooks, disconnect) across processes: it waits up to a minute for the lock.
func (db *DB) LockConnection(ctx context.Context, merchantID, connectionID uuid.UUID) (func(), error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	key := "connection:" + merchantID.String() + ":" + connectionID.String()
	if _, err := conn.Exec(ctx, `SET lock_timeout = '60s'`); err != nil {
		conn.Release()
		return nil, err
	}
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key)
	_, _ = conn.Exec(context.WithoutCancel(ctx), `RESET lock_timeout`)
	if err != nil {
		conn.Release()
		return nil, err
	}
	return func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}, nil
}

// MarkConnectionErrorAt moves an active connection to state error, but only while its
// credentials are still at version: a run that used keys the merchant has since replaced does
// not fail the renewed connection.
func (db *DB) MarkConnectionErrorAt(ctx context.Context, merchantID, connectionID uuid.UUID, version int64, reason string) error {
	_, err := db.pool.Exec(ctx, `UPDATE connections SET state = 'error', error = $4, updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND state = 'active' AND credentials_version = $3`,
		merchantID, connectionID, version, truncateText(reason, 500))
	return err
}
