package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

var _ core.CodeStore = (*DB)(nil)

// removeChunk is how many codes one statement (and transaction) of a bulk removal removes, so that
// removing millions of codes never holds one huge transaction.
const removeChunk = 50_000

// timelineLimit caps each source of a timeline (deliveries, other events) at its latest entries; a
// fixed list's one code can be delivered millions of times.
const timelineLimit = 1000

// listEventSeq is the seq of list-level rows in code_events. No code has seq 0 (positions start at
// 1), so such a row is never mistaken for one code's event. A bulk removal writes one row there
// (type removed, the actor, at = the removed_at stamped on every code it removed) instead of one
// row per code; a removed code's timeline finds it by (seq 0, type removed, at = removed_at) on
// the code_events_code index.
const listEventSeq = 0

// searchScanBudget is how many codes one page of a search narrowed by state reads at most. No
// index holds the state (one would cost every hand-out its HOT update), so such a search walks
// the list's key and filters; the budget bounds the time of one page on a list of any size, and
// the next cursor carries on from the last code read.
var searchScanBudget = 10_000

const codeColumns = `seq, code, state, uses, recipient_external_id, recipient_email, recipient_phone, campaign,
	delivered_at, redeemed_at, available_till, import_no, batch_no, removed_at,
	CASE WHEN hold_id IS NOT NULL AND held_until > now() THEN held_until END`

type codeRow struct {
	Seq                                 int64
	Code, State                         string
	Uses                                int
	RecipientExt, RecipientEmail, Phone *string
	Campaign                            *string
	DeliveredAt, RedeemedAt, Till       *time.Time
	ImportNo, BatchNo                   *int
	RemovedAt, HeldUntil                *time.Time
}

func (r *codeRow) scan(row pgx.Row) error {
	return row.Scan(&r.Seq, &r.Code, &r.State, &r.Uses, &r.RecipientExt, &r.RecipientEmail, &r.Phone, &r.Campaign,
		&r.DeliveredAt, &r.RedeemedAt, &r.Till, &r.ImportNo, &r.BatchNo, &r.RemovedAt, &r.HeldUntil)
}

func (r codeRow) toCore(list core.List) core.Code {
	c := core.Code{
		ListID: list.ID, Seq: r.Seq, Code: r.Code, State: core.CodeState(r.State), Uses: r.Uses,
		DeliveredAt: ptrUTC(r.DeliveredAt), RedeemedAt: ptrUTC(r.RedeemedAt), ExpiresAt: core.CodeExpiresAt(list, r.Till, r.DeliveredAt),
		HeldUntil: ptrUTC(r.HeldUntil),
	}
	rec := core.Recipient{ExternalID: orEmpty(r.RecipientExt), Email: orEmpty(r.RecipientEmail), Phone: orEmpty(r.Phone)}
	if !rec.IsZero() {
		c.Recipient = &rec
	}
	c.Campaign = orEmpty(r.Campaign)
	return c
}

// codeCursor is the keyset position of a code search: the last lookup when searching by prefix,
// else the last seq.
type codeCursor struct {
	Lookup string `json:"l,omitempty"`
	Seq    int64  `json:"s,omitempty"`
}

// SearchCodes implements core.CodeStore. With a prefix the codes come in lookup order and the
// prefix is a range of the unique index (merchant_id, lookup, list_id), byte-ordered by lookup's C
// collation, which also yields the rows in lookup order for the LIMIT; otherwise in list order
// (seq, the primary key (merchant_id, list_id, seq)). Every page starts after the cursor's key
// (keyset paging, no OFFSET). A recipient is matched through the allocations_recipient index
// under every key the search string could stand for (core.RecipientKeys).
//
// A state or filter without a recipient has no index of its own: the page reads at most
// searchScanBudget codes of the key range and keeps those that match, so it may come back short
// (or empty) with a cursor after the last code read.
func (db *DB) SearchCodes(ctx context.Context, list core.List, q core.CodeQuery) ([]core.Code, string, error) {
	var after codeCursor
	if q.Page.Cursor != "" {
		if err := decodeCursor(q.Page.Cursor, &after); err != nil {
			return nil, "", err
		}
	}
	args := []any{list.MerchantID, list.ID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	keyed := []string{"merchant_id = $1", "list_id = $2"} // the key range: the index walks it
	order := "seq"
	if q.Prefix != "" {
		order = "lookup"
		// [prefix, prefix+U+10FFFF) holds exactly the lookups that start with prefix: in byte order
		// no valid code continues a prefix with a character at or above U+10FFFF.
		keyed = append(keyed, "lookup >= "+arg(q.Prefix), "lookup < "+arg(q.Prefix+"\U0010FFFF"))
		if q.Page.Cursor != "" {
			keyed = append(keyed, "lookup > "+arg(after.Lookup))
		}
	} else if q.Page.Cursor != "" {
		keyed = append(keyed, "seq > "+arg(after.Seq))
	}
	var filters []string // what the rows read must also be
	if q.State != "" {
		filters = append(filters, "state = "+arg(string(q.State)))
	}
	switch q.Filter {
	case core.FilterReserved:
		filters = append(filters, "hold_id IS NOT NULL", "held_until > now()", "state <> 'removed'")
	case core.FilterExpired:
		switch {
		case list.ExpiresAt != nil && !time.Now().Before(*list.ExpiresAt):
			filters = append(filters, "state IN ('available', 'delivered')")
		case list.ValidFor > 0:
			// The code's own expiry (core.CodeExpiresAt) through its SQL twin.
			filters = append(filters, "state IN ('available', 'delivered')",
				"cg_code_expires_at(NULL, available_till, delivered_at, "+arg(int64(list.ValidFor/time.Second))+") <= now()")
		default:
			filters = append(filters, "state IN ('available', 'delivered')", "available_till <= now()")
		}
	}
	limit := strconv.Itoa(q.Page.Limit + 1)
	var sql string
	budgeted := len(filters) > 0 && q.Recipient == ""
	switch {
	case budgeted:
		// The first searchScanBudget rows of the key range, numbered; those that match, and the
		// last row read (where the next page starts when this one is not full).
		sql = `WITH scanned AS MATERIALIZED (
				SELECT r.*, row_number() OVER (ORDER BY r.` + order + `) AS n FROM (
					SELECT * FROM codes WHERE ` + strings.Join(keyed, " AND ") + ` ORDER BY ` + order + ` LIMIT ` + strconv.Itoa(searchScanBudget) + `) r)
			(SELECT ` + codeColumns + `, n, false AS edge FROM scanned WHERE ` + strings.Join(filters, " AND ") + ` ORDER BY n LIMIT ` + limit + `)
			UNION ALL
			(SELECT ` + codeColumns + `, n, true FROM scanned WHERE n = ` + strconv.Itoa(searchScanBudget) + `)`
	default:
		where := append(keyed, filters...)
		if q.Recipient != "" {
			// The recipient's hand-outs first (an index range of allocations_recipient), then
			// their codes by primary key: never a walk of the list looking for them.
			where = append(where, `seq = ANY(ARRAY(SELECT a.seq FROM allocations a
				WHERE a.merchant_id = $1 AND a.recipient_key = ANY(`+arg(core.RecipientKeys(q.Recipient))+`) AND a.list_id = $2))`)
		}
		sql = `SELECT ` + codeColumns + `, 0::bigint AS n, false AS edge FROM codes WHERE ` + strings.Join(where, " AND ") +
			` ORDER BY ` + order + ` LIMIT ` + limit
	}
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("db: search codes: %w", err)
	}
	defer rows.Close()
	var out []core.Code
	var kept []codeRow
	var edge *codeRow
	for rows.Next() {
		var r codeRow
		var n int64
		var isEdge bool
		if err := rows.Scan(&r.Seq, &r.Code, &r.State, &r.Uses, &r.RecipientExt, &r.RecipientEmail, &r.Phone, &r.Campaign,
			&r.DeliveredAt, &r.RedeemedAt, &r.Till, &r.ImportNo, &r.BatchNo, &r.RemovedAt, &r.HeldUntil, &n, &isEdge); err != nil {
			return nil, "", fmt.Errorf("db: search codes: %w", err)
		}
		if isEdge {
			edge = &r
			continue
		}
		kept = append(kept, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("db: search codes: %w", err)
	}
	cursorAt := func(r codeRow) string {
		if q.Prefix != "" {
			return encodeCursor(codeCursor{Lookup: list.Lookup(r.Code)})
		}
		return encodeCursor(codeCursor{Seq: r.Seq})
	}
	next := ""
	switch {
	case len(kept) > q.Page.Limit:
		kept = kept[:q.Page.Limit]
		next = cursorAt(kept[len(kept)-1])
	case edge != nil:
		next = cursorAt(*edge) // the budget ran out: the rest of the list is still to search
	}
	for _, r := range kept {
		out = append(out, r.toCore(list))
	}
	return out, next, nil
}

// GetCodes implements core.CodeStore: one probe of the unique index (merchant_id, lookup,
// list_id) per code.
func (db *DB) GetCodes(ctx context.Context, list core.List, codes []string) ([]core.Code, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	lookups := make([]string, len(codes))
	for i, c := range codes {
		lookups[i] = list.Lookup(c)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+codeColumns+` FROM codes
		WHERE merchant_id = $1 AND lookup = ANY($3) AND list_id = $2`, list.MerchantID, list.ID, lookups)
	if err != nil {
		return nil, fmt.Errorf("db: get codes: %w", err)
	}
	defer rows.Close()
	byLookup := map[string]core.Code{}
	for rows.Next() {
		var r codeRow
		if err := r.scan(rows); err != nil {
			return nil, fmt.Errorf("db: get codes: %w", err)
		}
		byLookup[list.Lookup(r.Code)] = r.toCore(list)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: get codes: %w", err)
	}
	out := make([]core.Code, 0, len(byLookup))
	for _, l := range lookups {
		if c, ok := byLookup[l]; ok {
			out = append(out, c)
			delete(byLookup, l) // a code asked twice comes once
		}
	}
	return out, nil
}

// CodeLists implements core.CodeStore with one probe of the unique index (merchant_id, lookup,
// list_id) per form of the code (as given, and lower-cased for case-insensitive lists), as
// FindCode reads it.
func (db *DB) CodeLists(ctx context.Context, merchantID uuid.UUID, code string) ([]uuid.UUID, error) {
	rows, err := db.pool.Query(ctx, `SELECT c.list_id FROM codes c
		JOIN code_lists l ON l.merchant_id = c.merchant_id AND l.id = c.list_id
		WHERE c.merchant_id = $1 AND c.lookup IN ($2, $3)
		  AND c.lookup = CASE WHEN l.case_insensitive THEN $3 ELSE $2 END
		ORDER BY l.created_at DESC, l.id`, merchantID, code, strings.ToLower(code))
	if err != nil {
		return nil, fmt.Errorf("db: code lists: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("db: code lists: %w", err)
	}
	return ids, nil
}

// GetCode implements core.CodeStore: the code and its timeline, merged in time order from its
// origin (import, batch, or the list's creation for a fixed list's code), its deliveries
// (allocations), its pushes' outcomes (code_pushes), and its other events (code_events, the
// bulk-removal row included).
func (db *DB) GetCode(ctx context.Context, list core.List, code string) (core.Code, error) {
	var r codeRow
	if err := r.scan(db.pool.QueryRow(ctx, `SELECT `+codeColumns+` FROM codes
		WHERE merchant_id = $1 AND list_id = $2 AND lookup = $3`, list.MerchantID, list.ID, list.Lookup(code))); err != nil {
		return core.Code{}, notFound(err, core.ErrCodeNotFound)
	}
	c := r.toCore(list)
	origin, err := db.originEvent(ctx, list, r)
	if err != nil {
		return core.Code{}, err
	}
	events, err := db.deliveredEvents(ctx, list, r.Seq)
	if err != nil {
		return core.Code{}, err
	}
	more, err := db.codeEvents(ctx, list, r)
	if err != nil {
		return core.Code{}, err
	}
	events = append(events, more...)
	pushed, err := db.pushEvents(ctx, list, r.Seq)
	if err != nil {
		return core.Code{}, err
	}
	events = append(events, pushed...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].At.Before(events[j].At) })
	c.Timeline = append([]core.Event{origin}, events...)
	return c, nil
}

func (db *DB) originEvent(ctx context.Context, list core.List, r codeRow) (core.Event, error) {
	switch {
	case r.ImportNo != nil:
		var id uuid.UUID
		var actor string
		var at time.Time
		err := db.pool.QueryRow(ctx, `SELECT id, actor, created_at FROM imports WHERE merchant_id = $1 AND list_id = $2 AND number = $3`,
			list.MerchantID, list.ID, *r.ImportNo).Scan(&id, &actor, &at)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return core.Event{}, fmt.Errorf("db: code origin: %w", err)
		}
		details, _ := json.Marshal(map[string]any{"import_id": id, "import": *r.ImportNo})
		return core.Event{At: at.UTC(), Type: core.EventImported, Actor: actor, Details: details}, nil
	case r.BatchNo != nil:
		var actor string
		var at time.Time
		err := db.pool.QueryRow(ctx, `SELECT created_by, created_at FROM batches WHERE merchant_id = $1 AND list_id = $2 AND number = $3`,
			list.MerchantID, list.ID, *r.BatchNo).Scan(&actor, &at)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return core.Event{}, fmt.Errorf("db: code origin: %w", err)
		}
		details, _ := json.Marshal(map[string]any{"batch": *r.BatchNo})
		return core.Event{At: at.UTC(), Type: core.EventGenerated, Actor: actor, Details: details}, nil
	}
	// A fixed list's code is made with the list.
	return core.Event{At: list.CreatedAt.UTC(), Type: core.EventCreated}, nil
}

func (db *DB) deliveredEvents(ctx context.Context, list core.List, seq int64) ([]core.Event, error) {
	rows, err := db.pool.Query(ctx, `SELECT allocated_at, actor, channel, recipient_external_id, recipient_email, recipient_phone, campaign
		FROM allocations WHERE merchant_id = $1 AND list_id = $2 AND seq = $3 ORDER BY allocated_at DESC, id DESC LIMIT $4`,
		list.MerchantID, list.ID, seq, timelineLimit)
	if err != nil {
		return nil, fmt.Errorf("db: code deliveries: %w", err)
	}
	defer rows.Close()
	var out []core.Event
	for rows.Next() {
		var e core.Event
		var ext, email, phone *string
		var campaign string
		if err := rows.Scan(&e.At, &e.Actor, &e.Channel, &ext, &email, &phone, &campaign); err != nil {
			return nil, fmt.Errorf("db: code deliveries: %w", err)
		}
		e.At, e.Type = e.At.UTC(), core.EventDelivered
		rec := core.Recipient{ExternalID: orEmpty(ext), Email: orEmpty(email), Phone: orEmpty(phone)}
		if !rec.IsZero() {
			e.Recipient = &rec
		}
		e.Details, _ = json.Marshal(map[string]string{"campaign": campaign})
		out = append(out, e)
	}
	return out, rows.Err()
}

func (db *DB) codeEvents(ctx context.Context, list core.List, r codeRow) ([]core.Event, error) {
	rows, err := db.pool.Query(ctx, `SELECT at, type, actor, channel, recipient, order_ref, details FROM code_events
		WHERE merchant_id = $1 AND list_id = $2 AND (seq = $3 OR (seq = $4 AND type = 'removed' AND at = $5))
		ORDER BY at DESC, id DESC LIMIT $6`, list.MerchantID, list.ID, r.Seq, listEventSeq, r.RemovedAt, timelineLimit)
	if err != nil {
		return nil, fmt.Errorf("db: code events: %w", err)
	}
	defer rows.Close()
	var out []core.Event
	removed := false
	for rows.Next() {
		var e core.Event
		var rec []byte
		if err := rows.Scan(&e.At, &e.Type, &e.Actor, &e.Channel, &rec, &e.Order, &e.Details); err != nil {
			return nil, fmt.Errorf("db: code events: %w", err)
		}
		e.At = e.At.UTC()
		if len(rec) > 0 && string(rec) != "null" {
			e.Recipient = &core.Recipient{}
			if err := json.Unmarshal(rec, e.Recipient); err != nil {
				return nil, fmt.Errorf("db: code event recipient: %w", err)
			}
		}
		removed = removed || e.Type == core.EventRemoved
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: code events: %w", err)
	}
	if r.RemovedAt != nil && !removed {
		// Removed without a recorded actor (the row may have been cut by the limit): the time is
		// still known.
		out = append(out, core.Event{At: r.RemovedAt.UTC(), Type: core.EventRemoved})
	}
	return out, nil
}

// RemoveCode implements core.CodeStore: only a code that was never delivered or used and is not
// held by a reservation goes; it stays in the table as state removed (so its timeline and the
// list's removed count keep it), with a removed event naming the actor. Removing a removed code
// again changes nothing and is not an error.
func (db *DB) RemoveCode(ctx context.Context, list core.List, code, actor string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		var seq int64
		var state string
		var used, held bool
		err := tx.QueryRow(ctx, `SELECT seq, state, delivered_at IS NOT NULL OR uses > 0, hold_id IS NOT NULL AND held_until > now()
			FROM codes WHERE merchant_id = $1 AND list_id = $2 AND lookup = $3 FOR UPDATE`,
			list.MerchantID, list.ID, list.Lookup(code)).Scan(&seq, &state, &used, &held)
		if err != nil {
			return notFound(err, core.ErrCodeNotFound)
		}
		switch {
		case state == string(core.StateRemoved):
			return nil
		case state != string(core.StateAvailable) || used || held:
			return core.ErrCodeInUse
		}
		if _, err := tx.Exec(ctx, `UPDATE codes SET state = 'removed', removed_at = now()
			WHERE merchant_id = $1 AND list_id = $2 AND seq = $3`, list.MerchantID, list.ID, seq); err != nil {
			return fmt.Errorf("db: remove code: %w", err)
		}
		if err := countRemoved(ctx, tx, list, 1); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO code_events (merchant_id, list_id, seq, at, type, actor)
			VALUES ($1, $2, $3, now(), 'removed', $4)`, list.MerchantID, list.ID, seq, actor); err != nil {
			return fmt.Errorf("db: record removal: %w", err)
		}
		return nil
	})
}

// RemoveAvailable implements core.CodeStore. It walks the list in windows of removeChunk positions
// (seq), one transaction each, so removing millions of codes never holds one huge transaction;
// each window is one range UPDATE on the primary key, and the counters move in the same
// transaction. A code a concurrent allocation is delivering is waited for and then left alone (the
// UPDATE re-checks its conditions). Every code gets the same removed_at, and one list-level
// code_events row (seq 0, see listEventSeq) records the actor and the running total, so each
// removed code's timeline names who removed it without a row per code.
func (db *DB) RemoveAvailable(ctx context.Context, list core.List, actor string) (int64, error) {
	at := time.Now().UTC().Truncate(time.Microsecond)
	var total, after, eventID int64
	for {
		// The window ends at the removeChunk-th position after the last one; nil: the list's end.
		var hi *int64
		if err := db.pool.QueryRow(ctx, `SELECT seq FROM codes WHERE merchant_id = $1 AND list_id = $2 AND seq > $3
			ORDER BY seq OFFSET $4 LIMIT 1`, list.MerchantID, list.ID, after, removeChunk-1).Scan(&hi); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return total, fmt.Errorf("db: remove codes: %w", err)
		}
		var n int64
		err := db.tx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE codes SET state = 'removed', removed_at = $5
				WHERE merchant_id = $1 AND list_id = $2 AND seq > $3 AND ($4::bigint IS NULL OR seq <= $4)
				  AND state = 'available' AND delivered_at IS NULL AND uses = 0 AND (hold_id IS NULL OR held_until <= now())`,
				list.MerchantID, list.ID, after, hi, at)
			if err != nil {
				return err
			}
			if n = tag.RowsAffected(); n == 0 {
				return nil
			}
			if err := countRemoved(ctx, tx, list, n); err != nil {
				return err
			}
			if eventID == 0 {
				return tx.QueryRow(ctx, `INSERT INTO code_events (merchant_id, list_id, seq, at, type, actor, details)
					VALUES ($1, $2, $3, $4, 'removed', $5, jsonb_build_object('bulk', true, 'removed', $6::bigint)) RETURNING id`,
					list.MerchantID, list.ID, listEventSeq, at, actor, n).Scan(&eventID)
			}
			_, err = tx.Exec(ctx, `UPDATE code_events SET details = jsonb_set(details, '{removed}', to_jsonb((details->>'removed')::bigint + $3))
				WHERE merchant_id = $1 AND id = $2`, list.MerchantID, eventID, n)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("db: remove codes: %w", err)
		}
		total += n
		if hi == nil {
			return total, nil
		}
		after = *hi
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// countRemoved moves n codes from available to removed on this connection's counter shard.
func countRemoved(ctx context.Context, tx pgx.Tx, list core.List, n int64) error {
	if _, err := tx.Exec(ctx, `UPDATE list_counters SET available = available - $3, removed = removed + $3
		WHERE merchant_id = $1 AND list_id = $2 AND shard = $4`, list.MerchantID, list.ID, n, randomShard()); err != nil {
		return fmt.Errorf("db: count removed codes: %w", err)
	}
	return nil
}

// rfc3339 formats a timestamptz column as RFC 3339 UTC in SQL (whole seconds).
func rfc3339(expr string) string {
	return `to_char((` + expr + `) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`
}

// ExportCodes implements core.CodeStore: the header core.ExportHeader, then one row per code in
// list order, produced by COPY and streamed into w as PostgreSQL sends it, so memory stays flat
// however long the list. Times are RFC 3339 UTC; expires_at is the code's own expiry
// (core.CodeExpiresAt: the earliest of the list's expiry, the code's available_till and its
// hand-out plus the list's valid_for); the code, recipient and campaign columns are guarded against
// spreadsheet formulas (guardCode, guardText).
func (db *DB) ExportCodes(ctx context.Context, list core.List, filter core.ExportFilter, w io.Writer) error {
	// Literals formatted here (COPY takes no bind parameters).
	listExpires, validFor := "NULL::timestamptz", "NULL::bigint"
	if list.ExpiresAt != nil {
		listExpires = "'" + list.ExpiresAt.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
	}
	if list.ValidFor > 0 {
		validFor = strconv.FormatInt(int64(list.ValidFor/time.Second), 10) + "::bigint"
	}
	expires := rfc3339(`cg_code_expires_at(` + listExpires + `, available_till, delivered_at, ` + validFor + `)`)
	cond := ""
	switch filter {
	case core.ExportDelivered:
		cond = ` AND delivered_at IS NOT NULL`
	case core.ExportUndelivered:
		cond = ` AND state = 'available'`
	case core.ExportRedeemed:
		cond = ` AND (state = 'redeemed' OR redeemed_at IS NOT NULL)`
	}
	sql := `COPY (SELECT ` + guardCode + `, state, ` +
		guardText("recipient_external_id") + `, ` + guardText("recipient_email") + `, ` +
		guardText("recipient_phone") + `, ` + guardText("campaign") + `, ` +
		rfc3339("delivered_at") + `, ` + rfc3339("redeemed_at") + `, ` + expires + `, uses
		FROM codes WHERE merchant_id = ` + quoteUUID(list.MerchantID) + ` AND list_id = ` + quoteUUID(list.ID) + cond + `
		ORDER BY seq) TO STDOUT WITH (FORMAT csv)`
	return db.copyTo(ctx, w, core.ExportHeader+"\n", sql)
}

func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
