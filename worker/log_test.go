package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// syncBuffer is a log sink safe for the handlers' concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// idleUpkeep finds nothing to do; fail makes every call fail.
type idleUpkeep struct{ fail bool }

func (u idleUpkeep) err() error {
	if u.fail {
		return errors.New("postgres is down")
	}
	return nil
}
func (u idleUpkeep) Dispatch(context.Context) error { return u.err() }
func (u idleUpkeep) SendAlert(context.Context, uuid.UUID, int64, bool) error {
	return u.err()
}
func (u idleUpkeep) Sweep(context.Context) error        { return u.err() }
func (u idleUpkeep) ReconcileAll(context.Context) error { return u.err() }
func (u idleUpkeep) Reconcile(context.Context, uuid.UUID, uuid.UUID) error {
	return u.err()
}
func (u idleUpkeep) Run(context.Context, uuid.UUID, uuid.UUID) error { return u.err() }

// TestIdleWorkerLogsNothingAtInfo: the scheduler's periodic tasks (event dispatch every two
// seconds, the sweep, the reconciliation round) log nothing at info when they succeed, over many
// rounds; a failing round is still logged at warn, and other tasks still log "task done".
func TestIdleWorkerLogsNothingAtInfo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fail      bool
		wantLines int
		wantText  string
	}{
		{"idle rounds", false, 0, ""},
		{"failing rounds", true, 3 * 10, `level=WARN msg="task failed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out syncBuffer
			log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
			up := idleUpkeep{fail: tc.fail}
			mux := NewMux(Deps{Log: log, Sweeper: up, Events: up, Reconciler: up, Imports: up})
			ctx := context.Background()
			for range 10 {
				for _, typ := range []string{TypeDispatchEvents, TypeSweep, TypeReconcileAll} {
					_ = mux.ProcessTask(ctx, asynq.NewTask(typ, nil))
				}
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if out.String() == "" {
				lines = nil
			}
			if len(lines) != tc.wantLines {
				t.Fatalf("%d lines after 10 rounds of upkeep, want %d:\n%s", len(lines), tc.wantLines, out.String())
			}
			for _, l := range lines {
				if !strings.Contains(l, tc.wantText) {
					t.Fatalf("line %q, want %q", l, tc.wantText)
				}
			}
		})
	}
	// A task that does work still says so.
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	mux := NewMux(Deps{Log: log, Imports: idleUpkeep{}, Sweeper: idleUpkeep{}})
	payload, _ := json.Marshal(ImportRunPayload{MerchantID: uuid.New(), ImportID: uuid.New()})
	if err := mux.ProcessTask(context.Background(), asynq.NewTask(TypeImportRun, payload)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `level=INFO msg="task done" task_type=import:run`) {
		t.Fatalf("an import's end: %q", out.String())
	}
}
