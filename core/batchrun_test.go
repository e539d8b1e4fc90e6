package core_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// memLists serves one list.
type memLists struct {
	core.ListStore
	list core.List
	gone bool
}

func (m *memLists) GetList(_ context.Context, merchantID, listID uuid.UUID) (core.List, error) {
	if m.gone || merchantID != m.list.MerchantID || listID != m.list.ID {
		return core.List{}, core.ErrListNotFound
	}
	return m.list, nil
}

// memBatches is an in-memory core.BatchRunStore with the store's rules: a chunk is saved whole or
// not at all, never beyond the count, and a code already in the list is skipped.
type memBatches struct {
	mu      sync.Mutex
	batch   core.Batch
	codes   map[string]int // lookup → batch number (0: imported)
	order   []string
	calls   int
	onChunk func(calls int) // runs after a saved chunk
}

func (m *memBatches) StartBatch(_ context.Context, _, _ uuid.UUID, number int) (core.Batch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if number != m.batch.Number {
		return core.Batch{}, core.ErrBatchNotFound
	}
	if m.batch.Status == core.BatchQueued {
		m.batch.Status = core.BatchRunning
	}
	return m.batch, nil
}

func (m *memBatches) AddBatchCodes(_ context.Context, list core.List, number int, codes []string) (int64, error) {
	m.mu.Lock()
	m.calls++
	need := m.batch.Count - m.batch.Generated
	if int64(len(codes)) > need {
		codes = codes[:need]
	}
	for _, c := range codes {
		if _, ok := m.codes[list.Lookup(c)]; ok {
			continue
		}
		m.codes[list.Lookup(c)] = number
		m.order = append(m.order, c)
		m.batch.Generated++
	}
	generated, calls := m.batch.Generated, m.calls
	m.mu.Unlock()
	if m.onChunk != nil {
		m.onChunk(calls)
	}
	return generated, nil
}

func (m *memBatches) FinishBatch(_ context.Context, _, _ uuid.UUID, _ int, status core.BatchStatus, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batch.Status, m.batch.Error = status, reason
	return nil
}

func newBatchBundle(t *testing.T, count int64, spec core.BatchSpec, existing ...string) (*core.BatchRunner, *memLists, *memBatches) {
	t.Helper()
	list := core.List{ID: uuid.New(), MerchantID: uuid.New(), Kind: core.KindUnique}
	spec.Count = count
	mb := &memBatches{batch: core.Batch{MerchantID: list.MerchantID, ListID: list.ID, Number: 1, BatchSpec: spec, Status: core.BatchQueued},
		codes: map[string]int{}}
	for _, c := range existing {
		mb.codes[c] = 0
	}
	ml := &memLists{list: list}
	r := core.NewBatchRunner(ml, mb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r, ml, mb
}

func TestBatchRunnerGeneratesExactlyCount(t *testing.T) {
	t.Parallel()
	// A space of 2^10 = 1024 holding 5 imported codes, 600 to generate: far beyond the API's headroom
	// rule (checked elsewhere), so collisions with imported and earlier codes are certain.
	spec := core.BatchSpec{Length: 10, Charset: "AB", Prefix: "X", Separator: "-"}
	existing := []string{}
	for _, s := range []string{"AAAAAAAAAA", "BBBBBBBBBB", "ABABABABAB", "BABABABABA", "AAAAABBBBB"} {
		existing = append(existing, "X-"+s)
	}
	r, ml, mb := newBatchBundle(t, 600, spec, existing...)
	r.Chunk = 50
	if err := r.Run(context.Background(), ml.list.MerchantID, ml.list.ID, 1); err != nil {
		t.Fatal(err)
	}
	if mb.batch.Status != core.BatchSucceeded || mb.batch.Generated != 600 {
		t.Fatalf("batch %s with %d codes, want succeeded with 600", mb.batch.Status, mb.batch.Generated)
	}
	n := 0
	for c, batch := range mb.codes {
		if batch == 1 {
			n++
			if !strings.HasPrefix(c, "X-") || len(c) != 12 {
				t.Fatalf("code %q does not follow the spec", c)
			}
		}
	}
	if n != 600 || len(mb.order) != 600 {
		t.Fatalf("%d codes of the batch (%d saved), want 600", n, len(mb.order))
	}
	for _, c := range existing {
		if mb.codes[c] != 0 {
			t.Fatalf("imported code %q was taken over by the batch", c)
		}
	}
	// Over 600 draws in a space of 1024 collisions happen: more than 12 chunks were needed.
	if mb.calls <= 12 {
		t.Fatalf("%d chunks for 600 codes in a crowded space: collisions were not redrawn", mb.calls)
	}
	// Idempotent: a finished batch is not touched again.
	calls := mb.calls
	if err := r.Run(context.Background(), ml.list.MerchantID, ml.list.ID, 1); err != nil || mb.calls != calls {
		t.Fatalf("second run: err %v, %d more chunks", err, mb.calls-calls)
	}
}

func TestBatchRunnerResumes(t *testing.T) {
	t.Parallel()
	r, ml, mb := newBatchBundle(t, 1000, core.BatchSpec{Length: 8, Charset: core.DefaultCharset, Separator: "-"})
	r.Chunk = 100
	ctx, cancel := context.WithCancel(context.Background())
	mb.onChunk = func(calls int) {
		if calls == 3 {
			cancel()
		}
	}
	if err := r.Run(ctx, ml.list.MerchantID, ml.list.ID, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
	if mb.batch.Generated != 300 || mb.batch.Status != core.BatchRunning {
		t.Fatalf("after cancel: %d codes, status %s; want 300, running", mb.batch.Generated, mb.batch.Status)
	}
	mb.onChunk = nil
	if err := r.Run(context.Background(), ml.list.MerchantID, ml.list.ID, 1); err != nil {
		t.Fatal(err)
	}
	if mb.batch.Generated != 1000 || len(mb.order) != 1000 || len(mb.codes) != 1000 || mb.batch.Status != core.BatchSucceeded {
		t.Fatalf("after resume: generated %d, saved %d, distinct %d, %s", mb.batch.Generated, len(mb.order), len(mb.codes), mb.batch.Status)
	}
	// 3 chunks before the cancel, 7 after it.
	if mb.calls != 10 {
		t.Fatalf("%d chunks, want 10: the resumed run did not start from the checkpoint", mb.calls)
	}
}

func TestBatchRunnerFailsWhenTheSpaceIsFull(t *testing.T) {
	t.Parallel()
	r, ml, mb := newBatchBundle(t, 5, core.BatchSpec{Length: 4, Charset: "AB", Separator: "-"})
	r.Chunk = 5
	r.Rand = bytes.NewReader(make([]byte, 1<<20)) // every draw is AAAA
	if err := r.Run(context.Background(), ml.list.MerchantID, ml.list.ID, 1); err != nil {
		t.Fatal(err)
	}
	if mb.batch.Status != core.BatchFailed || mb.batch.Generated != 1 || !strings.Contains(mb.batch.Error, "only 1 of 5") {
		t.Fatalf("batch %s, %d generated, error %q", mb.batch.Status, mb.batch.Generated, mb.batch.Error)
	}
	if mb.calls != 21 {
		t.Fatalf("%d chunks, want 1 + 20 stalled", mb.calls)
	}
}

func TestBatchRunnerListGone(t *testing.T) {
	t.Parallel()
	r, ml, mb := newBatchBundle(t, 5, core.BatchSpec{Length: 8, Charset: core.DefaultCharset})
	ml.gone = true
	if err := r.Run(context.Background(), ml.list.MerchantID, ml.list.ID, 1); err != nil || mb.calls != 0 {
		t.Fatalf("run on a deleted list: %v, %d chunks", err, mb.calls)
	}
	if err := r.Run(context.Background(), ml.list.MerchantID, ml.list.ID, 7); err != nil {
		t.Fatalf("run of an unknown batch: %v", err)
	}
}
