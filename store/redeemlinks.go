package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// redeemLinkColumns are the columns scanRedeemLink reads, with the link's hand-out count summed
// over its counter shards.
const redeemLinkColumns = `l.merchant_id, l.id, l.list_id, l.slug, l.name, l.identify_by, l.starts_at, l.ends_at, l.page,
	l.redirect, l.redirect_url, l.created_at, l.updated_at,
	coalesce((SELECT sum(k.handed_out) FROM redeem_link_counters k WHERE k.merchant_id = l.merchant_id AND k.link_id = l.id), 0)::bigint`

func scanRedeemLink(row pgx.Row) (core.RedeemLink, error) {
	var l core.RedeemLink
	var page []byte
	err := row.Scan(&l.MerchantID, &l.ID, &l.ListID, &l.Slug, &l.Name, &l.IdentifyBy, &l.StartsAt, &l.EndsAt, &page,
		&l.Redirect, &l.RedirectURL, &l.CreatedAt, &l.UpdatedAt, &l.HandedOut)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(page, &l.Page); err != nil {
		return l, fmt.Errorf("db: redeem link page: %w", err)
	}
	l.StartsAt, l.EndsAt = ptrUTC(l.StartsAt), ptrUTC(l.EndsAt)
	l.CreatedAt, l.UpdatedAt = l.CreatedAt.UTC(), l.UpdatedAt.UTC()
	return l, nil
}

// CreateRedeemLink implements core.RedeemLinkStore.
func (db *DB) CreateRedeemLink(ctx context.Context, l core.RedeemLink) error {
	page, _ := json.Marshal(l.Page)
	return db.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO redeem_links (merchant_id, id, list_id, slug, name, identify_by, starts_at, ends_at,
			page, redirect, redirect_url, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			l.MerchantID, l.ID, l.ListID, l.Slug, l.Name, l.IdentifyBy, l.StartsAt, l.EndsAt, page, l.Redirect, l.RedirectURL,
			l.CreatedAt, l.UpdatedAt)
		if err != nil {
			return fmt.Errorf("db: create redeem link: %w", err)
		}
		// The hand-out counter's shards (cg_allocate_once adds to one at random).
		if _, err := tx.Exec(ctx, `INSERT INTO redeem_link_counters (merchant_id, link_id, shard)
			SELECT $1, $2, s FROM generate_series(0, 63) s`, l.MerchantID, l.ID); err != nil {
			return fmt.Errorf("db: create redeem link counters: %w", err)
		}
		return nil
	})
}

// GetRedeemLink implements core.RedeemLinkStore.
func (db *DB) GetRedeemLink(ctx context.Context, merchantID, id uuid.UUID) (core.RedeemLink, error) {
	l, err := scanRedeemLink(db.pool.QueryRow(ctx, `SELECT `+redeemLinkColumns+` FROM redeem_links l
		WHERE l.merchant_id = $1 AND l.id = $2`, merchantID, id))
	if err != nil {
		return l, notFound(err, core.ErrRedeemLinkNotFound)
	}
	return l, nil
}

// RedeemLinkBySlug implements core.RedeemLinkStore. The public page reads nothing else, so the
// count of hand-outs is left out.
func (db *DB) RedeemLinkBySlug(ctx context.Context, slug string) (core.RedeemLink, error) {
	var l core.RedeemLink
	var page []byte
	err := db.pool.QueryRow(ctx, `SELECT merchant_id, id, list_id, slug, name, identify_by, starts_at, ends_at, page,
		redirect, redirect_url, created_at, updated_at FROM redeem_links WHERE slug = $1`, slug).
		Scan(&l.MerchantID, &l.ID, &l.ListID, &l.Slug, &l.Name, &l.IdentifyBy, &l.StartsAt, &l.EndsAt, &page,
			&l.Redirect, &l.RedirectURL, &l.CreatedAt, &l.UpdatedAt)
	if err != nil {
		return l, notFound(err, core.ErrRedeemLinkNotFound)
	}
	if err := json.Unmarshal(page, &l.Page); err != nil {
		return l, fmt.Errorf("db: redeem link page: %w", err)
	}
	l.StartsAt, l.EndsAt = ptrUTC(l.StartsAt), ptrUTC(l.EndsAt)
	return l, nil
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
	rows, err := db.pool.Query(ctx, `SELECT `+redeemLinkColumns+` FROM redeem_links l
		WHERE l.merchant_id = $1 AND l.list_id = $2 AND (l.created_at, l.id) > ($3, $4)
		ORDER BY l.created_at, l.id LIMIT $5`, merchantID, listID, after.At, after.ID, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("db: list redeem links: %w", err)
	}
	links, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.RedeemLink, error) { return scanRedeemLink(r) })
	if err != nil {
		return nil, "", fmt.Errorf("db: list redeem links: %w", err)
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

// UpdateRedeemLink implements core.RedeemLinkStore under the link's row lock.
func (db *DB) UpdateRedeemLink(ctx context.Context, merchantID, id uuid.UUID, change func(*core.RedeemLink) error) (core.RedeemLink, error) {
	var out core.RedeemLink
	err := db.tx(ctx, func(tx pgx.Tx) error {
		l, err := scanRedeemLink(tx.QueryRow(ctx, `SELECT `+redeemLinkColumns+` FROM redeem_links l
			WHERE l.merchant_id = $1 AND l.id = $2 FOR UPDATE`, merchantID, id))
		if err != nil {
			return notFound(err, core.ErrRedeemLinkNotFound)
		}
		if err := change(&l); err != nil {
			return err
		}
		page, _ := json.Marshal(l.Page)
		if _, err := tx.Exec(ctx, `UPDATE redeem_links SET name = $3, identify_by = $4, starts_at = $5, ends_at = $6, page = $7,
			redirect = $8, redirect_url = $9, updated_at = $10 WHERE merchant_id = $1 AND id = $2`,
			merchantID, id, l.Name, l.IdentifyBy, l.StartsAt, l.EndsAt, page, l.Redirect, l.RedirectURL, l.UpdatedAt); err != nil {
			return fmt.Errorf("db: update redeem link: %w", err)
		}
		out = l
		return nil
	})
	return out, err
}

// DeleteRedeemLink implements core.RedeemLinkStore.
func (db *DB) DeleteRedeemLink(ctx context.Context, merchantID, id uuid.UUID) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM redeem_links WHERE merchant_id = $1 AND id = $2`, merchantID, id)
	if err != nil {
		return fmt.Errorf("db: delete redeem link: %w", err)
	}
	if tag.RowsAffected() == 0 {
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
