package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/coupongate/coupongate/core"
)

// redeemLinkSelect reads a redeem link's columns with its hand-out count summed over its counter
// shards (redeem_link_counters, which an allocation from the link adds to), as handed_out.
const redeemLinkSelect = `redeem_links.*, coalesce((SELECT sum(k.handed_out) FROM redeem_link_counters k
	WHERE k.merchant_id = redeem_links.merchant_id AND k.link_id = redeem_links.id), 0)::bigint AS handed_out`

func toRedeemLinkRow(l core.RedeemLink) redeemLinkRow {
	page, _ := json.Marshal(l.Page)
	return redeemLinkRow{
		MerchantID: l.MerchantID, ID: l.ID, ListID: l.ListID, Slug: l.Slug, Name: l.Name, IdentifyBy: l.IdentifyBy,
		StartsAt: ptrUTC(l.StartsAt), EndsAt: ptrUTC(l.EndsAt), Page: page, Redirect: l.Redirect, RedirectURL: l.RedirectURL,
		CreatedAt: l.CreatedAt.UTC(), UpdatedAt: l.UpdatedAt.UTC(),
	}
}

func (r redeemLinkRow) toCore() (core.RedeemLink, error) {
	l := core.RedeemLink{
		MerchantID: r.MerchantID, ID: r.ID, ListID: r.ListID, Slug: r.Slug, Name: r.Name, IdentifyBy: r.IdentifyBy,
		StartsAt: ptrUTC(r.StartsAt), EndsAt: ptrUTC(r.EndsAt), Redirect: r.Redirect, RedirectURL: r.RedirectURL,
		HandedOut: r.HandedOut, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if err := json.Unmarshal(r.Page, &l.Page); err != nil {
		return l, fmt.Errorf("db: redeem link page: %w", err)
	}
	return l, nil
}

// CreateRedeemLink implements core.RedeemLinkStore: the link and its hand-out counter's shards.
func (db *DB) CreateRedeemLink(ctx context.Context, l core.RedeemLink) error {
	row := toRedeemLinkRow(l)
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("db: create redeem link: %w", err)
		}
		// An allocation from the link adds to one shard at random.
		if err := tx.Exec(`INSERT INTO redeem_link_counters (merchant_id, link_id, shard)
			SELECT ?, ?, s FROM generate_series(0, 63) s`, l.MerchantID, l.ID).Error; err != nil {
			return fmt.Errorf("db: create redeem link counters: %w", err)
		}
		return nil
	})
}

// GetRedeemLink implements core.RedeemLinkStore.
func (db *DB) GetRedeemLink(ctx context.Context, merchantID, id uuid.UUID) (core.RedeemLink, error) {
	var r redeemLinkRow
	if err := db.gorm.WithContext(ctx).Select(redeemLinkSelect).Take(&r, "merchant_id = ? AND id = ?", merchantID, id).Error; err != nil {
		return core.RedeemLink{}, notFound(err, core.ErrRedeemLinkNotFound)
	}
	return r.toCore()
}

// RedeemLinkBySlug implements core.RedeemLinkStore: the public page's look-up, by the slug that
// is unique across merchants. The page reads nothing else, so the count of hand-outs is left out
// (zero).
func (db *DB) RedeemLinkBySlug(ctx context.Context, slug string) (core.RedeemLink, error) {
	var r redeemLinkRow
	if err := db.gorm.WithContext(ctx).Take(&r, "slug = ?", slug).Error; err != nil {
		return core.RedeemLink{}, notFound(err, core.ErrRedeemLinkNotFound)
	}
	return r.toCore()
}

// ListRedeemLinks implements core.RedeemLinkStore, oldest first, keyed on (created_at, id).
func (db *DB) ListRedeemLinks(ctx context.Context, merchantID, listID uuid.UUID, page core.Page) ([]core.RedeemLink, string, error) {
	var after struct {
		At time.Time `json:"t"`
		ID uuid.UUID `json:"i"`
	}
	after.At = time.Unix(0, 0)
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &after); err != nil {
			return nil, "", err
		}
	}
	var rows []redeemLinkRow
	if err := db.gorm.WithContext(ctx).Select(redeemLinkSelect).
		Where("merchant_id = ? AND list_id = ? AND (created_at, id) > (?, ?)", merchantID, listID, after.At, after.ID).
		Order("created_at, id").Limit(page.Limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("db: list redeem links: %w", err)
	}
	links := make([]core.RedeemLink, 0, len(rows))
	for _, r := range rows {
		l, err := r.toCore()
		if err != nil {
			return nil, "", err
		}
		links = append(links, l)
	}
	next := ""
	if len(links) > page.Limit {
		links = links[:page.Limit]
		last := links[len(links)-1]
		after.At, after.ID = last.CreatedAt, last.ID
		next = encodeCursor(after)
	}
	return links, next, nil
}

// UpdateRedeemLink implements core.RedeemLinkStore under the link's row lock: the read, change
// and the write run in one transaction.
func (db *DB) UpdateRedeemLink(ctx context.Context, merchantID, id uuid.UUID, change func(*core.RedeemLink) error) (core.RedeemLink, error) {
	var out core.RedeemLink
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var r redeemLinkRow
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Select(redeemLinkSelect).
			Take(&r, "merchant_id = ? AND id = ?", merchantID, id).Error; err != nil {
			return notFound(err, core.ErrRedeemLinkNotFound)
		}
		l, err := r.toCore()
		if err != nil {
			return err
		}
		if err := change(&l); err != nil {
			return err
		}
		nr := toRedeemLinkRow(l)
		if err := tx.Model(&redeemLinkRow{}).Where("merchant_id = ? AND id = ?", merchantID, id).Updates(map[string]any{
			"name": nr.Name, "identify_by": nr.IdentifyBy, "starts_at": nr.StartsAt, "ends_at": nr.EndsAt, "page": nr.Page,
			"redirect": nr.Redirect, "redirect_url": nr.RedirectURL, "updated_at": nr.UpdatedAt,
		}).Error; err != nil {
			return fmt.Errorf("db: update redeem link: %w", err)
		}
		out = l
		return nil
	})
	return out, err
}

// DeleteRedeemLink implements core.RedeemLinkStore; its counter shards go with it (ON DELETE
// CASCADE).
func (db *DB) DeleteRedeemLink(ctx context.Context, merchantID, id uuid.UUID) error {
	res := db.gorm.WithContext(ctx).Where("merchant_id = ? AND id = ?", merchantID, id).Delete(&redeemLinkRow{})
	if res.Error != nil {
		return fmt.Errorf("db: delete redeem link: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return core.ErrRedeemLinkNotFound
	}
	return nil
}

// PushedShopifyShop implements core.PushedShops: the oldest active Shopify connection with a push
// of the list that is active or under way.
func (db *DB) PushedShopifyShop(ctx context.Context, merchantID, listID uuid.UUID) (string, error) {
	var shop string
	err := db.pool.QueryRow(ctx, `SELECT c.shop FROM list_connections p
		JOIN connections c ON c.merchant_id = p.merchant_id AND c.id = p.connection_id
		WHERE p.merchant_id = $1 AND p.list_id = $2 AND c.platform = 'shopify' AND c.state = 'active'
		AND p.state IN ('active', 'pushing') ORDER BY p.created_at LIMIT 1`, merchantID, listID).Scan(&shop)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("db: pushed shop: %w", err)
	}
	return shop, nil
}
