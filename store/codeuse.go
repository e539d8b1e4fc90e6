package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/core"
)

// Order events are decided in core (core.UseLedger.Decide); this file reads what they are decided
// on and persists the decisions. A transaction takes two round trips, each one pipeline of
// statements: the first begins it, takes the row locks of the codes its events name (in list and
// seq order, so two transactions cannot deadlock on them) and then, each in a statement of its own
// so that it reads what was committed before the locks were granted, the paid keys and statuses
// already recorded; the second writes every decision, set-based, and commits.

// useReads queues the ledger's reads for the codes and order keys of apps, and scans their
// answers into a ledger.
type useReads struct {
	lists                    []uuid.UUID
	seqs                     []int64
	platforms, shops, orders []string
	keyLists                 []uuid.UUID
	keySeqs                  []int64
	// statuses says an event of apps is not paid: only such an event is decided on the statuses
	// recorded before (UseLedger.Recorded), so only then are they read.
	statuses bool
}

// newUseReads gathers the distinct codes and order keys of apps, the codes in list and seq order:
// the order their row locks are taken in (each code's lock is taken as the read reaches its
// element), so two transactions never wait for each other's codes.
func newUseReads(apps []core.CodeApplication) *useReads {
	r := &useReads{}
	codes, keys := map[core.CodeRef]bool{}, map[core.OrderCodeKey]bool{}
	for _, a := range apps {
		codes[core.CodeRef{ListID: a.Code.List.ID, Seq: a.Code.Seq}] = true
	}
	for _, ref := range slices.SortedFunc(maps.Keys(codes), compareCodeRefs) {
		r.lists, r.seqs = append(r.lists, ref.ListID), append(r.seqs, ref.Seq)
	}
	for _, a := range apps {
		ref := core.CodeRef{ListID: a.Code.List.ID, Seq: a.Code.Seq}
		r.statuses = r.statuses || a.Event.Status != core.OrderPaid
		key := core.OrderCodeKey{Platform: a.Event.Platform, Shop: a.Event.Shop, OrderID: a.Event.OrderID, Code: ref}
		if !keys[key] {
			keys[key] = true
			r.platforms, r.shops, r.orders = append(r.platforms, key.Platform), append(r.shops, key.Shop), append(r.orders, key.OrderID)
			r.keyLists, r.keySeqs = append(r.keyLists, ref.ListID), append(r.keySeqs, ref.Seq)
		}
	}
	return r
}

// queue adds the reads to b, after the statements b holds. One code and one order key (an order
// event applied alone) are read by their primary keys, statements whose generic plans PostgreSQL
// caches; more are read by one statement per table, each element an index probe of its own
// (LATERAL … OFFSET 0, so no plan joins a merchant's whole table).
func (r *useReads) queue(b *pgx.Batch, merchantID uuid.UUID) {
	if len(r.lists) == 1 && len(r.orders) == 1 {
		b.Queue(`SELECT list_id, seq, state, uses, hold_id, held_until FROM codes
			WHERE merchant_id = $1 AND list_id = $2 AND seq = $3 FOR UPDATE`, merchantID, r.lists[0], r.seqs[0])
		key := []any{merchantID, r.platforms[0], r.shops[0], r.orders[0], r.keyLists[0], r.keySeqs[0]}
		b.Queue(`SELECT platform, shop, order_id, list_id, seq, counted FROM redemptions
			WHERE merchant_id = $1 AND platform = $2 AND shop = $3 AND order_id = $4 AND list_id = $5 AND seq = $6`, key...)
		if r.statuses {
			b.Queue(`SELECT platform, shop, order_id, list_id, seq, status FROM order_codes
				WHERE merchant_id = $1 AND platform = $2 AND shop = $3 AND order_id = $4 AND list_id = $5 AND seq = $6`, key...)
		}
		return
	}
	b.Queue(`SELECT c.list_id, c.seq, c.state, c.uses, c.hold_id, c.held_until
		FROM unnest($2::uuid[], $3::bigint[]) AS u(list_id, seq)
		CROSS JOIN LATERAL (SELECT * FROM codes c WHERE c.merchant_id = $1 AND c.list_id = u.list_id AND c.seq = u.seq OFFSET 0) c
		ORDER BY c.list_id, c.seq FOR UPDATE OF c`, merchantID, r.lists, r.seqs)
	keys := []any{merchantID, r.platforms, r.shops, r.orders, r.keyLists, r.keySeqs}
	b.Queue(`SELECT x.platform, x.shop, x.order_id, x.list_id, x.seq, x.counted
		FROM unnest($2::text[], $3::text[], $4::text[], $5::uuid[], $6::bigint[]) AS u(platform, shop, order_id, list_id, seq)
		CROSS JOIN LATERAL (SELECT * FROM redemptions r WHERE r.merchant_id = $1 AND r.platform = u.platform AND r.shop = u.shop
			AND r.order_id = u.order_id AND r.list_id = u.list_id AND r.seq = u.seq OFFSET 0) x`, keys...)
	if !r.statuses {
		return
	}
	b.Queue(`SELECT x.platform, x.shop, x.order_id, x.list_id, x.seq, x.status
		FROM unnest($2::text[], $3::text[], $4::text[], $5::uuid[], $6::bigint[]) AS u(platform, shop, order_id, list_id, seq)
		CROSS JOIN LATERAL (SELECT * FROM order_codes o WHERE o.merchant_id = $1 AND o.platform = u.platform AND o.shop = u.shop
			AND o.order_id = u.order_id AND o.list_id = u.list_id AND o.seq = u.seq OFFSET 0) x`, keys...)
}

// scan reads the answers of the reads, the next two or three results of br, into a new ledger. Every
// code must be there: a code an event names is never deleted while its list lives.
func (r *useReads) scan(br pgx.BatchResults) (*core.UseLedger, error) {
	l := core.NewUseLedger()
	rows, _ := br.Query()
	for rows.Next() {
		var ref core.CodeRef
		c := &core.LockedCode{}
		var state string
		if err := rows.Scan(&ref.ListID, &ref.Seq, &state, &c.Uses, &c.HoldID, &c.HeldUntil); err != nil {
			rows.Close()
			return nil, err
		}
		c.State = core.CodeState(state)
		l.Codes[ref] = c
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(l.Codes) != len(r.lists) {
		return nil, fmt.Errorf("%d of the %d codes the order events name are gone", len(r.lists)-len(l.Codes), len(r.lists))
	}
	var key core.OrderCodeKey
	var counted bool
	rows, _ = br.Query()
	_, err := pgx.ForEachRow(rows, []any{&key.Platform, &key.Shop, &key.OrderID, &key.Code.ListID, &key.Code.Seq, &counted}, func() error {
		l.Counted[key] = counted
		return nil
	})
	if err != nil || !r.statuses {
		return l, err
	}
	var status string
	rows, _ = br.Query()
	_, err = pgx.ForEachRow(rows, []any{&key.Platform, &key.Shop, &key.OrderID, &key.Code.ListID, &key.Code.Seq, &status}, func() error {
		l.Recorded[core.OrderStatusKey{OrderCodeKey: key, Status: core.OrderStatus(status)}] = true
		return nil
	})
	return l, err
}

// useWrites gathers a transaction's decisions into the set-based statements that persist them.
type useWrites struct {
	keys struct {
		platforms, shops, orders, actors []string
		lists                            []uuid.UUID
		seqs                             []int64
		counted                          []bool
	}
	statuses struct {
		platforms, shops, orders, statuses []string
		lists                              []uuid.UUID
		seqs                               []int64
	}
	events struct {
		lists                         []uuid.UUID
		seqs                          []int64
		types, actors, channels, refs []string
		recipients, details           [][]byte
	}
	used     map[core.CodeRef]bool // the codes a use was counted on
	holds    []uuid.UUID
	counters map[uuid.UUID]*counterMove
}

// counterMove is how a list's counters move: codes redeemed, taken from available or delivered.
type counterMove struct{ redeemed, available, delivered int64 }

// add records decision d of application a.
func (w *useWrites) add(a core.CodeApplication, d core.UseDecision) {
	ev, ref := a.Event, core.CodeRef{ListID: a.Code.List.ID, Seq: a.Code.Seq}
	if d.RecordKey {
		k := &w.keys
		k.platforms, k.shops, k.orders = append(k.platforms, ev.Platform), append(k.shops, ev.Shop), append(k.orders, ev.OrderID)
		k.lists, k.seqs, k.counted, k.actors = append(k.lists, ref.ListID), append(k.seqs, ref.Seq), append(k.counted, d.Counted), append(k.actors, ev.Actor)
	}
	if d.RecordStatus {
		s := &w.statuses
		s.platforms, s.shops, s.orders = append(s.platforms, ev.Platform), append(s.shops, ev.Shop), append(s.orders, ev.OrderID)
		s.lists, s.seqs, s.statuses = append(s.lists, ref.ListID), append(s.seqs, ref.Seq), append(s.statuses, string(ev.Status))
	}
	if d.CountUse {
		if w.used == nil {
			w.used = map[core.CodeRef]bool{}
		}
		w.used[ref] = true
	}
	if d.EndHold != nil {
		w.holds = append(w.holds, *d.EndHold)
	}
	if d.CountersFrom != "" {
		if w.counters == nil {
			w.counters = map[uuid.UUID]*counterMove{}
		}
		m := w.counters[ref.ListID]
		if m == nil {
			m = &counterMove{}
			w.counters[ref.ListID] = m
		}
		m.redeemed++
		switch d.CountersFrom {
		case core.StateAvailable:
			m.available++
		case core.StateDelivered:
			m.delivered++
		}
	}
	if d.Event != "" {
		recipient, details := eventJSON(ev, d.Details)
		e := &w.events
		e.lists, e.seqs, e.types = append(e.lists, ref.ListID), append(e.seqs, ref.Seq), append(e.types, d.Event)
		e.actors, e.channels = append(e.actors, ev.Actor), append(e.channels, ev.EventChannel())
		e.refs = append(e.refs, ev.Platform+":"+ev.Shop+":"+ev.OrderID)
		e.recipients, e.details = append(e.recipients, recipient), append(e.details, details)
	}
}

// queue adds the writes to b: the keys and statuses (plain inserts: every decision of a code is
// taken under its lock, so a key met here was not recorded before, and a conflict would be a
// fault worth failing on), the codes' uses as the ledger ends them, the holds ended, the timeline
// events in the order of their decisions, and each list's counters on a shard drawn at random
// (64 rows a list, so concurrent transactions rarely meet on one). One row is written by a
// VALUES or primary-key form (as useReads.queue reads one), many by an unnest form. They go in
// one statement (writeStatement), so a transaction's writes cost PostgreSQL one execution; only
// the counters of a transaction that moves several lists' follow, one statement a list.
func (w *useWrites) queue(b *pgx.Batch, merchantID uuid.UUID, l *core.UseLedger) {
	var ws writeStatement
	switch k := &w.keys; len(k.lists) {
	case 0:
	case 1:
		ws.add(`INSERT INTO redemptions (merchant_id, platform, shop, order_id, list_id, seq, counted, actor)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, k.platforms[0], k.shops[0], k.orders[0], k.lists[0], k.seqs[0], k.counted[0], k.actors[0])
	default:
		ws.add(`INSERT INTO redemptions (merchant_id, platform, shop, order_id, list_id, seq, counted, actor)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::uuid[], $6::bigint[], $7::boolean[], $8::text[])`, k.platforms, k.shops, k.orders, k.lists, k.seqs, k.counted, k.actors)
	}
	switch s := &w.statuses; len(s.lists) {
	case 0:
	case 1:
		ws.add(`INSERT INTO order_codes (merchant_id, platform, shop, order_id, list_id, seq, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.platforms[0], s.shops[0], s.orders[0], s.lists[0], s.seqs[0], s.statuses[0])
	default:
		ws.add(`INSERT INTO order_codes (merchant_id, platform, shop, order_id, list_id, seq, status)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::uuid[], $6::bigint[], $7::text[])`, s.platforms, s.shops, s.orders, s.lists, s.seqs, s.statuses)
	}
	refs := slices.SortedFunc(maps.Keys(w.used), compareCodeRefs)
	switch len(refs) {
	case 0:
	case 1:
		c := l.Codes[refs[0]]
		ws.add(`UPDATE codes SET uses = $4, state = $5, redeemed_at = coalesce(redeemed_at, now()), hold_id = NULL, held_until = NULL
			WHERE merchant_id = $1 AND list_id = $2 AND seq = $3`, refs[0].ListID, refs[0].Seq, c.Uses, string(c.State))
	default:
		lists, seqs, uses, states := make([]uuid.UUID, len(refs)), make([]int64, len(refs)), make([]int32, len(refs)), make([]string, len(refs))
		for i, ref := range refs {
			c := l.Codes[ref]
			lists[i], seqs[i], uses[i], states[i] = ref.ListID, ref.Seq, int32(c.Uses), string(c.State)
		}
		ws.add(`UPDATE codes c SET uses = u.uses, state = u.state, redeemed_at = coalesce(c.redeemed_at, now()),
				hold_id = NULL, held_until = NULL
			FROM unnest($2::uuid[], $3::bigint[], $4::integer[], $5::text[]) AS u(list_id, seq, uses, state)
			WHERE c.merchant_id = $1 AND c.list_id = u.list_id AND c.seq = u.seq`, lists, seqs, uses, states)
	}
	if len(w.holds) > 0 {
		ws.add(`UPDATE reservations SET ended_at = now(), ended_by = 'redeemed'
			WHERE merchant_id = $1 AND id = ANY ($2) AND ended_at IS NULL`, w.holds)
	}
	switch e := &w.events; len(e.lists) {
	case 0:
	case 1:
		ws.add(`INSERT INTO code_events (merchant_id, list_id, seq, type, actor, channel, recipient, order_ref, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.lists[0], e.seqs[0], e.types[0], e.actors[0], e.channels[0], e.recipients[0], e.refs[0], e.details[0])
	default:
		ws.add(`INSERT INTO code_events (merchant_id, list_id, seq, type, actor, channel, recipient, order_ref, details)
			SELECT $1, list_id, seq, type, actor, channel, recipient, order_ref, details
			FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::jsonb[])
				WITH ORDINALITY AS u(list_id, seq, type, actor, channel, recipient, order_ref, details, i)
			ORDER BY i`, e.lists, e.seqs, e.types, e.actors, e.channels, e.recipients, e.refs, e.details)
	}
	// The counters: with one list, in the same statement; with more, one statement each after it,
	// the lists in id order, so two transactions take the shards' row locks in one order.
	const counters = `UPDATE list_counters SET redeemed = redeemed + $4, available = available - $5, delivered = delivered - $6
		WHERE merchant_id = $1 AND list_id = $2 AND shard = $3`
	lists := slices.SortedFunc(maps.Keys(w.counters), compareUUIDs)
	if len(lists) == 1 {
		m := w.counters[lists[0]]
		ws.add(counters, lists[0], randomShard(), m.redeemed, m.available, m.delivered)
		lists = nil
	}
	ws.queue(b, merchantID)
	for _, id := range lists {
		m := w.counters[id]
		b.Queue(counters, merchantID, id, randomShard(), m.redeemed, m.available, m.delivered)
	}
}

// writeStatement joins data-modifying statements into one (each a WITH query of a SELECT that
// returns nothing), so they are bound, executed and answered once. Each is written with $1 for the
// merchant and $2… for its own arguments, renumbered as they are joined.
type writeStatement struct {
	parts []string
	args  []any
}

// placeholder finds a statement's parameters.
var placeholder = regexp.MustCompile(`\$(\d+)`)

// add joins sql, whose arguments after the merchant are args.
func (ws *writeStatement) add(sql string, args ...any) {
	shift := len(ws.args)
	ws.parts = append(ws.parts, placeholder.ReplaceAllStringFunc(sql, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		if n == 1 {
			return p
		}
		return "$" + strconv.Itoa(n+shift)
	}))
	ws.args = append(ws.args, args...)
}

// queue adds the joined statement to b, if there is one.
func (ws *writeStatement) queue(b *pgx.Batch, merchantID uuid.UUID) {
	switch len(ws.parts) {
	case 0:
		return
	case 1:
		b.Queue(ws.parts[0], append([]any{merchantID}, ws.args...)...)
		return
	}
	var sql strings.Builder
	for i, part := range ws.parts {
		if i == 0 {
			sql.WriteString("WITH ")
		} else {
			sql.WriteString(",\n")
		}
		fmt.Fprintf(&sql, "w%d AS (%s)", i, part)
	}
	sql.WriteString("\nSELECT WHERE false")
	b.Queue(sql.String(), append([]any{merchantID}, ws.args...)...)
}

// compareCodeRefs orders codes by list and position, the order their row locks are taken in.
func compareCodeRefs(a, b core.CodeRef) int {
	if c := compareUUIDs(a.ListID, b.ListID); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// compareUUIDs orders ids as PostgreSQL orders uuid values (their bytes).
func compareUUIDs(a, b uuid.UUID) int {
	return bytes.Compare(a[:], b[:])
}

// eventJSON is what an order event writes on a code's timeline: its customer (nil when it names
// none), and the details every one of its events carries with the decision's own added.
func eventJSON(ev core.OrderEvent, extra map[string]any) (recipient, details []byte) {
	d := map[string]any{"platform": ev.Platform, "shop": ev.Shop, "order_id": ev.OrderID, "status": ev.Status}
	if ev.Note != "" {
		d["note"] = ev.Note
	}
	for k, v := range extra {
		d[k] = v
	}
	details, _ = json.Marshal(d)
	if !ev.Customer.IsZero() {
		recipient, _ = json.Marshal(ev.Customer)
	}
	return recipient, details
}

// decideInTx runs one transaction of decisions (order events, allocations) in two round trips on
// one connection: reads (queued by read after BEGIN, scanned by scan), then decide, whose writes
// it sends with COMMIT.
// decide answers false to send nothing (the transaction is rolled back). A failure at any step
// rolls the transaction back; a connection left inside it is closed by the pool.
func (db *DB) decideInTx(ctx context.Context, read func(*pgx.Batch), scan func(pgx.BatchResults) error, decide func(*pgx.Batch) bool) error {
	return db.onTxConn(ctx, func(conn *pgxpool.Conn) (bool, error) {
		reads := &pgx.Batch{}
		reads.Queue("BEGIN")
		read(reads)
		if err := sendBatch(ctx, conn, reads, afterBegin(scan)); err != nil {
			return false, err
		}
		writes := &pgx.Batch{}
		if !decide(writes) {
			return false, nil
		}
		writes.Queue("COMMIT")
		err := sendBatch(ctx, conn, writes, nil)
		return err == nil, err
	})
}

// onTxConn runs fn on one connection of the pool for a transaction fn begins and commits itself,
// in as many round trips as it needs; unless fn answers that it committed, the transaction is
// rolled back (a connection left inside it is closed by the pool).
func (db *DB) onTxConn(ctx context.Context, fn func(*pgxpool.Conn) (committed bool, err error)) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	committed, err := fn(conn)
	if !committed {
		rollback(ctx, conn)
	}
	return err
}

// sendBatch sends b and lets scan read its answers from the first; without scan, it checks
// every answer. Answers scan leaves unread are checked too.
func sendBatch(ctx context.Context, conn *pgxpool.Conn, b *pgx.Batch, scan func(pgx.BatchResults) error) error {
	n := b.Len()
	br := conn.SendBatch(ctx, b)
	var err error
	if scan != nil {
		err = scan(br)
	} else {
		err = execAnswers(br, n)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// execAnswers checks the next n answers of br.
func execAnswers(br pgx.BatchResults, n int) error {
	for range n {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	return nil
}

// afterBegin is scan after the answer of a batch's BEGIN.
func afterBegin(scan func(pgx.BatchResults) error) func(pgx.BatchResults) error {
	return func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		return scan(br)
	}
}

// rollback ends a transaction that failed or has nothing to write, within a few seconds even
// when ctx has ended; a connection it could not reach is closed by the pool on release, since it
// is still inside the transaction.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = conn.Exec(rctx, "ROLLBACK")
}
