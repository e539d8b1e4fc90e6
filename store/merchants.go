package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

type merchantRow struct {
	ID                uuid.UUID `gorm:"primaryKey"`
	Name              string
	APIKeyHash        []byte `gorm:"column:api_key_hash"`
	StorefrontKeyHash []byte
	CreatedAt         timeUTC
}

func (merchantRow) TableName() string { return "merchants" }

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
	}, nil
}
