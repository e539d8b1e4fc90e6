package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// CreateMerchant implements core.MerchantStore.
func (db *DB) CreateMerchant(ctx context.Context, m core.StoredMerchant) error {
	row := merchantRow{ID: m.ID, Name: m.Name, APIKeyHash: m.APIKeyHash, StorefrontKeyHash: m.StorefrontKeyHash, CreatedAt: timeUTC(m.CreatedAt)}
	if err := db.gorm.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("db: create merchant: %w", err)
	}
	return nil
}

// GetMerchant implements core.MerchantStore.
func (db *DB) GetMerchant(ctx context.Context, id uuid.UUID) (core.StoredMerchant, error) {
	var row merchantRow
	if err := db.gorm.WithContext(ctx).Take(&row, "id = ?", id).Error; err != nil {
		return core.StoredMerchant{}, notFound(err, core.ErrUnauthorized)
	}
	return core.StoredMerchant{
		Merchant:   core.Merchant{ID: row.ID, Name: row.Name, CreatedAt: row.CreatedAt.Time()},
		APIKeyHash: row.APIKeyHash, StorefrontKeyHash: row.StorefrontKeyHash,
		PreviousAPIKey:        previousKey(row.PreviousAPIKeyHash, row.PreviousAPIKeyExpiresAt),
		PreviousStorefrontKey: previousKey(row.PreviousStorefrontKeyHash, row.PreviousStorefrontKeyExpiresAt),
	}, nil
}

func previousKey(hash []byte, expires *time.Time) core.PreviousKey {
	if hash == nil || expires == nil {
		return core.PreviousKey{}
	}
	return core.PreviousKey{Hash: hash, Expires: expires.UTC()}
}

// rotateKeySQL moves each kind's current hash to its previous columns and sets the new one, in
// one statement, so concurrent rotations each replace the key the other made.
var rotateKeySQL = map[core.KeyKind]string{
	core.KeyAdmin: `UPDATE merchants SET previous_api_key_hash = api_key_hash, previous_api_key_expires_at = $2,
		api_key_hash = $3 WHERE id = $1`,
	core.KeyStorefront: `UPDATE merchants SET previous_storefront_key_hash = storefront_key_hash,
		previous_storefront_key_expires_at = $2, storefront_key_hash = $3 WHERE id = $1`,
}

// RotateMerchantKey implements core.MerchantStore.
func (db *DB) RotateMerchantKey(ctx context.Context, id uuid.UUID, kind core.KeyKind, hash []byte, previousExpires time.Time) error {
	q, ok := rotateKeySQL[kind]
	if !ok {
		return core.ErrKeyKindNotFound
	}
	tag, err := db.pool.Exec(ctx, q, id, previousExpires.UTC(), hash)
	if err != nil {
		return fmt.Errorf("db: rotate merchant key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return core.ErrMerchantNotFound
	}
	return nil
}
