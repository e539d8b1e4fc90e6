package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coupongate/coupongate/core"
)

// Allocate implements core.AllocationStore with the one-round-trip cg_allocate statement
// (migrations/00002).
func (db *DB) Allocate(ctx context.Context, merchantID, listID uuid.UUID, pos *int64, recipientKey string, req core.AllocationRequest) (core.AllocateResult, error) {
	var (
		r                           core.AllocateResult
		seq, avail, next, threshold *int64
		code, stock                 *string
		expires                     *time.Time
	)
	query, args := `SELECT outcome, seq, code, expires_at, reused, available, next_seq, low_stock_threshold, stock_state
		FROM cg_allocate($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, []any{
		merchantID, listID, pos, recipientKey, nullable(req.Recipient.ExternalID), nullable(req.Recipient.Email),
		nullable(req.Recipient.Phone), req.Campaign, req.Channel, req.Actor,
	}
	if req.RedeemLink != uuid.Nil {
		// One code per recipient and link, ever (migrations/00015 cg_allocate_once).
		query = `SELECT outcome, seq, code, expires_at, reused, available, next_seq, low_stock_threshold, stock_state
			FROM cg_allocate_once($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
		args = append(args, req.RedeemLink)
	}
	err := db.pool.QueryRow(ctx, query, args...).Scan(&r.Outcome, &seq, &code, &expires, &r.Reused, &avail, &next, &threshold, &stock)
	if err != nil {
		return r, fmt.Errorf("db: allocate: %w", err)
	}
	r.Seq, r.Available, r.NextSeq, r.LowStockThreshold = deref(seq), deref(avail), deref(next), deref(threshold)
	r.AvailableKnown = avail != nil
	r.Code, r.StockState = deref(code), deref(stock)
	r.ExpiresAt = ptrUTC(expires)
	return r, nil
}

// AllocateBatch implements core.AllocationStore with cg_allocate_batch (migrations/00021): the
// batch's hand-outs in one statement and one commit. A deadlock PostgreSQL broke (two batches
// drawn the same position after a cursor reset) is retried; the statement took nothing then.
func (db *DB) AllocateBatch(ctx context.Context, merchantID, listID uuid.UUID, items []core.AllocationBatchItem) ([]core.AllocateResult, error) {
	n := len(items)
	pos, keys := make([]int64, n), make([]string, n)
	ext, email, phone := make([]*string, n), make([]*string, n), make([]*string, n)
	campaign, channel, actor := make([]string, n), make([]string, n), make([]string, n)
	for i, it := range items {
		pos[i], keys[i] = it.Pos, it.RecipientKey
		ext[i], email[i], phone[i] = nullable(it.Req.Recipient.ExternalID), nullable(it.Req.Recipient.Email), nullable(it.Req.Recipient.Phone)
		campaign[i], channel[i], actor[i] = it.Req.Campaign, it.Req.Channel, it.Req.Actor
	}
	var link *uuid.UUID // one redeem link's batch, or none (see core.AllocationBatchItem)
	if n > 0 && items[0].Req.RedeemLink != uuid.Nil {
		link = &items[0].Req.RedeemLink
	}
	for attempt := 1; ; attempt++ {
		out, err := db.allocateBatch(ctx, merchantID, listID, n, pos, keys, ext, email, phone, campaign, channel, actor, link)
		if err != nil && isDeadlock(err) && attempt < 3 {
			continue
		}
		return out, err
	}
}

func (db *DB) allocateBatch(ctx context.Context, merchantID, listID uuid.UUID, n int, pos []int64, keys []string,
	ext, email, phone []*string, campaign, channel, actor []string, link *uuid.UUID) ([]core.AllocateResult, error) {
	rows, err := db.pool.Query(ctx, `SELECT idx, outcome, seq, code, expires_at, reused, available, next_seq,
		low_stock_threshold, stock_state, reassign_window
		FROM cg_allocate_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		merchantID, listID, pos, keys, ext, email, phone, campaign, channel, actor, link)
	if err != nil {
		return nil, fmt.Errorf("db: allocate batch: %w", err)
	}
	defer rows.Close()
	out := make([]core.AllocateResult, n)
	for rows.Next() {
		var (
			r                           core.AllocateResult
			idx                         int
			seq, avail, next, threshold *int64
			code, stock                 *string
			expires                     *time.Time
			window                      int32
		)
		if err := rows.Scan(&idx, &r.Outcome, &seq, &code, &expires, &r.Reused, &avail, &next, &threshold, &stock, &window); err != nil {
			return nil, fmt.Errorf("db: allocate batch: %w", err)
		}
		if idx < 1 || idx > n {
			return nil, fmt.Errorf("db: allocate batch: answer for request %d of %d", idx, n)
		}
		r.Seq, r.Available, r.NextSeq, r.LowStockThreshold = deref(seq), deref(avail), deref(next), deref(threshold)
		r.AvailableKnown = avail != nil
		r.Code, r.StockState = deref(code), deref(stock)
		r.ExpiresAt = ptrUTC(expires)
		r.HandsBack = window > 0 || link != nil
		out[idx-1] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: allocate batch: %w", err)
	}
	return out, nil
}

// isDeadlock reports a deadlock PostgreSQL detected and broke (SQLSTATE 40P01).
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

// Domain event types recorded for stock crossings and expiry.
const (
	EventListLowStock  = "list.low_stock"
	EventListExhausted = "list.exhausted"
	EventListExpired   = "list.expired"
)

// RecordStockCrossings implements core.AllocationStore. Under the list's row lock it compares the
// stock state with the available count and moves it down (ok → low → out), recording one domain
// event per state entered, so each crossing is recorded exactly once however many allocations
// notice it.
func (db *DB) RecordStockCrossings(ctx context.Context, merchantID, listID uuid.UUID) ([]string, error) {
	var events []string
	err := db.tx(ctx, func(tx pgx.Tx) error {
		events = nil
		var state string
		var threshold, avail int64
		err := tx.QueryRow(ctx, `SELECT stock_state, low_stock_threshold FROM code_lists WHERE merchant_id = $1 AND id = $2 FOR UPDATE`,
			merchantID, listID).Scan(&state, &threshold)
		if err != nil {
			return notFound(err, core.ErrListNotFound)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(available), 0) FROM list_counters WHERE merchant_id = $1 AND list_id = $2`,
			merchantID, listID).Scan(&avail); err != nil {
			return fmt.Errorf("db: stock count: %w", err)
		}
		next := state
		switch {
		case avail == 0:
			next = "out"
		case avail < threshold && state == "ok":
			next = "low"
		}
		if next == state {
			return nil
		}
		if state == "ok" && threshold > 0 {
			events = append(events, EventListLowStock)
		}
		if next == "out" {
			events = append(events, EventListExhausted)
		}
		if _, err := tx.Exec(ctx, `UPDATE code_lists SET stock_state = $3 WHERE merchant_id = $1 AND id = $2`, merchantID, listID, next); err != nil {
			return fmt.Errorf("db: stock state: %w", err)
		}
		payload, _ := json.Marshal(map[string]any{"list_id": listID, "available": avail, "threshold": threshold})
		for _, e := range events {
			if _, err := tx.Exec(ctx, `INSERT INTO domain_events (merchant_id, type, list_id, payload) VALUES ($1, $2, $3, $4)`,
				merchantID, e, listID, payload); err != nil {
				return fmt.Errorf("db: record %s: %w", e, err)
			}
		}
		return nil
	})
	return events, err
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
