package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

// memCursor is the allocation cursor in memory (Redis in production); it is only a hint.
type memCursor struct{ n atomic.Int64 }

func (c *memCursor) Next(context.Context, uuid.UUID) (int64, error) { return c.n.Add(1), nil }
func (c *memCursor) AtLeast(_ context.Context, _ uuid.UUID, pos int64) error {
	for v := c.n.Load(); v < pos && !c.n.CompareAndSwap(v, pos); v = c.n.Load() {
	}
	return nil
}
func (c *memCursor) AtMost(_ context.Context, _ uuid.UUID, pos int64) error {
	for v := c.n.Load(); v > pos && !c.n.CompareAndSwap(v, pos); v = c.n.Load() {
	}
	return nil
}
func (c *memCursor) Range(_ context.Context, _ uuid.UUID, n int64) (int64, error) {
	return c.n.Add(n) - n + 1, nil
}

// jobQueue records what a bulk send queues.
type jobQueue struct {
	mu      sync.Mutex
	sends   []uuid.UUID
	batches map[string][]uuid.UUID
}

func (q *jobQueue) EnqueueSend(_ context.Context, _ uuid.UUID, id uuid.UUID) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sends = append(q.sends, id)
	return nil
}
func (q *jobQueue) EnqueueResumeDeliveries(context.Context, uuid.UUID, uuid.UUID) error { return nil }
func (q *jobQueue) EnqueueBulkSend(context.Context, uuid.UUID, uuid.UUID) error         { return nil }
func (q *jobQueue) EnqueueSendBatch(_ context.Context, _ uuid.UUID, key string, ids []uuid.UUID) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.batches == nil {
		q.batches = map[string][]uuid.UUID{}
	}
	q.batches[key] = append([]uuid.UUID(nil), ids...)
	return nil
}

// bulkFixture is a merchant's list with codes and an email template, and the services a bulk job
// runs with.
type bulkFixture struct {
	db         *store.DB
	merchantID uuid.UUID
	list       core.List
	template   uuid.UUID
	alloc      *core.Allocator
	deliveries *core.Deliveries
	jobs       *core.BulkSends
	queue      *jobQueue
}

func newBulkFixture(t *testing.T, db *store.DB, in core.ListInput, codes int) *bulkFixture {
	t.Helper()
	ctx := context.Background()
	m, _, err := core.NewMerchants(db).Create(ctx, "Bulk Shop "+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	l, err := core.NewLists(db).Create(ctx, m.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != core.KindFixed {
		all := make([]string, codes)
		for i := range all {
			all[i] = fmt.Sprintf("BULK-%05d", i+1)
		}
		if _, err := db.AddCodes(ctx, l, all); err != nil {
			t.Fatal(err)
		}
	}
	tpl, err := core.NewTemplates(db, db).Create(ctx, m.ID, l.ID, core.TemplateInput{Channel: "email", Subject: "Hi", Text: "<couponcode>",
		Locale: "en-GB", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &bulkFixture{db: db, merchantID: m.ID, list: l, template: tpl.ID, queue: &jobQueue{}}
	cursor := &memCursor{}
	f.alloc = core.NewAllocator(db, cursor, log)
	f.deliveries = core.NewDeliveries(db, db, db, f.alloc, channelsOn{}, f.queue)
	f.jobs = core.NewBulkSends(f.deliveries, db, f.queue, log)
	f.jobs.Positions = cursor
	return f
}

// run uploads csv as a job of campaign and runs it to its end.
func (f *bulkFixture) run(t *testing.T, campaign, csv string) core.BulkSend {
	t.Helper()
	ctx := context.Background()
	j, err := f.jobs.Create(ctx, f.merchantID, f.list.ID, core.BulkSendInput{Channel: core.ChannelEmail, TemplateID: f.template,
		Campaign: campaign, File: strings.NewReader(csv), Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.jobs.Run(ctx, f.merchantID, j.ID); err != nil {
		t.Fatal(err)
	}
	got, err := f.jobs.Get(ctx, f.merchantID, f.list.ID, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// count runs a counting query with the list's merchant and id as $1 and $2.
func (f *bulkFixture) count(t *testing.T, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := f.db.Pool().QueryRow(context.Background(), query, append([]any{f.merchantID, f.list.ID}, args...)...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// checkCodes asserts what must hold of a list after any mix of hand-outs: no code went to two
// recipients, a recipient and campaign hold one code, each delivery holds the code allocated to
// its recipient, and the counters agree with the codes.
func (f *bulkFixture) checkCodes(t *testing.T) {
	t.Helper()
	// Statistics first: the checks join thousands of rows the planner has not seen yet.
	if _, err := f.db.Pool().Exec(context.Background(), `ANALYZE codes, allocations, deliveries`); err != nil {
		t.Fatal(err)
	}
	if f.list.Kind != core.KindFixed {
		if n := f.count(t, `SELECT count(*) FROM (SELECT seq FROM allocations WHERE merchant_id = $1 AND list_id = $2
			GROUP BY seq HAVING count(DISTINCT (recipient_key, campaign)) > 1) x`); n > 0 {
			t.Errorf("%d codes went to more than one recipient", n)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM (SELECT recipient_key, campaign FROM allocations WHERE merchant_id = $1 AND list_id = $2
			GROUP BY recipient_key, campaign HAVING count(DISTINCT seq) > 1) x`); n > 0 {
		t.Errorf("%d recipients hold more than one code of a campaign", n)
	}
	if n := f.count(t, `SELECT count(*) FROM deliveries d
			LEFT JOIN allocations a ON a.merchant_id = d.merchant_id AND a.list_id = d.list_id AND a.seq = d.seq
				AND a.recipient_key = d.recipient_key AND a.campaign = d.campaign
			LEFT JOIN codes c ON c.merchant_id = d.merchant_id AND c.list_id = d.list_id AND c.seq = d.seq
			WHERE d.merchant_id = $1 AND d.list_id = $2 AND d.code IS NOT NULL AND (a.seq IS NULL OR c.code IS DISTINCT FROM d.code)`); n > 0 {
		t.Errorf("%d deliveries hold a code that was not allocated to their recipient", n)
	}
	if f.list.Kind == core.KindFixed {
		return
	}
	avail := f.count(t, `SELECT coalesce(sum(available), 0) FROM list_counters WHERE merchant_id = $1 AND list_id = $2`)
	delivered := f.count(t, `SELECT coalesce(sum(delivered), 0) FROM list_counters WHERE merchant_id = $1 AND list_id = $2`)
	if want := f.count(t, `SELECT count(*) FROM codes WHERE merchant_id = $1 AND list_id = $2 AND state = 'available'`); avail != want {
		t.Errorf("counters say %d available, the codes %d", avail, want)
	}
	if want := f.count(t, `SELECT count(*) FROM allocations WHERE merchant_id = $1 AND list_id = $2`); delivered != want {
		t.Errorf("counters say %d delivered, the allocations %d", delivered, want)
	}
}

// checkJobCounts asserts that a job's counts (kept by triggers) are its deliveries counted now.
func (f *bulkFixture) checkJobCounts(t *testing.T, jobID uuid.UUID) {
	t.Helper()
	j, err := f.jobs.Get(context.Background(), f.merchantID, f.list.ID, jobID)
	if err != nil {
		t.Fatal(err)
	}
	var queued, sent, failed, waiting int64
	if err := f.db.Pool().QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status IN ('queued', 'sending')),
			count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'waiting')
		FROM deliveries WHERE merchant_id = $1 AND job_id = $2`, f.merchantID, jobID).Scan(&queued, &sent, &failed, &waiting); err != nil {
		t.Fatal(err)
	}
	if j.Queued != queued || j.Sent != sent || j.Failed != failed || j.Waiting != waiting {
		t.Errorf("job counts %d queued, %d sent, %d failed, %d waiting; its deliveries %d, %d, %d, %d",
			j.Queued, j.Sent, j.Failed, j.Waiting, queued, sent, failed, waiting)
	}
}

// recipientsCSV is a CSV of the recipients r<from>…r<to>@example.com.
func recipientsCSV(from, to int) string {
	var b strings.Builder
	b.WriteString("email,first_name\n")
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "r%04d@example.com,R%d\n", i, i)
	}
	return b.String()
}

// TestBulkJobAllocatesByChunk: a job of 650 recipients (and 50 rows naming one of them again) for
// a list of 600 codes, allocated a chunk at a time: each recipient one delivery; a recipient that
// had the campaign's code from the API keeps it; one that had a delivery keeps it; 600 codes
// handed out, each once, the counters exact; the 50 left wait; the low-stock and exhausted
// crossings recorded once each; every queued delivery in exactly one send batch. Run again, the
// job changes nothing.
func TestBulkJobAllocatesByChunk(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	f := newBulkFixture(t, db, core.ListInput{Name: "Chunks", LowStockThreshold: 100}, 600)
	earlier, err := f.alloc.Allocate(ctx, f.merchantID, f.list.ID, core.AllocationRequest{Recipient: core.Recipient{Email: "r0005@example.com"},
		Campaign: "spring", Channel: "api", Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	had, _, err := f.deliveries.Create(ctx, f.merchantID, f.list.ID, core.DeliveryInput{Recipient: core.MessageRecipient{Email: "r0010@example.com"},
		Campaign: "spring", Channel: core.ChannelEmail, TemplateID: f.template})
	if err != nil {
		t.Fatal(err)
	}
	csv := recipientsCSV(1, 650) + strings.Repeat("R0003@EXAMPLE.COM,again\n", 50)
	started := time.Now()
	j := f.run(t, "spring", csv)
	t.Logf("650 recipients read in %s", time.Since(started))
	// 600 codes: one is r0005's from the API, one r0010's; 598 go to the others, 50 wait.
	if j.Total() != 649 || j.Queued != 599 || j.Waiting != 50 || j.Invalid != 0 {
		t.Fatalf("job: %d deliveries, %d queued, %d waiting, %d invalid; want 649 (r0010's was made before), 599, 50, 0",
			j.Total(), j.Queued, j.Waiting, j.Invalid)
	}
	var code string
	if err := db.Pool().QueryRow(ctx, `SELECT code FROM deliveries WHERE merchant_id = $1 AND list_id = $2 AND recipient_key = 'email:r0005@example.com'`,
		f.merchantID, f.list.ID).Scan(&code); err != nil || code != earlier.Code {
		t.Fatalf("r0005's delivery holds %q (%v), want the code the API gave it, %s", code, err, earlier.Code)
	}
	if n := f.count(t, `SELECT count(*) FROM deliveries WHERE merchant_id = $1 AND list_id = $2 AND recipient_key = 'email:r0010@example.com' AND id = $3`, had.ID); n != 1 {
		t.Fatalf("r0010 has %d deliveries with its first id", n)
	}
	if n := f.count(t, `SELECT count(*) FROM deliveries WHERE merchant_id = $1 AND list_id = $2`); n != 650 {
		t.Fatalf("%d deliveries, want one for each of the 650 recipients", n)
	}
	if n := f.count(t, `SELECT count(*) FROM allocations WHERE merchant_id = $1 AND list_id = $2`); n != 600 {
		t.Fatalf("%d allocations, want the 600 codes", n)
	}
	f.checkCodes(t)
	for _, typ := range []string{store.EventListLowStock, store.EventListExhausted} {
		if n := f.count(t, `SELECT count(*) FROM domain_events WHERE merchant_id = $1 AND list_id = $2 AND type = $3`, typ); n != 1 {
			t.Errorf("%d %s events, want 1", n, typ)
		}
	}
	inBatches := map[uuid.UUID]int{}
	for _, ids := range f.queue.batches {
		for _, id := range ids {
			inBatches[id]++
		}
	}
	// r0003, named again in the last chunk, is queued again there (as a request made again is);
	// its send claims it once.
	if n := f.count(t, `SELECT count(*) FROM deliveries WHERE merchant_id = $1 AND list_id = $2 AND status = 'queued'`); int(n) != len(inBatches) {
		t.Errorf("%d deliveries queued, %d in send batches", n, len(inBatches))
	}

	// The job again, from its first row (a worker that died before its checkpoint, many times
	// over): nothing new is handed out or stored.
	if _, err := db.Pool().Exec(ctx, `UPDATE delivery_jobs SET status = 'running', rows_done = 0 WHERE id = $1`, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `INSERT INTO delivery_job_chunks (merchant_id, job_id, n, data) VALUES ($1, $2, 0, $3)`,
		f.merchantID, j.ID, []byte(csv)); err != nil {
		t.Fatal(err)
	}
	if err := f.jobs.Run(ctx, f.merchantID, j.ID); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM allocations WHERE merchant_id = $1 AND list_id = $2`); n != 600 {
		t.Fatalf("after the rerun: %d allocations, want 600", n)
	}
	f.checkJobCounts(t, j.ID)
	if n := f.count(t, `SELECT count(*) FROM deliveries WHERE merchant_id = $1 AND list_id = $2`); n != 650 {
		t.Fatalf("after the rerun: %d deliveries, want 650", n)
	}
	f.checkCodes(t)
}

// TestBulkJobOnAFixedList: a fixed code handed out at most max_assignments times; the rest wait.
func TestBulkJobOnAFixedList(t *testing.T) {
	t.Parallel()
	db := open(t)
	f := newBulkFixture(t, db, core.ListInput{Name: "Fixed", Kind: core.KindFixed, FixedCode: "WELCOME10", MaxAssignments: 5}, 0)
	j := f.run(t, "", recipientsCSV(1, 8))
	if j.Queued != 5 || j.Waiting != 3 {
		t.Fatalf("job: %d queued, %d waiting; want 5 and 3", j.Queued, j.Waiting)
	}
	if n := f.count(t, `SELECT count(*) FROM deliveries WHERE merchant_id = $1 AND list_id = $2 AND code = 'WELCOME10'`); n != 5 {
		t.Fatalf("%d deliveries hold the fixed code, want 5", n)
	}
	if a, d := f.count(t, `SELECT sum(available) FROM list_counters WHERE merchant_id = $1 AND list_id = $2`),
		f.count(t, `SELECT sum(delivered) FROM list_counters WHERE merchant_id = $1 AND list_id = $2`); a != 0 || d != 5 {
		t.Fatalf("counters: %d available, %d delivered; want 0 and 5", a, d)
	}
	if n := f.count(t, `SELECT count(*) FROM domain_events WHERE merchant_id = $1 AND list_id = $2 AND type = $3`, store.EventListExhausted); n != 1 {
		t.Fatalf("%d exhausted events, want 1", n)
	}
	f.checkCodes(t)
}

// TestBulkJobsRaceTheAPI: jobs of overlapping recipients run at the same time on one list as
// API allocations and single deliveries for the same recipients, with fewer codes than
// recipients: no code goes to two recipients, each recipient and campaign holds one code, each
// delivery the code allocated to its recipient, and the counts stay exact.
func TestBulkJobsRaceTheAPI(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	f := newBulkFixture(t, db, core.ListInput{Name: "Race", LowStockThreshold: 50}, 900)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := f.jobs.Create(ctx, f.merchantID, f.list.ID, core.BulkSendInput{Channel: core.ChannelEmail, TemplateID: f.template,
				Campaign: "race", File: strings.NewReader(recipientsCSV(1+g*200, 600+g*200)), Limit: 1 << 30})
			if err == nil {
				err = f.jobs.Run(ctx, f.merchantID, j.ID)
			}
			errs <- err
		}()
	}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1 + g; i <= 1000; i += 4 {
				r := core.Recipient{Email: fmt.Sprintf("r%04d@example.com", i)}
				var err error
				if i%2 == 0 {
					_, err = f.alloc.Allocate(ctx, f.merchantID, f.list.ID, core.AllocationRequest{Recipient: r, Campaign: "race", Channel: "api", Actor: "test"})
				} else {
					_, _, err = f.deliveries.Create(ctx, f.merchantID, f.list.ID, core.DeliveryInput{Recipient: core.MessageRecipient{Email: r.Email},
						Campaign: "race", Channel: core.ChannelEmail, TemplateID: f.template})
				}
				if err != nil && err != core.ErrListExhausted {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM allocations WHERE merchant_id = $1 AND list_id = $2`); n != 900 {
		t.Errorf("%d codes handed out, want all 900", n)
	}
	f.checkCodes(t)
}

// TestChunkAnswersADeliveryStoredMeanwhile: a recipient whose delivery another transaction
// stores while the chunk decides (a single delivery's insert takes no advisory lock) keeps that
// delivery: the chunk's insert waits for it, stores nothing for the recipient, and answers the
// delivery as the other stored it; the chunk's other recipients get theirs.
func TestChunkAnswersADeliveryStoredMeanwhile(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	f := newBulkFixture(t, db, core.ListInput{Name: "Meanwhile"}, 10)
	other, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	theirs := uuid.New()
	if _, err := other.Exec(ctx, `INSERT INTO deliveries (merchant_id, id, list_id, channel, template_id, campaign, recipient_key, recipient, status)
		VALUES ($1, $2, $3, 'email', $4, 'spring', 'email:b@example.com', '{"email": "b@example.com"}', 'waiting')`,
		f.merchantID, theirs, f.list.ID, f.template); err != nil {
		t.Fatal(err)
	}
	c := core.DeliveryChunk{MerchantID: f.merchantID, ListID: f.list.ID, JobID: uuid.New(), Channel: core.ChannelEmail, TemplateID: f.template,
		Campaign: "spring", Actor: "test", CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
		Recipients: []core.MessageRecipient{{Email: "a@example.com"}, {Email: "b@example.com"}, {Email: "c@example.com"}},
		IDs:        []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}}
	type answer struct {
		res core.ChunkResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := db.DeliverChunk(ctx, c, func(l *core.ChunkLedger) core.ChunkDecision { return core.DecideChunk(l, c) })
		done <- answer{res, err}
	}()
	// The chunk's insert waits on the uncommitted delivery's key.
	for deadline := time.Now().Add(30 * time.Second); ; {
		var waiting bool
		if err := db.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO deliveries%' AND query LIKE '%$13::text[]%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case got := <-done:
			t.Fatalf("the chunk ended without waiting for the other transaction's delivery: %+v, %v", got.res, got.err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the chunk's insert never waited for the other transaction's delivery")
		}
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	for i, want := range []struct {
		id      uuid.UUID
		created bool
	}{{c.IDs[0], true}, {theirs, false}, {c.IDs[2], true}} {
		if d := got.res.Deliveries[i]; d.ID != want.id || got.res.Created[i] != want.created {
			t.Errorf("recipient %d: delivery %s (made by the chunk: %v), want %s (%v)", i, d.ID, got.res.Created[i], want.id, want.created)
		}
	}
	if d := got.res.Deliveries[1]; d.Status != core.DeliveryWaiting || d.Code != "" {
		t.Errorf("b's delivery answered as %s %q, want it as stored: waiting, no code", d.Status, d.Code)
	}
	if n := f.count(t, `SELECT count(*) FROM deliveries WHERE merchant_id = $1 AND list_id = $2`); n != 3 {
		t.Fatalf("%d deliveries, want 3", n)
	}
}
