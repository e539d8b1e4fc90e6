package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// fakeLists serves one list.
type fakeLists struct {
	core.ListStore
	list core.List
}

func (f *fakeLists) GetList(_ context.Context, merchantID, listID uuid.UUID) (core.List, error) {
	if merchantID != f.list.MerchantID || listID != f.list.ID {
		return core.List{}, core.ErrListNotFound
	}
	return f.list, nil
}

// fakeImportStore keeps one import and its file in memory and records what the runner saves.
type fakeImportStore struct {
	imp      core.Import
	file     []byte
	batches  []core.ImportBatch
	opened   int
	failWith error // returned by SaveImportBatch when set
	// cutFile, when set, runs when the file is first read, which then ends early (its pieces
	// deleted): another run ending the import, or not.
	cutFile func(*fakeImportStore)
}

func (f *fakeImportStore) StartImport(_ context.Context, merchantID, importID uuid.UUID) (core.Import, error) {
	if importID != f.imp.ID {
		return core.Import{}, core.ErrImportNotFound
	}
	if f.imp.Status == core.ImportQueued {
		f.imp.Status = core.ImportRunning
	}
	return f.imp, nil
}

func (f *fakeImportStore) OpenImportFile(context.Context, uuid.UUID, uuid.UUID) (io.ReadCloser, error) {
	f.opened++
	if f.cutFile != nil {
		return io.NopCloser(readerFunc(func([]byte) (int, error) {
			f.cutFile(f)
			return 0, fmt.Errorf("db: import file ends at 0 of %d bytes: %w", len(f.file), io.ErrUnexpectedEOF)
		})), nil
	}
	return io.NopCloser(bytes.NewReader(f.file)), nil
}

// readerFunc is a function as an io.Reader.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestImportRunEndedByAnotherRun: a run whose file vanishes under it because another run ended
// the import (two deliveries of one task) leaves it as that run left it, without an error to
// retry; a file that ends early while the import still runs is an error, and the task is retried.
func TestImportRunEndedByAnotherRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		other   func(*fakeImportStore)
		wantErr bool
		status  core.ImportStatus
	}{
		{"another run finished it", func(f *fakeImportStore) { f.imp.Status = core.ImportSucceeded }, false, core.ImportSucceeded},
		{"another run failed it", func(f *fakeImportStore) { f.imp.Status, f.imp.Error = core.ImportFailed, "bad file" }, false, core.ImportFailed},
		{"the file ends early, the import still running", func(*fakeImportStore) {}, true, core.ImportRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, store := newRunnerFixture(core.FormatText, "C1\nC2\n")
			store.cutFile = tc.other
			err := r.Run(context.Background(), store.imp.MerchantID, store.imp.ID)
			if (err != nil) != tc.wantErr || store.imp.Status != tc.status || len(store.batches) != 0 {
				t.Fatalf("run: %v, import %s with %d batches; want an error %v, %s and no batch", err, store.imp.Status, len(store.batches), tc.wantErr, tc.status)
			}
		})
	}
}

func (f *fakeImportStore) SaveImportBatch(_ context.Context, imp core.Import, _ core.List, b core.ImportBatch) (core.Import, error) {
	if f.failWith != nil {
		return core.Import{}, f.failWith
	}
	if b.After != f.imp.LinesDone {
		return core.Import{}, core.ErrImportMoved
	}
	f.batches = append(f.batches, b)
	f.imp.Rows += b.Rows()
	f.imp.Imported += int64(len(b.Codes))
	f.imp.Invalid += b.Invalid
	for _, e := range b.Errors {
		if len(f.imp.Errors) < core.MaxImportErrors {
			f.imp.Errors = append(f.imp.Errors, e)
		}
	}
	f.imp.LinesDone, f.imp.BytesDone = b.LinesDone, b.BytesDone
	return f.imp, nil
}

func (f *fakeImportStore) FinishImport(context.Context, uuid.UUID, uuid.UUID) error {
	f.imp.Status = core.ImportSucceeded
	return nil
}

func (f *fakeImportStore) FailImport(_ context.Context, _, _ uuid.UUID, message string) error {
	f.imp.Status, f.imp.Error = core.ImportFailed, message
	return nil
}

func newRunnerFixture(format core.ImportFormat, file string) (*core.ImportRunner, *fakeImportStore) {
	list := core.List{ID: uuid.New(), MerchantID: uuid.New(), Kind: core.KindUnique}
	store := &fakeImportStore{file: []byte(file), imp: core.Import{ID: uuid.New(), MerchantID: list.MerchantID,
		ListID: list.ID, Number: 1, Status: core.ImportQueued, Format: format, SizeBytes: int64(len(file))}}
	r := core.NewImportRunner(&fakeLists{list: list}, store, slog.New(slog.DiscardHandler))
	return r, store
}

func TestImportRunnerBatchesWithCheckpoints(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	for i := 1; i <= 25; i++ {
		if i%8 == 0 {
			fmt.Fprintf(&sb, "bad %d\n", i)
		} else {
			fmt.Fprintf(&sb, "C%d\n", i)
		}
		if i == 20 {
			sb.WriteString("\n") // an empty line is no row
		}
	}
	r, store := newRunnerFixture(core.FormatText, sb.String())
	r.BatchSize = 10
	if err := r.Run(context.Background(), store.imp.MerchantID, store.imp.ID); err != nil {
		t.Fatal(err)
	}
	if store.imp.Status != core.ImportSucceeded || store.imp.Rows != 25 || store.imp.Imported != 22 || store.imp.Invalid != 3 {
		t.Fatalf("import after the run: %+v", store.imp)
	}
	var after int64
	sizes := []int64{}
	for _, b := range store.batches {
		if b.After != after || b.LinesDone <= after {
			t.Fatalf("batch continues from %d to %d, want from %d", b.After, b.LinesDone, after)
		}
		after = b.LinesDone
		sizes = append(sizes, b.Rows())
	}
	if fmt.Sprint(sizes) != "[10 10 5]" || after != 26 || store.batches[2].BytesDone != int64(len(store.file)) {
		t.Fatalf("batches %v ending at line %d, byte %d of %d", sizes, after, store.batches[2].BytesDone, len(store.file))
	}
	want := []core.RowError{{Line: 8, Code: "bad 8", Reason: "invalid_code"}, {Line: 16, Code: "bad 16", Reason: "invalid_code"},
		{Line: 25, Code: "bad 24", Reason: "invalid_code"}}
	if fmt.Sprint(store.imp.Errors) != fmt.Sprint(want) {
		t.Fatalf("errors %v, want %v", store.imp.Errors, want)
	}
}

func TestImportRunnerResumesAfterItsCheckpoint(t *testing.T) {
	t.Parallel()
	r, store := newRunnerFixture(core.FormatCSV, "Code\nA\nB\nC\nD\nE\n")
	store.imp.Status, store.imp.LinesDone, store.imp.Rows = core.ImportRunning, 4, 3 // A, B, C saved
	if err := r.Run(context.Background(), store.imp.MerchantID, store.imp.ID); err != nil {
		t.Fatal(err)
	}
	if len(store.batches) != 1 || len(store.batches[0].Codes) != 2 || store.batches[0].Codes[0].Code != "D" || store.imp.Rows != 5 {
		t.Fatalf("resumed batches %+v, import %+v", store.batches, store.imp)
	}
}

func TestImportRunnerEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("no Code column fails the import", func(t *testing.T) {
		t.Parallel()
		r, store := newRunnerFixture(core.FormatCSV, "Voucher\nA\n")
		if err := r.Run(ctx, store.imp.MerchantID, store.imp.ID); err != nil {
			t.Fatal(err)
		}
		if store.imp.Status != core.ImportFailed || !strings.Contains(store.imp.Error, "no Code column") || len(store.batches) != 0 {
			t.Fatalf("%+v", store.imp)
		}
	})
	t.Run("an unclosed quote fails the import", func(t *testing.T) {
		t.Parallel()
		r, store := newRunnerFixture(core.FormatCSV, "Code\nA\n\"B\n"+strings.Repeat("C\n", 1<<20))
		if err := r.Run(ctx, store.imp.MerchantID, store.imp.ID); err != nil {
			t.Fatal(err)
		}
		if store.imp.Status != core.ImportFailed || !strings.Contains(store.imp.Error, "line 3") {
			t.Fatalf("%+v", store.imp)
		}
	})
	t.Run("an ended import is left alone", func(t *testing.T) {
		t.Parallel()
		r, store := newRunnerFixture(core.FormatCSV, "Code\nA\n")
		store.imp.Status = core.ImportSucceeded
		if err := r.Run(ctx, store.imp.MerchantID, store.imp.ID); err != nil || store.opened != 0 || len(store.batches) != 0 {
			t.Fatalf("err %v, opened %d, batches %d", err, store.opened, len(store.batches))
		}
	})
	t.Run("a vanished import is done with", func(t *testing.T) {
		t.Parallel()
		r, store := newRunnerFixture(core.FormatCSV, "Code\nA\n")
		if err := r.Run(ctx, store.imp.MerchantID, uuid.New()); err != nil || store.opened != 0 {
			t.Fatalf("err %v, opened %d", err, store.opened)
		}
	})
	t.Run("a store failure is retried", func(t *testing.T) {
		t.Parallel()
		r, store := newRunnerFixture(core.FormatCSV, "Code\nA\n")
		boom := errors.New("database down")
		store.failWith = boom
		if err := r.Run(ctx, store.imp.MerchantID, store.imp.ID); !errors.Is(err, boom) || store.imp.Status != core.ImportRunning {
			t.Fatalf("err %v, status %s", err, store.imp.Status)
		}
	})
}

func TestImportRunnerReportsAtMost100CleanRejections(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	sb.WriteString("A\x00B\n" + strings.Repeat("é", 300) + "\n")
	for i := 0; i < 150; i++ {
		sb.WriteString("x y\n")
	}
	r, store := newRunnerFixture(core.FormatText, sb.String())
	r.BatchSize = 7
	if err := r.Run(context.Background(), store.imp.MerchantID, store.imp.ID); err != nil {
		t.Fatal(err)
	}
	if store.imp.Invalid != 152 || len(store.imp.Errors) != core.MaxImportErrors {
		t.Fatalf("invalid %d, errors kept %d", store.imp.Invalid, len(store.imp.Errors))
	}
	passed := 0
	for _, b := range store.batches {
		passed += len(b.Errors)
	}
	if passed != core.MaxImportErrors {
		t.Fatalf("the runner handed %d rejections to the store, want %d", passed, core.MaxImportErrors)
	}
	if got := store.imp.Errors[0].Code; got != "A\uFFFDB" {
		t.Fatalf("control character kept: %q", got)
	}
	if got := store.imp.Errors[1].Code; got != strings.Repeat("é", 100)+"…" {
		t.Fatalf("long text not cut: %q", got)
	}
}

// fakeSweepStore serves fixed answers to the sweeper.
type fakeSweepStore struct {
	imports  []core.ImportRef
	batches  []core.BatchRef
	staleErr error
	before   time.Time
	failed   []string
	// stock and expiry upkeep
	expirations int
	crossed     []core.ListRef
	recorded    []uuid.UUID
	webhooks    []core.WebhookRef
	pushes      []core.PushRef
	deliveries  []core.WebhookRef
	waiting     []core.ListRef
	jobs        []core.WebhookRef
}

func (f *fakeSweepStore) PushesBehind(context.Context, time.Time, int) ([]core.PushRef, error) {
	return f.pushes, nil
}

func (f *fakeSweepStore) StalledDeliveries(context.Context, time.Time, int) ([]core.WebhookRef, error) {
	return f.deliveries, nil
}

func (f *fakeSweepStore) ListsWithWaitingDeliveries(context.Context, int) ([]core.ListRef, error) {
	return f.waiting, nil
}

func (f *fakeSweepStore) StalledBulkSends(context.Context, time.Time, int) ([]core.WebhookRef, error) {
	return f.jobs, nil
}

func (f *fakeSweepStore) StalledWebhookReceipts(context.Context, time.Time, int) ([]core.WebhookRef, error) {
	return f.webhooks, nil
}

func (f *fakeSweepStore) StalledImports(_ context.Context, before time.Time, _ int) ([]core.ImportRef, error) {
	f.before = before
	return f.imports, nil
}

func (f *fakeSweepStore) StalledBatches(context.Context, time.Time, int) ([]core.BatchRef, error) {
	return f.batches, nil
}

func (f *fakeSweepStore) FailStaleImports(_ context.Context, statuses []core.ImportStatus, before time.Time, message string) (int64, error) {
	f.failed = append(f.failed, fmt.Sprintf("%v older than %s: %s", statuses, time.Since(before).Round(time.Hour), message))
	return 0, f.staleErr
}

func (f *fakeSweepStore) RecordExpirations(context.Context, time.Time) (int64, error) {
	f.expirations++
	return 1, nil
}

func (f *fakeSweepStore) ListsPastAStockCrossing(context.Context, int) ([]core.ListRef, error) {
	return f.crossed, nil
}

func (f *fakeSweepStore) RecordStockCrossings(_ context.Context, _, listID uuid.UUID) ([]string, error) {
	f.recorded = append(f.recorded, listID)
	return []string{"list.low_stock"}, nil
}

type fakeQueue struct{ imports, batches, webhooks, pushes, sends, resumes, jobs []string }

func (q *fakeQueue) EnqueueBulkSend(_ context.Context, _, jobID uuid.UUID) error {
	q.jobs = append(q.jobs, jobID.String())
	return nil
}

func (q *fakeQueue) EnqueueResumeDeliveries(_ context.Context, _, listID uuid.UUID) error {
	q.resumes = append(q.resumes, listID.String())
	return nil
}

func (q *fakeQueue) EnqueueSend(_ context.Context, _, deliveryID uuid.UUID) error {
	q.sends = append(q.sends, deliveryID.String())
	return nil
}

func (q *fakeQueue) EnqueuePush(_ context.Context, _, listID, connectionID uuid.UUID) error {
	q.pushes = append(q.pushes, listID.String()+":"+connectionID.String())
	return nil
}

func (q *fakeQueue) EnqueueWebhookBatch(_ context.Context, merchantID uuid.UUID) error {
	q.webhooks = append(q.webhooks, merchantID.String())
	return nil
}

func (q *fakeQueue) EnqueueImport(_ context.Context, _, importID uuid.UUID) error {
	q.imports = append(q.imports, importID.String())
	return nil
}

func (q *fakeQueue) EnqueueBatch(_ context.Context, _, listID uuid.UUID, number int) error {
	q.batches = append(q.batches, fmt.Sprintf("%s:%d", listID, number))
	return nil
}

func TestSweeperEnqueuesStalledWork(t *testing.T) {
	t.Parallel()
	boom := errors.New("stale imports query failed")
	imp := core.ImportRef{MerchantID: uuid.New(), ID: uuid.New()}
	batch := core.BatchRef{MerchantID: uuid.New(), ListID: uuid.New(), Number: 3}
	crossed := core.ListRef{MerchantID: uuid.New(), ID: uuid.New()}
	hook := core.WebhookRef{MerchantID: uuid.New(), ID: uuid.New(), Platform: "shopify"}
	// Two stalled deliveries of one merchant and one of another: one batch task per merchant.
	sameMerchant := core.WebhookRef{MerchantID: hook.MerchantID, ID: uuid.New(), Platform: "shopify"}
	other := core.WebhookRef{MerchantID: uuid.New(), ID: uuid.New(), Platform: "woocommerce"}
	push := core.PushRef{MerchantID: uuid.New(), ListID: uuid.New(), ConnectionID: uuid.New()}
	store := &fakeSweepStore{imports: []core.ImportRef{imp}, batches: []core.BatchRef{batch}, staleErr: boom, crossed: []core.ListRef{crossed},
		webhooks: []core.WebhookRef{hook, sameMerchant, other}, pushes: []core.PushRef{push}, deliveries: []core.WebhookRef{{MerchantID: uuid.New(), ID: uuid.New()}},
		waiting: []core.ListRef{{MerchantID: uuid.New(), ID: uuid.New()}}, jobs: []core.WebhookRef{{MerchantID: uuid.New(), ID: uuid.New()}}}
	q := &fakeQueue{}
	err := core.NewSweeper(store, q, slog.New(slog.DiscardHandler)).Sweep(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the failing step's error", err)
	}
	if fmt.Sprint(q.imports) != fmt.Sprint([]string{imp.ID.String()}) || fmt.Sprint(q.batches) != fmt.Sprintf("[%s:3]", batch.ListID) {
		t.Fatalf("enqueued imports %v, batches %v", q.imports, q.batches)
	}
	if len(q.jobs) != 1 || q.jobs[0] != store.jobs[0].ID.String() {
		t.Fatalf("enqueued jobs %v", q.jobs)
	}
	if len(q.resumes) != 1 || q.resumes[0] != store.waiting[0].ID.String() {
		t.Fatalf("resumed lists %v", q.resumes)
	}
	if len(q.sends) != 1 || q.sends[0] != store.deliveries[0].ID.String() {
		t.Fatalf("enqueued sends %v", q.sends)
	}
	if fmt.Sprint(q.pushes) != "["+push.ListID.String()+":"+push.ConnectionID.String()+"]" {
		t.Fatalf("enqueued pushes %v", q.pushes)
	}
	if fmt.Sprint(q.webhooks) != fmt.Sprint([]string{hook.MerchantID.String(), other.MerchantID.String()}) {
		t.Fatalf("enqueued webhooks %v", q.webhooks)
	}
	if age := time.Since(store.before); age < core.StallAfter || age > core.StallAfter+time.Minute {
		t.Fatalf("stalled since %s", age)
	}
	want := []string{
		"[uploading] older than 1h0m0s: upload did not finish",
		"[queued running] older than 24h0m0s: the import did not finish within 24 hours; upload the file again",
	}
	if fmt.Sprint(store.failed) != fmt.Sprint(want) {
		t.Fatalf("failed stale imports %q, want %q", store.failed, want)
	}
	if store.expirations != 1 || len(store.recorded) != 1 || store.recorded[0] != crossed.ID {
		t.Fatalf("expirations swept %d times, stock crossings recorded for %v", store.expirations, store.recorded)
	}
}
