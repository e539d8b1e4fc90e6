package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/coupongate/coupongate/core"
)

// counterShards is how many counter rows a list has; each writer adds to one drawn at random.
const counterShards = 64

// randomShard draws the counter shard a write adds to. It is drawn here and passed as a parameter:
// random() in a WHERE clause would be drawn again for every row.
func randomShard() int16 { return int16(rand.IntN(counterShards)) }

func toListRow(l core.List) listRow {
	r := listRow{
		MerchantID: l.MerchantID, ID: l.ID, Name: l.Name, Description: l.Description, Kind: string(l.Kind),
		UsesPerCode: l.UsesPerCode, RequireIssued: l.RequireIssued, StartsAt: ptrUTC(l.StartsAt), ExpiresAt: ptrUTC(l.ExpiresAt),
		LowStockThreshold: l.LowStockThreshold, ReassignWindow: int64(l.ReassignWindow / time.Second),
		CaseInsensitive: l.CaseInsensitive, ArchivedAt: ptrUTC(l.ArchivedAt), CreatedAt: l.CreatedAt.UTC(), UpdatedAt: l.UpdatedAt.UTC(),
	}
	if l.ValidFor > 0 {
		s := int64(l.ValidFor / time.Second)
		r.ValidFor = &s
	}
	if l.Kind == core.KindFixed {
		r.FixedCode = &l.FixedCode
		r.MaxAssignments = &l.MaxAssignments
	}
	return r
}

func (r listRow) toCore() core.List {
	l := core.List{
		ID: r.ID, MerchantID: r.MerchantID, Name: r.Name, Description: r.Description, Kind: core.ListKind(r.Kind),
		UsesPerCode: r.UsesPerCode, RequireIssued: r.RequireIssued, StartsAt: ptrUTC(r.StartsAt), ExpiresAt: ptrUTC(r.ExpiresAt),
		LowStockThreshold: r.LowStockThreshold, ReassignWindow: time.Duration(r.ReassignWindow) * time.Second,
		CaseInsensitive: r.CaseInsensitive, ArchivedAt: ptrUTC(r.ArchivedAt), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.ValidFor != nil {
		l.ValidFor = time.Duration(*r.ValidFor) * time.Second
	}
	if r.FixedCode != nil {
		l.FixedCode = *r.FixedCode
	}
	if r.MaxAssignments != nil {
		l.MaxAssignments = *r.MaxAssignments
	}
	return l
}

// CreateList implements core.ListStore: the list, its counter shards and, for a fixed list, its
// code, in one transaction.
func (db *DB) CreateList(ctx context.Context, l core.List) error {
	r := toListRow(l)
	// A fixed list's code takes position 1; the next code of any other list does.
	r.NextSeq = map[bool]int64{true: 2, false: 1}[l.Kind == core.KindFixed]
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&r).Error; err != nil {
			return fmt.Errorf("db: insert list: %w", err)
		}
		if err := tx.Exec(`INSERT INTO list_counters (merchant_id, list_id, shard, available)
			SELECT ?, ?, s, CASE WHEN s = 0 THEN ?::bigint ELSE 0 END FROM generate_series(0, ?::int - 1) AS s`,
			l.MerchantID, l.ID, l.Counts.Available, counterShards).Error; err != nil {
			return fmt.Errorf("db: insert list counters: %w", err)
		}
		if l.Kind == core.KindFixed {
			if err := tx.Exec(`INSERT INTO codes (merchant_id, list_id, seq, code, lookup) VALUES (?, ?, 1, ?, ?)`,
				l.MerchantID, l.ID, l.FixedCode, l.Lookup(l.FixedCode)).Error; err != nil {
				return fmt.Errorf("db: insert fixed code: %w", err)
			}
		}
		return nil
	})
}

// GetList implements core.ListStore.
func (db *DB) GetList(ctx context.Context, merchantID, listID uuid.UUID) (core.List, error) {
	var r listRow
	if err := db.gorm.WithContext(ctx).Take(&r, "merchant_id = ? AND id = ?", merchantID, listID).Error; err != nil {
		return core.List{}, notFound(err, core.ErrListNotFound)
	}
	l := r.toCore()
	counts, err := db.listCounts(ctx, merchantID, []uuid.UUID{listID})
	if err != nil {
		return core.List{}, err
	}
	l.Counts = countsOf(l, counts[listID])
	return l, nil
}

// ListLists implements core.ListStore, oldest first, keyed on (created_at, id).
func (db *DB) ListLists(ctx context.Context, merchantID uuid.UUID, page core.Page) ([]core.List, string, error) {
	var after struct {
		At time.Time `json:"t"`
		ID uuid.UUID `json:"i"`
	}
	q := db.gorm.WithContext(ctx).Where("merchant_id = ?", merchantID)
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &after); err != nil {
			return nil, "", err
		}
		q = q.Where("(created_at, id) > (?, ?)", after.At, after.ID)
	}
	var rows []listRow
	if err := q.Order("created_at, id").Limit(page.Limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("db: list lists: %w", err)
	}
	next := ""
	if len(rows) > page.Limit {
		rows = rows[:page.Limit]
		last := rows[len(rows)-1]
		after.At, after.ID = last.CreatedAt, last.ID
		next = encodeCursor(after)
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	counts, err := db.listCounts(ctx, merchantID, ids)
	if err != nil {
		return nil, "", err
	}
	lists := make([]core.List, len(rows))
	for i, r := range rows {
		lists[i] = r.toCore()
		lists[i].Counts = countsOf(lists[i], counts[r.ID])
	}
	return lists, next, nil
}

// countsOf adjusts summed counts to the list's kind: a fixed list holds one code, however many
// times it was handed out (its delivered count is the number of hand-outs).
func countsOf(l core.List, c core.Counts) core.Counts {
	if l.Kind == core.KindFixed {
		c.Total = 1
	}
	return c
}

// listCounts sums the counter shards of the given lists.
func (db *DB) listCounts(ctx context.Context, merchantID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]core.Counts, error) {
	out := make(map[uuid.UUID]core.Counts, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT list_id, sum(available), sum(delivered), sum(redeemed), sum(removed)
		FROM list_counters WHERE merchant_id = $1 AND list_id = ANY($2) GROUP BY list_id`, merchantID, ids)
	if err != nil {
		return nil, fmt.Errorf("db: list counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var c core.Counts
		if err := rows.Scan(&id, &c.Available, &c.Delivered, &c.Redeemed, &c.Removed); err != nil {
			return nil, fmt.Errorf("db: list counts: %w", err)
		}
		c.Total = c.Available + c.Delivered + c.Redeemed
		out[id] = c
	}
	return out, rows.Err()
}

// UpdateList implements core.ListStore under the list's row lock, on one connection: the lock, the
// counts, change and the write all run in the one transaction.
func (db *DB) UpdateList(ctx context.Context, merchantID, listID uuid.UUID, change func(*core.List) error) (core.List, error) {
	var out core.List
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var r listRow
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&r, "merchant_id = ? AND id = ?", merchantID, listID).Error; err != nil {
			return notFound(err, core.ErrListNotFound)
		}
		l := r.toCore()
		// The counts are read on the transaction's own connection: taking a second one from the
		// pool while holding this one lets enough concurrent updates exhaust the pool and wait on
		// each other for ever.
		var c core.Counts
		if err := tx.Raw(`SELECT coalesce(sum(available), 0)::bigint AS available, coalesce(sum(delivered), 0)::bigint AS delivered,
			coalesce(sum(redeemed), 0)::bigint AS redeemed, coalesce(sum(removed), 0)::bigint AS removed
			FROM list_counters WHERE merchant_id = ? AND list_id = ?`, merchantID, listID).
			Row().Scan(&c.Available, &c.Delivered, &c.Redeemed, &c.Removed); err != nil {
			return fmt.Errorf("db: list counts: %w", err)
		}
		c.Total = c.Available + c.Delivered + c.Redeemed
		l.Counts = countsOf(l, c)
		if err := change(&l); err != nil {
			return err
		}
		nr := toListRow(l)
		if err := tx.Model(&listRow{}).Where("merchant_id = ? AND id = ?", merchantID, listID).Updates(map[string]any{
			"name": nr.Name, "description": nr.Description, "max_assignments": nr.MaxAssignments, "uses_per_code": nr.UsesPerCode,
			"require_issued": nr.RequireIssued, "starts_at": nr.StartsAt, "expires_at": nr.ExpiresAt,
			"low_stock_threshold": nr.LowStockThreshold, "reassign_window": nr.ReassignWindow, "archived_at": nr.ArchivedAt,
			"valid_for":  nr.ValidFor,
			"updated_at": nr.UpdatedAt,
			// A new expiry may expire the list again later.
			"expired_event_at": gorm.Expr("CASE WHEN expires_at IS NOT DISTINCT FROM ? THEN expired_event_at END", nr.ExpiresAt),
			// A threshold lowered to or under the stock re-arms the low-stock alert; one raised above
			// it is a crossing the sweeper records.
			"stock_state": gorm.Expr("CASE WHEN stock_state = 'low' AND ?::bigint >= ?::bigint THEN 'ok' ELSE stock_state END", l.Counts.Available, nr.LowStockThreshold),
		}).Error; err != nil {
			return fmt.Errorf("db: update list: %w", err)
		}
		out = l
		return nil
	})
	return out, err
}

// DeleteList implements core.ListStore.
func (db *DB) DeleteList(ctx context.Context, merchantID, listID uuid.UUID) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		var connected bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM list_connections WHERE merchant_id = $1 AND list_id = $2)
			OR EXISTS (SELECT 1 FROM templates WHERE merchant_id = $1 AND list_id = $2)
			FROM code_lists WHERE merchant_id = $1 AND id = $2 FOR UPDATE`, merchantID, listID).Scan(&connected)
		if err != nil {
			return notFound(err, core.ErrListNotFound)
		}
		if connected {
			var total int64
			if err := tx.QueryRow(ctx, `SELECT coalesce(sum(available + delivered + redeemed), 0) FROM list_counters
				WHERE merchant_id = $1 AND list_id = $2`, merchantID, listID).Scan(&total); err != nil {
				return fmt.Errorf("db: count codes: %w", err)
			}
			if total > 0 {
				return core.ErrListConnected
			}
			// Codes removed from the list stay redeemable in a shop until the push has deleted
			// them there: the list goes only after that.
			var inShop bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM list_connections p
				JOIN connections c ON c.merchant_id = p.merchant_id AND c.id = p.connection_id AND c.state = 'active'
				WHERE p.merchant_id = $1 AND p.list_id = $2 AND p.state <> 'stopped' AND p.pushed > p.deleted)`,
				merchantID, listID).Scan(&inShop); err != nil {
				return fmt.Errorf("db: pushed codes: %w", err)
			}
			if inShop {
				return core.ErrListConnected
			}
		}
		for _, stmt := range []string{
			`DELETE FROM codes WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM allocations WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM code_events WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM import_chunks WHERE merchant_id = $1 AND import_id IN (SELECT id FROM imports WHERE merchant_id = $1 AND list_id = $2)`,
			`DELETE FROM imports WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM batches WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM list_connections WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM code_pushes WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM deliveries WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM delivery_job_chunks WHERE merchant_id = $1 AND job_id IN (SELECT id FROM delivery_jobs WHERE merchant_id = $1 AND list_id = $2)`,
			`DELETE FROM delivery_jobs WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM templates WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM reservations WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM order_codes WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM redemptions WHERE merchant_id = $1 AND list_id = $2`,
			`DELETE FROM code_lists WHERE merchant_id = $1 AND id = $2`,
		} {
			if _, err := tx.Exec(ctx, stmt, merchantID, listID); err != nil {
				return fmt.Errorf("db: delete list: %w", err)
			}
		}
		return nil
	})
}
