package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

var _ core.WebhookBatchStore = (*DB)(nil)

// LockMerchantWebhooks implements core.WebhookBatchStore with a session-level advisory lock on a
// connection kept out of the pool until release: PostgreSQL lets the lock go with the session, so
// a worker killed while holding it holds nothing. At most half the pool's connections hold such
// locks at once (the others wait for a place first, holding none), so that every holder finds a
// connection for its reads and batches.
func (db *DB) LockMerchantWebhooks(ctx context.Context, merchantID uuid.UUID) (func(), bool, error) {
	if cap(db.webhookLocks) == 0 {
		// A pool of one connection: the lock is this process's (other processes' batches still
		// claim each receipt once).
		m, _ := db.localWebhookLocks.LoadOrStore(merchantID, &sync.Mutex{})
		mu := m.(*sync.Mutex)
		if !mu.TryLock() {
			return nil, false, nil
		}
		return mu.Unlock, true, nil
	}
	select {
	case db.webhookLocks <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		<-db.webhookLocks
		return nil, false, fmt.Errorf("db: webhook lock: %w", err)
	}
	const key = `hashtextextended('webhook-batches|' || $1::text, 0)`
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+key+`)`, merchantID).Scan(&ok); err != nil || !ok {
		conn.Release()
		<-db.webhookLocks
		if err != nil {
			return nil, false, fmt.Errorf("db: webhook lock: %w", err)
		}
		return nil, false, nil
	}
	release := func() {
		// Also after the task's context ended: a connection that still held the lock must not go
		// back to the pool, so it is closed when the unlock does not answer.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var unlocked bool
		if err := conn.QueryRow(uctx, `SELECT pg_advisory_unlock(`+key+`)`, merchantID).Scan(&unlocked); err != nil || !unlocked {
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
		<-db.webhookLocks
	}
	return release, true, nil
}

// ReadyWebhookReceipts implements core.WebhookBatchStore (through webhook_deliveries_ready).
func (db *DB) ReadyWebhookReceipts(ctx context.Context, merchantID uuid.UUID, limit int, skip []uuid.UUID) ([]core.WebhookReceipt, error) {
	if skip == nil {
		skip = []uuid.UUID{}
	}
	rows, err := db.pool.Query(ctx, `SELECT id, platform, shop, topic, event_key, webhook_id, triggered_at, body, status, error, received_at
		FROM webhook_deliveries WHERE merchant_id = $1 AND status = 'received' AND id <> ALL ($3)
		ORDER BY received_at, id LIMIT $2`, merchantID, limit, skip)
	if err != nil {
		return nil, fmt.Errorf("db: ready webhook receipts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.WebhookReceipt, error) {
		d := core.WebhookReceipt{MerchantID: merchantID}
		return d, r.Scan(&d.ID, &d.Platform, &d.Shop, &d.Topic, &d.EventKey, &d.WebhookID, &d.TriggeredAt, &d.Body, &d.Status, &d.Error, &d.ReceivedAt)
	})
}

// ApplyWebhookBatch implements core.WebhookBatchStore in one transaction of two round trips
// (decideInTx). The first claims the batch's receipts still received that no other transaction
// holds (FOR UPDATE SKIP LOCKED), then locks the codes its applications name and reads their
// keys and statuses into a ledger, as Redeem does for one; decide takes the claimed receipts'
// applications on it, in order. The second writes every decision set-based, records the claimed
// receipts' outcomes and commits. Nothing claimed, nothing is written.
func (db *DB) ApplyWebhookBatch(ctx context.Context, merchantID uuid.UUID, b core.WebhookBatch,
	decide func(*core.UseLedger, []core.CodeApplication) []core.UseDecision) ([]bool, []core.UseDecision, error) {
	n := len(b.Receipts)
	ids := make([]uuid.UUID, n)
	at := make(map[uuid.UUID]int, n)
	for i, d := range b.Receipts {
		ids[i], at[d.ID] = d.ID, i
	}
	reads := newUseReads(b.Applications)
	claimed := make([]bool, n)
	var ledger *core.UseLedger
	var decisions []core.UseDecision
	err := db.decideInTx(ctx,
		func(q *pgx.Batch) {
			q.Queue(`SELECT id FROM webhook_deliveries WHERE merchant_id = $1 AND id = ANY ($2) AND status = 'received'
				FOR UPDATE SKIP LOCKED`, merchantID, ids)
			if len(b.Applications) > 0 {
				reads.queue(q, merchantID)
			}
		},
		func(br pgx.BatchResults) error {
			rows, _ := br.Query()
			var id uuid.UUID
			if _, err := pgx.ForEachRow(rows, []any{&id}, func() error {
				claimed[at[id]] = true
				return nil
			}); err != nil {
				return err
			}
			if len(b.Applications) == 0 {
				return nil
			}
			var err error
			ledger, err = reads.scan(br)
			return err
		},
		func(q *pgx.Batch) bool {
			var statuses, notes []string
			var doneIDs []uuid.UUID
			for i, r := range b.Receipts {
				if claimed[i] {
					doneIDs, statuses, notes = append(doneIDs, r.ID), append(statuses, r.Status), append(notes, r.Note)
				}
			}
			if len(doneIDs) == 0 {
				return false
			}
			q.Queue(`UPDATE webhook_deliveries d SET status = u.status, error = u.note, processed_at = clock_timestamp()
				FROM unnest($2::uuid[], $3::text[], $4::text[]) AS u(id, status, note)
				WHERE d.merchant_id = $1 AND d.id = u.id`, merchantID, doneIDs, statuses, notes)
			var apps []core.CodeApplication
			var from []int
			for i, a := range b.Applications {
				if claimed[a.Receipt] {
					apps, from = append(apps, a), append(from, i)
				}
			}
			decisions = make([]core.UseDecision, len(b.Applications))
			var w useWrites
			if len(apps) > 0 {
				for j, d := range decide(ledger, apps) {
					decisions[from[j]] = d
					w.add(apps[j], d)
				}
			}
			w.queue(q, merchantID, ledger)
			return true
		})
	if err != nil {
		return nil, nil, fmt.Errorf("db: apply webhook batch: %w", err)
	}
	return claimed, decisions, nil
}

// FindCodes implements core.WebhookBatchStore: FindCode's look-up, for each code in turn (LATERAL),
// in one statement: the lookup index probed for the code as given and lower-cased, each an
// equality, and the list read by its primary key (OFFSET 0), so the plan stays a few probes per
// code whatever the tables' statistics say; kept where the list's case rule matches, the live code
// in the newest active list winning.
func (db *DB) FindCodes(ctx context.Context, merchantID uuid.UUID, codes []string) ([]core.FoundCode, []bool, error) {
	fs, found := make([]core.FoundCode, len(codes)), make([]bool, len(codes))
	if len(codes) == 0 {
		return fs, found, nil
	}
	folded := make([]string, len(codes))
	for i, c := range codes {
		folded[i] = strings.ToLower(c)
	}
	rows, err := db.pool.Query(ctx, `SELECT q.i, f.* FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS q(code, folded, i)
		CROSS JOIN LATERAL (
			SELECT `+foundCodeColumns+`
			FROM (SELECT * FROM codes WHERE merchant_id = $1 AND lookup = q.code
				UNION ALL
				SELECT * FROM codes WHERE merchant_id = $1 AND lookup = q.folded AND q.folded <> q.code) c
			CROSS JOIN LATERAL (SELECT * FROM code_lists l WHERE l.merchant_id = c.merchant_id AND l.id = c.list_id OFFSET 0) l
			LEFT JOIN reservations r ON r.merchant_id = c.merchant_id AND r.id = c.hold_id
			WHERE c.lookup = CASE WHEN l.case_insensitive THEN q.folded ELSE q.code END
			ORDER BY c.state = 'removed', l.archived_at IS NOT NULL, l.created_at DESC
			LIMIT 1) f`, merchantID, codes, folded)
	if err != nil {
		return nil, nil, fmt.Errorf("db: find codes: %w", err)
	}
	if err := scanFoundCodes(rows, fs, found); err != nil {
		return nil, nil, fmt.Errorf("db: find codes: %w", err)
	}
	return fs, found, nil
}

// FindPushedCodes implements core.WebhookBatchStore: FindPushedCode's look-up for each code in turn
// (LATERAL: a pushed row before a submitted one, a live code before a removed one, the latest
// push), in one statement. The push row names the code's row itself, so the code is read from it
// with its list, as FindListCode reads it by its lookup.
func (db *DB) FindPushedCodes(ctx context.Context, merchantID uuid.UUID, platform, shop string, codes []string) ([]core.FoundCode, []bool, error) {
	fs, found := make([]core.FoundCode, len(codes)), make([]bool, len(codes))
	if len(codes) == 0 {
		return fs, found, nil
	}
	keys := make([]string, len(codes))
	for i, c := range codes {
		keys[i] = strings.ToLower(c)
	}
	rows, err := db.pool.Query(ctx, `SELECT q.i, `+foundCodeColumns+`
		FROM unnest($2::text[]) WITH ORDINALITY AS q(code_key, i)
		CROSS JOIN LATERAL (SELECT list_id, seq FROM (
			SELECT s.list_id, s.seq, k.state = 'removed' AS removed, 0 AS rank, s.updated_at FROM code_pushes s
			JOIN connections c ON c.merchant_id = s.merchant_id AND c.id = s.connection_id AND c.platform = $3 AND c.shop = $4
			JOIN codes k ON k.merchant_id = s.merchant_id AND k.list_id = s.list_id AND k.seq = s.seq
			WHERE s.merchant_id = $1 AND s.code_key = q.code_key AND s.state = 'pushed'
			UNION ALL
			SELECT s.list_id, s.seq, k.state = 'removed', 1, s.updated_at FROM code_pushes s
			JOIN connections c ON c.merchant_id = s.merchant_id AND c.id = s.connection_id AND c.platform = $3 AND c.shop = $4
			JOIN codes k ON k.merchant_id = s.merchant_id AND k.list_id = s.list_id AND k.seq = s.seq
			WHERE s.merchant_id = $1 AND s.code_key = q.code_key AND s.state = 'submitted'
		) pushed ORDER BY removed, rank, updated_at DESC LIMIT 1) p
		CROSS JOIN LATERAL (SELECT * FROM code_lists l WHERE l.merchant_id = $1 AND l.id = p.list_id OFFSET 0) l
		JOIN codes c ON c.merchant_id = $1 AND c.list_id = p.list_id AND c.seq = p.seq
		LEFT JOIN reservations r ON r.merchant_id = c.merchant_id AND r.id = c.hold_id`, merchantID, keys, platform, shop)
	if err != nil {
		return nil, nil, fmt.Errorf("db: find pushed codes: %w", err)
	}
	if err := scanFoundCodes(rows, fs, found); err != nil {
		return nil, nil, fmt.Errorf("db: find pushed codes: %w", err)
	}
	return fs, found, nil
}

// scanFoundCodes reads rows of (ordinality, foundCodeColumns) into fs and found, at the
// ordinality's place (1-based).
func scanFoundCodes(rows pgx.Rows, fs []core.FoundCode, found []bool) error {
	defer rows.Close()
	var i int64
	s := newFoundCodeScanner(&i)
	for rows.Next() {
		f, err := s.scan(rows)
		if err != nil {
			return err
		}
		if i < 1 || int(i) > len(fs) {
			return fmt.Errorf("look-up answered row %d of %d", i, len(fs))
		}
		fs[i-1], found[i-1] = f, true
	}
	return rows.Err()
}
