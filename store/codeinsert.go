package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

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
// The slice goes in with COPY, as fast as PostgreSQL loads rows, under a savepoint: a duplicate
// makes the COPY fail, and the slice is inserted again with one INSERT … SELECT unnest(…) ON CONFLICT
// DO NOTHING, which keeps the new codes and reports the rest. A list that just had a duplicate
// skips the COPY attempt for a minute, so re-imports do not pay twice.
func (db *DB) insertCodes(ctx context.Context, tx pgx.Tx, list core.List, codes []NewCode, origin Origin) ([]bool, error) {
	inserted := make([]bool, len(codes))
	if len(codes) == 0 {
		return inserted, nil
	}
	var base int64
	if err := tx.QueryRow(ctx, `UPDATE code_lists SET next_seq = next_seq + $3 WHERE merchant_id = $1 AND id = $2
		RETURNING next_seq - $3`, list.MerchantID, list.ID, len(codes)).Scan(&base); err != nil {
		return nil, notFound(err, core.ErrListNotFound)
	}
	if !db.conflicts.recent(list.ID) {
		copied, err := copyCodes(ctx, tx, list, codes, origin, base)
		if err != nil {
			return nil, err
		}
		if copied {
			for i := range inserted {
				inserted[i] = true
			}
			return inserted, addAvailable(ctx, tx, list, int64(len(codes)))
		}
		db.conflicts.note(list.ID)
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

// copyCodes COPYs the codes in at positions base, base+1, … under a savepoint. It answers false,
// with the savepoint rolled back, when a code is already in the list or repeats in the slice.
func copyCodes(ctx context.Context, tx pgx.Tx, list core.List, codes []NewCode, origin Origin, base int64) (bool, error) {
	if _, err := tx.Exec(ctx, "SAVEPOINT copy_codes"); err != nil {
		return false, fmt.Errorf("db: savepoint: %w", err)
	}
	var importNo, batchNo *int32
	if origin.ImportNo > 0 {
		v := int32(origin.ImportNo)
		importNo = &v
	}
	if origin.BatchNo > 0 {
		v := int32(origin.BatchNo)
		batchNo = &v
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"codes"},
		[]string{"merchant_id", "list_id", "seq", "code", "lookup", "import_no", "batch_no", "available_from", "available_till", "issue_start", "issue_end"},
		pgx.CopyFromSlice(len(codes), func(i int) ([]any, error) {
			c := codes[i]
			return []any{list.MerchantID, list.ID, base + int64(i), c.Code, list.Lookup(c.Code), importNo, batchNo,
				c.AvailableFrom, c.AvailableTill, c.IssueStart, c.IssueEnd}, nil
		}))
	if err == nil {
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT copy_codes"); err != nil {
			return false, fmt.Errorf("db: release savepoint: %w", err)
		}
		return true, nil
	}
	if !isUniqueViolation(err) {
		return false, fmt.Errorf("db: copy codes: %w", err)
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT copy_codes"); err != nil {
		return false, fmt.Errorf("db: rollback to savepoint: %w", err)
	}
	return false, nil
}

// conflictMemory remembers which lists recently had duplicates, so their next slices go straight
// to the INSERT … ON CONFLICT path. It is a per-process hint; forgetting it costs one failed COPY.
type conflictMemory struct {
	mu   sync.Mutex
	seen map[uuid.UUID]time.Time
}

func (m *conflictMemory) recent(listID uuid.UUID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.seen[listID]
	return ok && time.Since(at) < time.Minute
}

func (m *conflictMemory) note(listID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil || len(m.seen) > 10_000 {
		m.seen = map[uuid.UUID]time.Time{}
	}
	m.seen[listID] = time.Now()
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
		inserted, err := db.insertCodes(ctx, tx, list, news, Origin{})
		for _, ok := range inserted {
			if ok {
				added++
			}
		}
		return err
	})
	return added, err
}
