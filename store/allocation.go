package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coupongate/coupongate/core"
)

// Allocations are decided in core (core.AllocationLedger.Decide); the store locks and reads what
// they are decided on and persists the decisions. A transaction takes two round trips, each one
// pipeline of statements, as an order event's does (decideInTx). The first begins it and takes,
// in this order, the advisory locks of its recipients and campaigns (sorted, so two transactions
// never wait for each other's, and the keys a bulk send's chunk takes too: store/deliverychunk.go),
// the row lock of a fixed list's code, the row locks of the codes at the drawn positions (SKIP
// LOCKED: a code another transaction is taking is a miss, never a wait), the free codes of a scan,
// and then, each in a statement of its own so that it reads what was committed before the locks
// were granted, the recipients' last hand-outs and the list with its counts. The second writes
// the decisions (each code by its primary key, then the allocation rows and the counters in one
// statement) and commits. Every statement runs on its generic plan (genericPlans).

// Allocate implements core.AllocationStore. A deadlock PostgreSQL broke is retried (the
// transaction took nothing then); PostgreSQL down or failing over answers core.ErrUnavailable.
func (db *DB) Allocate(ctx context.Context, merchantID, listID uuid.UUID, items []core.AllocationBatchItem, now time.Time,
	decide func(*core.AllocationLedger) []core.AllocationDecision) ([]core.AllocationDecision, error) {
	if len(items) == 0 {
		return nil, nil
	}
	reads := newAllocationReads(items)
	for attempt := 1; ; attempt++ {
		var ledger *core.AllocationLedger
		var ds []core.AllocationDecision
		err := db.decideInTx(ctx, func(b *pgx.Batch) { reads.queue(b, merchantID, listID, now) },
			func(br pgx.BatchResults) (err error) {
				ledger, err = reads.scan(br)
				return err
			},
			func(b *pgx.Batch) bool {
				ds = decide(ledger)
				return queueAllocationWrites(b, merchantID, listID, items, ledger, ds, now)
			})
		switch {
		case err == nil:
			return ds, nil
		case isDeadlock(err) && attempt < 3:
			continue
		case IsUnavailable(err):
			return nil, core.Unavailable("PostgreSQL", fmt.Errorf("db: allocate: %w", err))
		default:
			return nil, fmt.Errorf("db: allocate: %w", err)
		}
	}
}

// allocationReads are the reads of one transaction of allocations.
type allocationReads struct {
	keys, campaigns []string // the items' recipients and campaigns
	positions       []int64  // the positions drawn, in the items' order
	scans           int      // how many items take the first free code
	link            bool     // a redeem link asks: its recipients' last hand-outs are always read
}

func newAllocationReads(items []core.AllocationBatchItem) *allocationReads {
	r := &allocationReads{link: items[0].Req.RedeemLink != uuid.Nil}
	for _, it := range items {
		r.keys, r.campaigns = append(r.keys, it.RecipientKey), append(r.campaigns, it.Req.Campaign)
		if it.Pos > 0 {
			r.positions = append(r.positions, it.Pos)
		} else {
			r.scans++
		}
	}
	return r
}

// genericPlans makes the statements of an allocation's transaction run on their generic plans,
// made on the tables' average estimates. A custom plan is made on the values given, and for a
// merchant or list newer than the last ANALYZE the estimate is one row: a code's primary-key probe
// was planned as a scan of another index's (merchant_id, …, list_id) range, which read the list's
// every code (100,000 in TestTwoGatewaysAllocatingTogetherNeverRepeatACode) on each statement, and
// PostgreSQL, finding such custom plans cheaper than the generic one, kept making them.
const genericPlans = `SET LOCAL plan_cache_mode = force_generic_plan`

// offeredCodeColumns are read of every code offered to a transaction (core.OfferedCode).
const offeredCodeColumns = `c.seq, c.code, c.state, c.issue_start, c.issue_end, c.available_till, c.hold_id, c.held_until, c.delivered_at`

// queue adds the reads to b. One item is read by primary-key forms, whose generic plans PostgreSQL
// caches; more by one statement each, every element an index probe of its own (LATERAL … OFFSET 0,
// so no plan joins a list's codes or a merchant's allocations).
func (r *allocationReads) queue(b *pgx.Batch, merchantID, listID uuid.UUID, now time.Time) {
	b.Queue(genericPlans)
	if len(r.keys) == 1 {
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1::text || '|' || $2 || '|' || $3, 0))`, listID, r.keys[0], r.campaigns[0])
	} else {
		b.Queue(`SELECT count(pg_advisory_xact_lock(s.k)) FROM (
				SELECT DISTINCT hashtextextended($1::text || '|' || u.k || '|' || u.c, 0) AS k
				FROM unnest($2::text[], $3::text[]) AS u(k, c) ORDER BY 1) s`, listID, r.keys, r.campaigns)
	}
	// A fixed list's one code: its row lock serialises the list's hand-outs (waiting for it).
	b.Queue(`SELECT `+offeredCodeColumns+` FROM codes c
		WHERE c.merchant_id = $1 AND c.list_id = $2 AND c.seq = 1
		  AND EXISTS (SELECT 1 FROM code_lists l WHERE l.merchant_id = $1 AND l.id = $2 AND l.kind = 'fixed')
		FOR UPDATE`, merchantID, listID)
	if len(r.positions) > 0 {
		queueCodesAt(b, merchantID, listID, r.positions)
	}
	if r.scans > 0 {
		queueFreeCodes(b, merchantID, listID, now, 1, math.MaxInt64, r.scans)
	}
	// The recipients' last hand-outs, when the list hands codes back.
	queuePriorHandOuts(b, merchantID, listID, r.keys, r.campaigns, r.link)
	// The list, and its counts (64 rows) for a fixed list, a scan, or near a unique list's tail.
	var from *int64
	if r.scans == 0 && len(r.positions) > 0 {
		from = new(slices.Min(r.positions))
	}
	b.Queue(`SELECT l.kind, l.max_assignments, l.starts_at, l.expires_at, l.archived_at, l.reassign_window,
			coalesce(l.valid_for, 0), l.next_seq, l.low_stock_threshold, l.stock_state,
			CASE WHEN l.kind = 'fixed' OR $3::bigint IS NULL OR l.next_seq - $3 <= l.low_stock_threshold + 1024 + $4 THEN
				(SELECT array[coalesce(sum(lc.available), 0), coalesce(sum(lc.delivered), 0)] FROM list_counters lc
				  WHERE lc.merchant_id = $1 AND lc.list_id = $2) END
		FROM code_lists l WHERE l.merchant_id = $1 AND l.id = $2`, merchantID, listID, from, len(r.keys))
}

// queueFreeCodes queues the scan for the first free codes (at most limit) of a unique list that
// still has some, at positions from from up to before, by the conditions of
// core.OfferedCode.Issuable (which decides each). Each is row-locked unless another transaction
// holds it (SKIP LOCKED).
func queueFreeCodes(b *pgx.Batch, merchantID, listID uuid.UUID, now time.Time, from, before int64, limit int) {
	b.Queue(`SELECT `+offeredCodeColumns+` FROM codes c
		WHERE c.merchant_id = $1 AND c.list_id = $2 AND c.seq >= $4 AND c.seq < $5 AND c.state = 'available'
		  AND (c.issue_start IS NULL OR c.issue_start <= $3) AND (c.issue_end IS NULL OR c.issue_end > $3)
		  AND (c.available_till IS NULL OR c.available_till > $3) AND (c.hold_id IS NULL OR c.held_until <= $3)
		  AND EXISTS (SELECT 1 FROM code_lists l WHERE l.merchant_id = $1 AND l.id = $2 AND l.kind = 'unique')
		  AND (SELECT sum(lc.available) FROM list_counters lc WHERE lc.merchant_id = $1 AND lc.list_id = $2) > 0
		ORDER BY c.seq LIMIT $6 FOR UPDATE SKIP LOCKED`, merchantID, listID, now, from, before, limit)
}

// queueCodesAt queues the read of the codes at positions, each row-locked unless another
// transaction holds it (SKIP LOCKED).
func queueCodesAt(b *pgx.Batch, merchantID, listID uuid.UUID, positions []int64) {
	if len(positions) == 1 {
		b.Queue(`SELECT `+offeredCodeColumns+` FROM codes c
			WHERE c.merchant_id = $1 AND c.list_id = $2 AND c.seq = $3 FOR UPDATE SKIP LOCKED`, merchantID, listID, positions[0])
		return
	}
	b.Queue(`SELECT `+offeredCodeColumns+` FROM unnest($3::bigint[]) AS u(seq)
		CROSS JOIN LATERAL (SELECT * FROM codes c WHERE c.merchant_id = $1 AND c.list_id = $2 AND c.seq = u.seq OFFSET 0) c
		FOR UPDATE OF c SKIP LOCKED`, merchantID, listID, positions)
}

// scanOfferedCodes reads the next answer of br, rows of offeredCodeColumns, into codes, and
// answers their positions in order.
func scanOfferedCodes(br pgx.BatchResults, codes map[int64]*core.OfferedCode) ([]int64, error) {
	var seqs []int64
	var c core.OfferedCode
	var state string
	rows, _ := br.Query()
	_, err := pgx.ForEachRow(rows, []any{&c.Seq, &c.Code, &state, &c.IssueStart, &c.IssueEnd, &c.AvailableTill, &c.HoldID, &c.HeldUntil, &c.DeliveredAt}, func() error {
		c.State = core.CodeState(state)
		code := c
		codes[c.Seq] = &code
		seqs = append(seqs, c.Seq)
		return nil
	})
	return seqs, err
}

// queuePriorHandOuts queues the read of recipients' last hand-outs from a list, when the list
// hands codes back or a redeem link asks. Each recipient's is one probe of allocations_recipient
// and one of the codes' primary key, whatever the row estimates: planned on a new list's (one
// allocation, one code), the primary keys' prefix looked cheaper, and read the list's every
// allocation for each recipient (migrations/00020; TestAllocateFindsEarlierHandOutWithOneProbe).
// With sorts off, only allocations_recipient gives the newest first without one.
func queuePriorHandOuts(b *pgx.Batch, merchantID, listID uuid.UUID, keys, campaigns []string, link bool) {
	b.Queue(`SET LOCAL enable_sort = off`)
	b.Queue(`SELECT u.k, u.c, a.seq, a.allocated_at, c.code, c.available_till, c.delivered_at
		FROM unnest($3::text[], $4::text[]) AS u(k, c)
		CROSS JOIN LATERAL (SELECT a.seq, a.allocated_at FROM allocations a
			WHERE a.merchant_id = $1 AND a.recipient_key = u.k AND a.list_id = $2 AND a.campaign = u.c
			ORDER BY a.allocated_at DESC LIMIT 1) a
		CROSS JOIN LATERAL (SELECT c.code, c.available_till, c.delivered_at FROM codes c
			WHERE c.merchant_id = $1 AND c.list_id = $2 AND c.seq = a.seq OFFSET 0) c
		WHERE $5::boolean OR EXISTS (SELECT 1 FROM code_lists l WHERE l.merchant_id = $1 AND l.id = $2 AND l.reassign_window > 0)`,
		merchantID, listID, keys, campaigns, link)
	b.Queue(`SET LOCAL enable_sort = on`)
}

// scanPriorHandOuts reads the answers queuePriorHandOuts queued into prior.
func scanPriorHandOuts(br pgx.BatchResults, prior map[core.RecipientCampaign]core.PriorHandOut) error {
	if _, err := br.Exec(); err != nil {
		return err
	}
	var rc core.RecipientCampaign
	var p core.PriorHandOut
	rows, _ := br.Query()
	if _, err := pgx.ForEachRow(rows, []any{&rc.RecipientKey, &rc.Campaign, &p.Seq, &p.AllocatedAt, &p.Code, &p.AvailableTill, &p.DeliveredAt}, func() error {
		prior[rc] = p
		return nil
	}); err != nil {
		return err
	}
	_, err := br.Exec()
	return err
}

// scan reads the answers of the reads into a new ledger.
func (r *allocationReads) scan(br pgx.BatchResults) (*core.AllocationLedger, error) {
	l := core.NewAllocationLedger()
	for range 2 { // genericPlans, the advisory locks
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	if _, err := scanOfferedCodes(br, l.Codes); err != nil { // a fixed list's code
		return nil, err
	}
	if len(r.positions) > 0 {
		if _, err := scanOfferedCodes(br, l.Codes); err != nil {
			return nil, err
		}
	}
	if r.scans > 0 {
		seqs, err := scanOfferedCodes(br, l.Codes)
		if err != nil {
			return nil, err
		}
		l.Scanned = seqs
	}
	if err := scanPriorHandOuts(br, l.Prior); err != nil {
		return nil, err
	}
	var (
		list      core.List
		kind      string
		maxAssign *int64
		window    int32
		validFor  int64
		counts    []int64
	)
	err := br.QueryRow().Scan(&kind, &maxAssign, &list.StartsAt, &list.ExpiresAt, &list.ArchivedAt, &window, &validFor,
		&l.NextSeq, &list.LowStockThreshold, &l.StockState, &counts)
	if err == pgx.ErrNoRows {
		return l, nil // no list: List stays nil
	}
	if err != nil {
		return nil, err
	}
	list.Kind, list.MaxAssignments = core.ListKind(kind), deref(maxAssign)
	list.ReassignWindow, list.ValidFor = time.Duration(window)*time.Second, time.Duration(validFor)*time.Second
	l.List = &list
	if len(counts) == 2 {
		l.Available, l.Delivered, l.CountsKnown = counts[0], counts[1], true
	}
	return l, nil
}

// queueAllocationWrites adds to b the statements that persist the decisions ds of items, decided
// on ledger: the codes handed out (a unique list's, to their recipients; a fixed list's code on
// its first hand-out), one allocation row each, and the list's counters and a redeem link's
// hand-out count, each on one shard drawn at random. It answers false when nothing is to be
// written.
func queueAllocationWrites(b *pgx.Batch, merchantID, listID uuid.UUID, items []core.AllocationBatchItem,
	ledger *core.AllocationLedger, ds []core.AllocationDecision, now time.Time) bool {
	var (
		seqs                              []int64
		keys, campaigns, channels, actors []string
		ext, email, phone                 []*string
		firstDelivery                     bool
		leavesAvailable                   int64
	)
	for i, d := range ds {
		if !d.Take {
			continue
		}
		it := items[i]
		seqs, keys, campaigns = append(seqs, d.Seq), append(keys, it.RecipientKey), append(campaigns, it.Req.Campaign)
		channels, actors = append(channels, it.Req.Channel), append(actors, it.Req.Actor)
		ext, email, phone = append(ext, nullable(it.Req.Recipient.ExternalID)), append(email, nullable(it.Req.Recipient.Email)),
			append(phone, nullable(it.Req.Recipient.Phone))
		firstDelivery = firstDelivery || d.FirstDelivery
		if d.TakesAvailable {
			leavesAvailable++
		}
	}
	n := len(seqs)
	if n == 0 {
		return false
	}
	// Each code by its primary key, a statement each: the one plan no row estimate can spoil. (An
	// UPDATE … FROM unnest is planned on the list's estimate, which for a list just imported and
	// not yet analysed is one code: it joined the list's every code on each batch.)
	var ws writeStatement
	fixed := ledger.List.Kind == core.KindFixed
	switch {
	case fixed && firstDelivery:
		b.Queue(`UPDATE codes SET state = 'delivered', delivered_at = $3 WHERE merchant_id = $1 AND list_id = $2 AND seq = 1`, merchantID, listID, now)
	case fixed:
	default:
		for i, seq := range seqs {
			b.Queue(`UPDATE codes SET state = 'delivered', delivered_at = $4, recipient_external_id = $5, recipient_email = $6,
					recipient_phone = $7, campaign = $8
				WHERE merchant_id = $1 AND list_id = $2 AND seq = $3`, merchantID, listID, seq, now, ext[i], email[i], phone[i], campaigns[i])
		}
	}
	if n == 1 {
		ws.add(`INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, recipient_external_id, recipient_email,
				recipient_phone, campaign, channel, actor, allocated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			listID, seqs[0], keys[0], ext[0], email[0], phone[0], campaigns[0], channels[0], actors[0], now)
	} else {
		ws.add(`INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, recipient_external_id, recipient_email,
				recipient_phone, campaign, channel, actor, allocated_at)
			SELECT $1, $2, u.seq, u.recipient_key, u.ext, u.email, u.phone, u.campaign, u.channel, u.actor, $3
			FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
				AS u(seq, recipient_key, ext, email, phone, campaign, channel, actor)`,
			listID, now, seqs, keys, ext, email, phone, campaigns, channels, actors)
	}
	ws.add(`UPDATE list_counters SET available = available - $4, delivered = delivered + $5
		WHERE merchant_id = $1 AND list_id = $2 AND shard = $3`, listID, randomShard(), leavesAvailable, int64(n))
	if link := items[0].Req.RedeemLink; link != uuid.Nil {
		ws.add(`UPDATE redeem_link_counters SET handed_out = handed_out + $4
			WHERE merchant_id = $1 AND link_id = $2 AND shard = $3`, link, randomShard(), int64(n))
	}
	ws.queue(b, merchantID)
	return true
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
