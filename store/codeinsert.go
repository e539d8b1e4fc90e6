package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// NewCode is a code to add to a list, from an import row or a generator.
type NewCode struct {
	Code          string
	AvailableFrom *time.Time
	AvailableTill *time.Time
	IssueStart    *time.Time
	IssueEnd      *time.Time
}

// Origin says where new codes come from: an import number or a batch number (one of them).
type Origin struct {
	ImportNo int
	BatchNo  int
}

// insertCodes adds codes to a list inside tx and returns, for each input, whether it was inserted
// (false: its lookup already existed in the list, or earlier in the same slice). Positions are
// reserved as one range from the list's next_seq, so codes stay dense in allocation order; a
// rejected duplicate leaves a hole that allocation steps over. Counters and the stock state are
// updated in the same transaction.
//
// One statement inserts the whole slice (unnest of arrays, ON CONFLICT DO NOTHING), which is what
// makes imports and generation run close to raw COPY speed.
func insertCodes(ctx context.Context, tx pgx.Tx, list core.List, codes []NewCode, origin Origin) ([]bool, error) {
	inserted := make([]bool, len(codes))
	if len(codes) == 0 {
		return inserted, nil
	}
	var base int64
	if err := tx.QueryRow(ctx, `UPDATE code_lists SET next_seq = next_seq + $3 WHERE merchant_id = $1 AND id = $2
		RETURNING next_seq - $3`, list.MerchantID, list.ID, len(codes)).Scan(&base); err != nil {
		return nil, notFound(err, core.ErrListNotFound)
	}
	n := len(codes)
	texts, lookups := make([]string, n), make([]string, n)
	from, till, start, end := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	hasWindows := false
	for i, c := range codes {
		texts[i], lookups[i] = c.Code, list.Lookup(c.Code)
		from[i], till[i], start[i], end[i] = c.AvailableFrom, c.AvailableTill, c.IssueStart, c.IssueEnd
		hasWindows = hasWindows || c.AvailableFrom != nil || c.AvailableTill != nil || c.IssueStart != nil || c.IssueEnd != nil
	}
	var importNo, batchNo *int
	if origin.ImportNo > 0 {
		importNo = &origin.ImportNo
	}
	if origin.BatchNo > 0 {
		batchNo = &origin.BatchNo
	}
	var rows pgx.Rows
	var err error
	if hasWindows {
		rows, err = tx.Query(ctx, `INSERT INTO codes (merchant_id, list_id, seq, code, lookup, import_no, batch_no,
				available_from, available_till, issue_start, issue_end)
			SELECT $1, $2, $3 + u.ord - 1, u.code, u.lookup, $6, $7, u.af, u.at, u.ist, u.ien
			FROM unnest($4::text[], $5::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])
				WITH ORDINALITY AS u(code, lookup, af, at, ist, ien, ord)
			ON CONFLICT (merchant_id, lookup, list_id) DO NOTHING
			RETURNING seq`, list.MerchantID, list.ID, base, texts, lookups, importNo, batchNo, from, till, start, end)
	} else {
		rows, err = tx.Query(ctx, `INSERT INTO codes (merchant_id, list_id, seq, code, lookup, import_no, batch_no)
			SELECT $1, $2, $3 + u.ord - 1, u.code, u.lookup, $6, $7
			FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS u(code, lookup, ord)
			ON CONFLICT (merchant_id, lookup, list_id) DO NOTHING
			RETURNING seq`, list.MerchantID, list.ID, base, texts, lookups, importNo, batchNo)
	}
	if err != nil {
		return nil, fmt.Errorf("db: insert codes: %w", err)
	}
	count := 0
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("db: insert codes: %w", err)
		}
		inserted[seq-base] = true
		count++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: insert codes: %w", err)
	}
	if err := addAvailable(ctx, tx, list, int64(count)); err != nil {
		return nil, err
	}
	return inserted, nil
}

// addAvailable adds n available codes to the list's counters and, when that lifts the list back to
// or over its low-stock threshold (or out of exhaustion), resets its stock state so the next
// crossing is recorded again.
func addAvailable(ctx context.Context, tx pgx.Tx, list core.List, n int64) error {
	if n == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE list_counters SET available = available + $3
		WHERE merchant_id = $1 AND list_id = $2 AND shard = $4`, list.MerchantID, list.ID, n, randomShard()); err != nil {
		return fmt.Errorf("db: count new codes: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE code_lists l SET stock_state = 'ok'
		WHERE l.merchant_id = $1 AND l.id = $2 AND l.stock_state <> 'ok'
		  AND (SELECT sum(available) FROM list_counters c WHERE c.merchant_id = $1 AND c.list_id = $2)
		      >= greatest(l.low_stock_threshold, 1)`, list.MerchantID, list.ID); err != nil {
		return fmt.Errorf("db: reset stock state: %w", err)
	}
	return nil
}

// AddCodes adds plain codes to a list in one transaction and returns how many were new. Tests,
// benchmarks and operators' tools use it; imports and generation have their own checkpointed paths.
func (db *DB) AddCodes(ctx context.Context, list core.List, codes []string) (int, error) {
	news := make([]NewCode, len(codes))
	for i, c := range codes {
		news[i] = NewCode{Code: c}
	}
	added := 0
	err := db.tx(ctx, func(tx pgx.Tx) error {
		inserted, err := insertCodes(ctx, tx, list, news, Origin{})
		for _, ok := range inserted {
			if ok {
				added++
			}
		}
		return err
	})
	return added, err
}
