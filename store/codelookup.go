package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/groupcommit"
)

// Code look-ups (FindCode: storefront validations, order events, manual discounts) asked at the same
// time in one process are answered by one statement (internal/groupcommit): while
// maxLookupStatements statements are running, the look-ups that arrive wait in a queue, and the
// next statement to run takes the whole queue (up to maxLookupBatch of them). A look-up that finds a free slot runs at once, in its own
// goroutine, so one alone waits for nothing. Under load, PostgreSQL then wakes once and starts its
// executor once for many look-ups instead of once each, which is most of what a point read costs it,
// and the gateway writes and reads one message pair for them.
//
// Each look-up stays its own: its merchant id is a column of its row in the statement, so a batch
// mixing merchants answers each only from its own merchant's lists; a code that exists and one
// that does not go through the same statement (no timing tells them apart); and the statement
// starts after the look-up was queued, so it sees every write committed before the look-up began.
const (
	// maxLookupStatements is how many look-up statements one process runs at once. Two keep a
	// statement going while the answer of the other is read, and let the look-ups queued meanwhile
	// make large batches; a batch grows with the load, so more statements are not needed for more
	// look-ups. On the 2-core bench machine (BenchmarkValidate, 64 clients) 2 gave 6,800-6,900
	// validations/s (0.89-0.91 of the raw lookups), 1 gave 0.77, 4 gave 0.69-0.88, 8 gave 0.56.
	maxLookupStatements = 2
	// maxLookupBatch is the most look-ups one statement answers.
	maxLookupBatch = 64
	// lookupTimeout bounds a look-up statement: a server that stopped answering on an open
	// connection fails the batch (503 to the callers) instead of holding it forever. The statement
	// runs on no request's context, since it answers several requests.
	lookupTimeout = 30 * time.Second
)

// lookupSizes are the statement shapes: a batch is padded with empty rows to the next size, so a
// connection prepares at most len(lookupSizes) statements and each keeps PostgreSQL's generic plan
// (its row count is fixed, so the planner's estimate does not depend on the values).
var lookupSizes = [...]int{1, 2, 4, 8, 16, 32, maxLookupBatch}

// lookupStatements holds the statement of each size in lookupSizes.
var lookupStatements = func() (out [len(lookupSizes)]string) {
	for i, n := range lookupSizes {
		out[i] = lookupStatement(n)
	}
	return out
}()

// lookupStatement is the look-up of n codes. Each row of q is one look-up (merchant, code as given,
// code lower-cased, its number); the lateral subquery is FindListCode's rule for one code: one probe
// of the unique (merchant_id, lookup, list_id) index for both spellings, each kept where its list's
// case rule matches, the live code of the newest active list first. The list is read by its primary
// key for each code found (OFFSET 0 keeps the planner from joining the merchant's lists the other
// way round) and the hold's customer only for the row kept.
func lookupStatement(n int) string {
	var b strings.Builder
	b.WriteString(`SELECT q.n, f.* FROM (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "($%d::uuid, $%d::text, $%d::text, %d)", 3*i+1, 3*i+2, 3*i+3, i+1)
	}
	b.WriteString(`) AS q(merchant_id, code, folded, n)
		CROSS JOIN LATERAL (
			SELECT l.id, l.name, l.kind, l.max_assignments, l.uses_per_code, l.require_issued, l.starts_at, l.expires_at,
				l.archived_at, l.case_insensitive, l.created_at, coalesce(l.valid_for, 0), c.seq, c.code, c.state, c.uses,
				c.available_from, c.available_till, c.delivered_at, c.recipient_external_id, c.recipient_email, c.recipient_phone,
				c.hold_id, c.held_until,
				coalesce((SELECT r.customer_key FROM reservations r WHERE r.merchant_id = c.merchant_id AND r.id = c.hold_id), '')
			FROM codes c
			CROSS JOIN LATERAL (SELECT l.id, l.name, l.kind, l.max_assignments, l.uses_per_code, l.require_issued, l.starts_at,
					l.expires_at, l.archived_at, l.case_insensitive, l.created_at, l.valid_for
				FROM code_lists l WHERE l.merchant_id = c.merchant_id AND l.id = c.list_id OFFSET 0) l
			WHERE c.merchant_id = q.merchant_id AND c.lookup IN (q.code, q.folded)
			  AND c.lookup = CASE WHEN l.case_insensitive THEN q.folded ELSE q.code END
			ORDER BY c.state = 'removed', l.archived_at IS NOT NULL, l.created_at DESC
			LIMIT 1) f`)
	return b.String()
}

// codeLookup is one FindCode waiting for its answer. Look-ups are reused (lookupPool) once their
// caller has read the answer; one whose caller gave up is left to the garbage collector, since its
// statement may still answer it.
type codeLookup struct {
	merchantID uuid.UUID
	code       string
	found      core.FoundCode
	ok         bool
	err        error
	answered   atomic.Bool   // set before done receives
	done       chan struct{} // receives once found, ok and err are set
}

var lookupPool = sync.Pool{New: func() any { return &codeLookup{done: make(chan struct{}, 1)} }}

// newCodeLookups is the queue of look-ups waiting for a statement: one queue for the process.
func newCodeLookups(db *DB) *groupcommit.Batcher[struct{}, *codeLookup] {
	return groupcommit.New(maxLookupStatements, maxLookupBatch, func(_ struct{}, batch []*codeLookup) { db.runLookups(batch) })
}

// lookupCode answers one FindCode through the batching described above.
func (db *DB) lookupCode(ctx context.Context, merchantID uuid.UUID, code string) (core.FoundCode, bool, error) {
	if err := ctx.Err(); err != nil {
		return core.FoundCode{}, false, fmt.Errorf("db: find code: %w", err)
	}
	l := lookupPool.Get().(*codeLookup)
	l.merchantID, l.code = merchantID, code
	db.lookups.Submit(struct{}{}, l, l.answered.Load)
	select {
	case <-l.done:
	case <-ctx.Done():
		select {
		case <-l.done: // answered meanwhile: the answer wins
		default:
			return core.FoundCode{}, false, fmt.Errorf("db: find code: %w", ctx.Err())
		}
	}
	f, ok, err := l.found, l.ok, l.err
	l.merchantID, l.code, l.found, l.ok, l.err = uuid.Nil, "", core.FoundCode{}, false, nil
	l.answered.Store(false)
	lookupPool.Put(l)
	return f, ok, err
}

// runLookups answers a batch with one statement and wakes its callers.
func (db *DB) runLookups(batch []*codeLookup) {
	size := 0
	for size < len(lookupSizes)-1 && lookupSizes[size] < len(batch) {
		size++
	}
	args := make([]any, 0, 3*lookupSizes[size])
	for _, l := range batch {
		// [16]byte is the uuid's binary encoding; uuid.UUID would go through its text form.
		args = append(args, [16]byte(l.merchantID), l.code, strings.ToLower(l.code))
	}
	for range lookupSizes[size] - len(batch) {
		args = append(args, nil, nil, nil) // a row that matches nothing
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	err := db.queryLookups(ctx, lookupStatements[size], args, batch)
	for _, l := range batch {
		if err != nil {
			l.found, l.ok, l.err = core.FoundCode{}, false, err
		}
		l.answered.Store(true)
		l.done <- struct{}{}
	}
}

// queryLookups runs the statement and files each row under its look-up.
func (db *DB) queryLookups(ctx context.Context, sql string, args []any, batch []*codeLookup) error {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("db: find code: %w", err)
	}
	defer rows.Close()
	var n int32
	s := newFoundCodeScanner(&n)
	for rows.Next() {
		f, err := s.scan(rows)
		if err != nil {
			return fmt.Errorf("db: find code: %w", err)
		}
		if n < 1 || int(n) > len(batch) {
			return fmt.Errorf("db: find code: a row for look-up %d of %d", n, len(batch))
		}
		batch[n-1].found, batch[n-1].ok = f, true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("db: find code: %w", err)
	}
	return nil
}
