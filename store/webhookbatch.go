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

// codeKey names a code of a merchant.
type codeKey struct {
	list uuid.UUID
	seq  int64
}

// applicationArgs are cg_apply_webhook_batch's arrays of applications, one element each.
type applicationArgs struct {
	delivery                                                                  []int32 // 1-based
	simple, requireIssued                                                     []bool
	lists                                                                     []uuid.UUID
	seqs, limits                                                              []int64
	platforms, shops, orders, statuses, kinds, actors, channels, statusEvents []string
	recipients, details                                                       [][]byte
}

// add appends application a; simple says it is a paid event on a code of its own.
func (x *applicationArgs) add(a core.CodeApplication, simple bool) {
	recipient, details := eventJSON(a.Event)
	x.delivery = append(x.delivery, int32(a.Receipt+1))
	x.simple, x.requireIssued = append(x.simple, simple), append(x.requireIssued, a.Code.List.RequireIssued)
	x.lists, x.seqs, x.limits = append(x.lists, a.Code.List.ID), append(x.seqs, a.Code.Seq), append(x.limits, a.Code.UseLimit())
	x.platforms, x.shops, x.orders = append(x.platforms, a.Event.Platform), append(x.shops, a.Event.Shop), append(x.orders, a.Event.OrderID)
	x.statuses, x.kinds = append(x.statuses, string(a.Event.Status)), append(x.kinds, string(a.Code.List.Kind))
	x.actors, x.channels = append(x.actors, a.Event.Actor), append(x.channels, a.Event.EventChannel())
	x.statusEvents = append(x.statusEvents, eventOfStatus[a.Event.Status])
	x.recipients, x.details = append(x.recipients, recipient), append(x.details, details)
}

// applyWebhookBatchSQL applies a batch in one statement (cg_apply_webhook_batch, migration 00023).
const applyWebhookBatchSQL = `SELECT id FROM cg_apply_webhook_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
	$11, $12, $13, $14, $15, $16, $17, $18, $19, $20) AS claimed(id)`

// ApplyWebhookBatch implements core.WebhookBatchStore in one statement, so in one round trip and
// one transaction (cg_apply_webhook_batch): the claim, the applications, the receipts' outcomes
// and each list's counters, moved once, last. A paid event on a code no other event of the batch
// names is marked simple: such events are applied together, set-based; the others one by one in
// their order (events on different codes touch different rows, so the two groups may run in
// either order).
func (db *DB) ApplyWebhookBatch(ctx context.Context, merchantID uuid.UUID, b core.WebhookBatch) ([]bool, error) {
	n := len(b.Receipts)
	ids, statuses, notes := make([]uuid.UUID, n), make([]string, n), make([]string, n)
	at := make(map[uuid.UUID]int, n)
	for i, d := range b.Receipts {
		ids[i], statuses[i], notes[i] = d.ID, d.Status, d.Note
		at[d.ID] = i
	}
	perCode := map[codeKey]int{}
	for _, a := range b.Applications {
		perCode[codeKey{a.Code.List.ID, a.Code.Seq}]++
	}
	var apps applicationArgs
	for _, a := range b.Applications {
		apps.add(a, a.Event.Status == core.OrderPaid && perCode[codeKey{a.Code.List.ID, a.Code.Seq}] == 1)
	}
	rows, err := db.pool.Query(ctx, applyWebhookBatchSQL, merchantID, ids, statuses, notes, apps.delivery, apps.simple,
		apps.lists, apps.seqs, apps.platforms, apps.shops, apps.orders, apps.statuses, apps.kinds, apps.limits,
		apps.requireIssued, apps.actors, apps.channels, apps.recipients, apps.details, apps.statusEvents)
	if err != nil {
		return nil, fmt.Errorf("db: apply webhook batch: %w", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("db: apply webhook batch: %w", err)
	}
	claimed := make([]bool, n)
	for _, id := range got {
		claimed[at[id]] = true
	}
	return claimed, nil
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
