package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// batchProvider is a provider that takes batches: it answers each message by its recipient
// (answers[to], nil: taken) and counts what reached each recipient. die, when set, is called
// with each batch before anything is sent; it returns how many of the batch reach their
// recipients before the worker dies in the middle of the batch (-1: it does not die).
type batchProvider struct {
	mu       sync.Mutex
	answers  map[string]error
	received map[string]int
	batches  int
	die      func(batch int, msgs []core.Message) int
}

func newBatchProvider() *batchProvider {
	return &batchProvider{answers: map[string]error{}, received: map[string]int{}}
}

func (p *batchProvider) Send(ctx context.Context, merchantID uuid.UUID, msg core.Message) (string, error) {
	r := p.SendBatch(ctx, merchantID, []core.Message{msg})
	return r[0].ProviderID, r[0].Err
}

func (p *batchProvider) SendBatch(_ context.Context, _ uuid.UUID, msgs []core.Message) []core.SendResult {
	p.mu.Lock()
	p.batches++
	n := p.batches
	p.mu.Unlock()
	if p.die != nil {
		if reached := p.die(n, msgs); reached >= 0 {
			p.mu.Lock()
			for _, m := range msgs[:reached] {
				p.received[m.To]++
			}
			p.mu.Unlock()
			runtime.Goexit() // the worker is killed: nothing after this runs
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]core.SendResult, len(msgs))
	for i, m := range msgs {
		if err := p.answers[m.To]; err != nil {
			out[i].Err = err
			continue
		}
		p.received[m.To]++
		out[i].ProviderID = "p-" + m.To
	}
	return out
}

func (p *batchProvider) got(to string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received[to]
}

// queuedJob runs a bulk job of the recipients r0001…r<n> and returns their queued deliveries'
// ids in the order of the file, their addresses by id, and the job's id.
func queuedJob(t *testing.T, f *bulkFixture, n int) ([]uuid.UUID, map[uuid.UUID]string, uuid.UUID) {
	t.Helper()
	j := f.run(t, "batch", recipientsCSV(1, n))
	rows, err := f.db.Pool().Query(context.Background(), `SELECT id, recipient->>'email' FROM deliveries
		WHERE merchant_id = $1 AND job_id = $2 AND status = 'queued' ORDER BY recipient->>'email'`, f.merchantID, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []uuid.UUID
	to := map[uuid.UUID]string{}
	for rows.Next() {
		var id uuid.UUID
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		ids, to[id] = append(ids, id), email
	}
	if len(ids) != n {
		t.Fatalf("%d deliveries queued, want %d", len(ids), n)
	}
	return ids, to, j.ID
}

// status reads a delivery's status, error and attempts.
func (f *bulkFixture) status(t *testing.T, id uuid.UUID) (string, string, int) {
	t.Helper()
	var status, reason string
	var attempts int
	if err := f.db.Pool().QueryRow(context.Background(), `SELECT status, error, attempts FROM deliveries WHERE merchant_id = $1 AND id = $2`,
		f.merchantID, id).Scan(&status, &reason, &attempts); err != nil {
		t.Fatal(err)
	}
	return status, reason, attempts
}

// TestBatchSendOutcomes: a batch's deliveries end as single sends end: taken is sent, a refusal
// fails at once, a passing failure is queued again and the batch returns it (the task runs again
// for those alone); on the last attempt a passing failure fails. A delivery sent is never handed
// to the provider again, however often the batch runs.
func TestBatchSendOutcomes(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	f := newBulkFixture(t, db, core.ListInput{Name: "Outcomes"}, 50)
	ids, to, job := queuedJob(t, f, 40)
	provider := newBatchProvider()
	passing := errors.New("provider: 503")
	provider.answers["r0002@example.com"] = refusal("550 no such user")
	provider.answers["r0003@example.com"] = passing
	provider.answers["r0039@example.com"] = passing
	sender := core.NewDeliverySender(db, db, provider, slog.New(slog.NewTextHandler(io.Discard, nil)))

	if err := sender.SendBatch(ctx, f.merchantID, ids, false); !errors.Is(err, passing) {
		t.Fatalf("first run: %v, want the passing failure", err)
	}
	want := map[string]string{"r0002@example.com": core.DeliveryFailed, "r0003@example.com": core.DeliveryQueued, "r0039@example.com": core.DeliveryQueued}
	for _, id := range ids {
		status, reason, attempts := f.status(t, id)
		w := want[to[id]]
		if w == "" {
			w = core.DeliverySent
		}
		if status != w || attempts != 1 {
			t.Errorf("%s: %s after %d attempts (%q), want %s after 1", to[id], status, attempts, reason, w)
		}
	}
	// The task runs again: r0003 is taken now, r0039 fails for good on the last attempt.
	delete(provider.answers, "r0003@example.com")
	if err := sender.SendBatch(ctx, f.merchantID, ids, true); err != nil {
		t.Fatalf("last run: %v", err)
	}
	if err := sender.SendBatch(ctx, f.merchantID, ids, false); err != nil {
		t.Fatalf("a run after the end: %v", err)
	}
	for _, id := range ids {
		status, reason, _ := f.status(t, id)
		switch to[id] {
		case "r0002@example.com":
			if status != core.DeliveryFailed || reason != "550 no such user" || provider.got(to[id]) != 0 {
				t.Errorf("%s: %s (%q), received %d", to[id], status, reason, provider.got(to[id]))
			}
		case "r0039@example.com":
			if status != core.DeliveryFailed || !strings.Contains(reason, "gave up after the last attempt") {
				t.Errorf("%s: %s (%q)", to[id], status, reason)
			}
		default:
			if status != core.DeliverySent || provider.got(to[id]) != 1 {
				t.Errorf("%s: %s, received %d messages, want sent, 1", to[id], status, provider.got(to[id]))
			}
		}
	}
	f.checkJobCounts(t, job)
}

// TestBatchSendKilledMidBatch: the worker dies in the middle of a batch's second group, after part
// of the group reached its recipients. The task runs again: the first group, recorded sent, is
// not sent again; the second, whose sends are unknown, is not sent again either; the rest go out.
// While the batch's claim is fresh a single send of the same delivery (a request made again, the
// sweeper) leaves it to the batch; once the claim is stale it fails it as the remains of a stopped
// worker, as it does a single send's. No recipient gets two messages.
func TestBatchSendKilledMidBatch(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	f := newBulkFixture(t, db, core.ListInput{Name: "Killed"}, 100)
	ids, to, job := queuedJob(t, f, 80) // three groups: 32, 32, 16
	provider := newBatchProvider()
	provider.die = func(batch int, _ []core.Message) int {
		if batch == 2 {
			return 10 // ten of the second group's 32 reached their recipients
		}
		return -1
	}
	sender := core.NewDeliverySender(db, db, provider, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sender.SendBatch(ctx, f.merchantID, ids, false)
		t.Error("the batch went on after the worker died")
	}()
	<-done

	provider.die = nil
	if err := sender.SendBatch(ctx, f.merchantID, ids, false); err != nil {
		t.Fatalf("the task again: %v", err)
	}
	unknown := ids[32:64]
	for i, id := range ids {
		status, _, attempts := f.status(t, id)
		inFlight := i >= 32 && i < 64
		switch {
		case inFlight && status != core.DeliverySending:
			t.Errorf("%s (in flight when the worker died): %s, want left sending", to[id], status)
		case !inFlight && (status != core.DeliverySent || attempts != 1):
			t.Errorf("%s: %s after %d attempts, want sent after 1", to[id], status, attempts)
		}
	}
	// A single send while the batch's claim is fresh leaves the delivery alone.
	if err := sender.Send(ctx, f.merchantID, unknown[0], false); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := f.status(t, unknown[0]); status != core.DeliverySending {
		t.Fatalf("a single send took a delivery a batch claimed a moment ago: %s", status)
	}
	// Past StallAfter the sweeper queues them and their single sends fail them, unsent.
	if _, err := db.Pool().Exec(ctx, fmt.Sprintf(`UPDATE deliveries SET updated_at = now() - interval '%d seconds'
		WHERE merchant_id = $1 AND id = ANY($2)`, int(core.StallAfter.Seconds())+30), f.merchantID, unknown); err != nil {
		t.Fatal(err)
	}
	for _, id := range unknown {
		if err := sender.Send(ctx, f.merchantID, id, false); err != nil {
			t.Fatal(err)
		}
		if status, reason, _ := f.status(t, id); status != core.DeliveryFailed || !strings.Contains(reason, "the worker stopped while sending") {
			t.Errorf("%s after the sweep: %s (%q), want failed as a stopped worker's", to[id], status, reason)
		}
	}
	for i, id := range ids {
		want := 1
		if i >= 32+10 && i < 64 {
			want = 0 // claimed, never offered
		}
		if got := provider.got(to[id]); got != want {
			t.Errorf("%s received %d messages, want %d", to[id], got, want)
		}
	}
	f.checkJobCounts(t, job)
}
