package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// UseSealer sets how credentials are sealed at rest; without one, storing credentials fails.
func (db *DB) UseSealer(s *Sealer) { db.sealer = s }

// credentialsAD binds sealed credentials to their row.
func credentialsAD(merchantID, connectionID uuid.UUID) []byte {
	return []byte("connections:" + merchantID.String() + ":" + connectionID.String())
}

func (db *DB) sealCredentials(merchantID, connectionID uuid.UUID, c core.Credentials) ([]byte, error) {
	if db.sealer == nil {
		return nil, errors.New("db: no sealer configured for credentials")
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return db.sealer.Seal(plain, credentialsAD(merchantID, connectionID)), nil
}

func (db *DB) openCredentials(merchantID, connectionID uuid.UUID, sealed []byte) (core.Credentials, error) {
	var c core.Credentials
	if len(sealed) == 0 {
		return c, nil
	}
	if db.sealer == nil {
		return c, errors.New("db: no sealer configured for credentials")
	}
	plain, err := db.sealer.Open(sealed, credentialsAD(merchantID, connectionID))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(plain, &c)
}

const connectionColumns = `merchant_id, id, platform, shop, state, scopes, synced_at, error, created_at, updated_at, paid_statuses`

func scanConnection(row pgx.Row) (core.Connection, error) {
	var c core.Connection
	var synced *time.Time
	err := row.Scan(&c.MerchantID, &c.ID, &c.Platform, &c.Shop, &c.State, &c.Scopes, &synced, &c.Error, &c.CreatedAt, &c.UpdatedAt, &c.PaidStatuses)
	if synced != nil {
		t := synced.UTC()
		c.SyncedAt = &t
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// ListConnections implements core.ConnectionStore: oldest first, the cursor is the last id seen
// with its creation time.
func (db *DB) ListConnections(ctx context.Context, merchantID uuid.UUID, page core.Page) ([]core.Connection, string, error) {
	var after timePosition
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &after); err != nil {
			return nil, "", err
		}
	}
	rows, err := db.pool.Query(ctx, `SELECT `+connectionColumns+` FROM connections
		WHERE merchant_id = $1 AND (created_at, id) > ($2, $3)
		ORDER BY created_at, id LIMIT $4`, merchantID, after.At, after.ID, page.Limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.Connection, error) { return scanConnection(r) })
	if err != nil {
		return nil, "", err
	}
	out, next := trimPage(out, page.Limit, func(c core.Connection) timePosition { return timePosition{At: c.CreatedAt, ID: c.ID} })
	return out, next, nil
}

// GetConnection implements core.ConnectionStore.
func (db *DB) GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error) {
	c, err := scanConnection(db.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections
		WHERE merchant_id = $1 AND id = $2`, merchantID, id))
	if err != nil {
		return core.Connection{}, notFound(err, core.ErrConnectionNotFound)
	}
	return c, nil
}

// DisconnectConnection implements core.ConnectionStore: the shop's route goes at once (its
// webhooks are ignored from now on) and its pushes stop; the credentials stay until the
// disconnect task has removed the platform's webhooks with them.
func (db *DB) DisconnectConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error) {
	var c core.Connection
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = scanConnection(tx.QueryRow(ctx, `UPDATE connections SET state = 'disconnected', updated_at = now()
			WHERE merchant_id = $1 AND id = $2 RETURNING `+connectionColumns, merchantID, id))
		if err != nil {
			return notFound(err, core.ErrConnectionNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM shop_routes WHERE platform = $1 AND shop = $2 AND merchant_id = $3 AND connection_id = $4`,
			c.Platform, c.Shop, merchantID, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE list_connections SET state = 'stopped', updated_at = now()
			WHERE merchant_id = $1 AND connection_id = $2`, merchantID, id)
		return err
	})
	return c, err
}

// InstallShop connects a shop after OAuth: the shop's merchant and connection when it is
// routed (or, for a reinstall, was connected before), else a new merchant from newMerchant with
// a new connection and route. The credentials are sealed and stored, the connection becomes
// active. Concurrent installs of one shop are serialised by an advisory lock on the shop.
func (db *DB) InstallShop(ctx context.Context, platform, shop string, creds core.Credentials, scopes string,
	newMerchant func() (core.StoredMerchant, error)) (route core.ShopRoute, created bool, err error) {
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('install:' || $1 || ':' || $2, 0))`, platform, shop); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT merchant_id, connection_id FROM shop_routes WHERE platform = $1 AND shop = $2`,
			platform, shop).Scan(&route.MerchantID, &route.ConnectionID)
		if errors.Is(err, pgx.ErrNoRows) {
			// A reinstall: the shop was connected before and uninstalled. This scans across
			// merchants (under Citus, every shard), which a rare install can afford.
			err = tx.QueryRow(ctx, `SELECT merchant_id, id FROM connections WHERE platform = $1 AND shop = $2
				ORDER BY created_at DESC LIMIT 1`, platform, shop).Scan(&route.MerchantID, &route.ConnectionID)
		}
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			m, err := newMerchant()
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO merchants (id, name, api_key_hash, storefront_key_hash, created_at)
				VALUES ($1, $2, $3, $4, $5)`, m.ID, m.Name, m.APIKeyHash, m.StorefrontKeyHash, m.CreatedAt); err != nil {
				return err
			}
			route = core.ShopRoute{MerchantID: m.ID, ConnectionID: uuid.New()}
			if _, err := tx.Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, $3, $4)`,
				route.MerchantID, route.ConnectionID, platform, shop); err != nil {
				return err
			}
			created = true
		case err != nil:
			return err
		}
		sealed, err := db.sealCredentials(route.MerchantID, route.ConnectionID, creds)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE connections SET state = 'active', error = '', scopes = $3, credentials = $4,
			credentials_version = credentials_version + 1, token_expires_at = $5, installed_at = now(), updated_at = now()
			WHERE merchant_id = $1 AND id = $2`, route.MerchantID, route.ConnectionID, scopes, sealed, creds.ExpiresAt); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO shop_routes (platform, shop, merchant_id, connection_id) VALUES ($1, $2, $3, $4)
			ON CONFLICT (platform, shop) DO UPDATE SET merchant_id = EXCLUDED.merchant_id, connection_id = EXCLUDED.connection_id`,
			platform, shop, route.MerchantID, route.ConnectionID)
		return err
	})
	return route, created, err
}

// Credentials returns a connection's credentials, opened, with their version for SaveCredentials.
func (db *DB) Credentials(ctx context.Context, merchantID, connectionID uuid.UUID) (core.Credentials, int64, error) {
	var sealed []byte
	var version int64
	err := db.pool.QueryRow(ctx, `SELECT credentials, credentials_version FROM connections WHERE merchant_id = $1 AND id = $2`,
		merchantID, connectionID).Scan(&sealed, &version)
	if err != nil {
		return core.Credentials{}, 0, notFound(err, core.ErrConnectionNotFound)
	}
	c, err := db.openCredentials(merchantID, connectionID, sealed)
	return c, version, err
}

// SaveCredentials replaces a connection's credentials if they are still at version (a token
// pair is stored whole, in one row write); saved is false when another process refreshed first.
func (db *DB) SaveCredentials(ctx context.Context, merchantID, connectionID uuid.UUID, creds core.Credentials, version int64) (bool, error) {
	sealed, err := db.sealCredentials(merchantID, connectionID, creds)
	if err != nil {
		return false, err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE connections SET credentials = $3, credentials_version = credentials_version + 1,
		token_expires_at = $4, updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND credentials_version = $5`, merchantID, connectionID, sealed, creds.ExpiresAt, version)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// RefreshCredentials implements shopify.CredentialStore (checked in internal/app): refresh runs inside a transaction that
// holds the connection's row lock, and its result is sealed and stored in the same transaction.
func (db *DB) RefreshCredentials(ctx context.Context, merchantID, connectionID uuid.UUID,
	refresh func(core.Credentials) (core.Credentials, bool, error)) (core.Credentials, error) {
	var out core.Credentials
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// Waiting behind another process's refresh is fine; waiting forever is not.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
			return err
		}
		var sealed []byte
		if err := tx.QueryRow(ctx, `SELECT credentials FROM connections WHERE merchant_id = $1 AND id = $2 FOR UPDATE`,
			merchantID, connectionID).Scan(&sealed); err != nil {
			return notFound(err, core.ErrConnectionNotFound)
		}
		cur, err := db.openCredentials(merchantID, connectionID, sealed)
		if err != nil {
			return err
		}
		next, changed, err := refresh(cur)
		if err != nil {
			return err
		}
		out = next
		if !changed {
			return nil
		}
		box, err := db.sealCredentials(merchantID, connectionID, next)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE connections SET credentials = $3, credentials_version = credentials_version + 1,
			token_expires_at = $4, updated_at = now() WHERE merchant_id = $1 AND id = $2`, merchantID, connectionID, box, next.ExpiresAt)
		return err
	})
	return out, err
}

// ForgetCredentials erases the credentials and the record of platform webhooks of a connection
// that is not active (a shop installed again meanwhile keeps its new ones).
func (db *DB) ForgetCredentials(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	_, err := db.pool.Exec(ctx, `UPDATE connections SET credentials = NULL, credentials_version = credentials_version + 1,
		token_expires_at = NULL, remote_webhooks = '[]', updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND state <> 'active'`, merchantID, connectionID)
	return err
}

// SetRemoteWebhooks records the platform's ids of the webhook subscriptions made for a connection.
func (db *DB) SetRemoteWebhooks(ctx context.Context, merchantID, connectionID uuid.UUID, ids []string) error {
	if ids == nil {
		ids = []string{}
	}
	b, _ := json.Marshal(ids)
	_, err := db.pool.Exec(ctx, `UPDATE connections SET remote_webhooks = $3, updated_at = now() WHERE merchant_id = $1 AND id = $2`,
		merchantID, connectionID, b)
	return err
}

// RemoteWebhooks returns the platform's ids of the connection's webhook subscriptions.
func (db *DB) RemoteWebhooks(ctx context.Context, merchantID, connectionID uuid.UUID) ([]string, error) {
	var ids []string
	err := db.pool.QueryRow(ctx, `SELECT remote_webhooks FROM connections WHERE merchant_id = $1 AND id = $2`,
		merchantID, connectionID).Scan(&ids)
	if err != nil {
		return nil, notFound(err, core.ErrConnectionNotFound)
	}
	return ids, nil
}

// MarkConnectionError moves an active connection to state error with the reason.
func (db *DB) MarkConnectionError(ctx context.Context, merchantID, connectionID uuid.UUID, reason string) error {
	_, err := db.pool.Exec(ctx, `UPDATE connections SET state = 'error', error = $3, updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND state = 'active'`, merchantID, connectionID, truncateText(reason, 500))
	return err
}

// SetSyncedAt records how far a connection's orders were reconciled.
func (db *DB) SetSyncedAt(ctx context.Context, merchantID, connectionID uuid.UUID, at time.Time) error {
	_, err := db.pool.Exec(ctx, `UPDATE connections SET synced_at = $3 WHERE merchant_id = $1 AND id = $2`, merchantID, connectionID, at)
	return err
}

// ActiveConnections pages through every active connection of a platform, across merchants (for
// the scheduler), after the given (merchant, id).
func (db *DB) ActiveConnections(ctx context.Context, platform string, afterMerchant, afterID uuid.UUID, limit int) ([]core.Connection, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+connectionColumns+` FROM connections
		WHERE platform = $1 AND state = 'active' AND (merchant_id, id) > ($2, $3)
		ORDER BY merchant_id, id LIMIT $4`, platform, afterMerchant, afterID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.Connection, error) { return scanConnection(r) })
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}

var _ core.ConnectionStore = (*DB)(nil)
