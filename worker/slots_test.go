package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/internal/redisslot"
)

// recordedOpt gives asynq (and Queue) clients of one Redis database that record every command
// they send.
type recordedOpt struct {
	opts *redis.Options
	rec  *redisslot.Recorder
}

// MakeRedisClient implements asynq.RedisConnOpt.
func (o recordedOpt) MakeRedisClient() any {
	c := redis.NewClient(o.opts)
	c.AddHook(o.rec)
	return c
}

// handled counts the tasks the fake handlers ran, by type; the first run of each import fails
// once, so retries (the retry set, the forwarder) are exercised too.
type handled struct {
	mu     sync.Mutex
	n      map[string]int
	failed map[uuid.UUID]bool
}

func (h *handled) add(typ string) {
	h.mu.Lock()
	h.n[typ]++
	h.mu.Unlock()
}

func (h *handled) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, v := range h.n {
		n += v
	}
	return n
}

type slotImports struct{ h *handled }

func (s slotImports) Run(_ context.Context, _, importID uuid.UUID) error {
	s.h.mu.Lock()
	first := !s.h.failed[importID]
	s.h.failed[importID] = true
	s.h.mu.Unlock()
	if first {
		return errors.New("first run fails")
	}
	s.h.add(TypeImportRun)
	return nil
}

type slotBatches struct{ h *handled }

func (s slotBatches) Run(context.Context, uuid.UUID, uuid.UUID, int) error {
	s.h.add(TypeBatchGenerate)
	return nil
}

type slotSweeper struct{ h *handled }

func (s slotSweeper) Sweep(context.Context) error { s.h.add(TypeSweep); return nil }

type slotWebhooks struct{ h *handled }

func (s slotWebhooks) Run(context.Context, uuid.UUID) error { s.h.add(TypeWebhookBatch); return nil }

type slotSends struct{ h *handled }

func (s slotSends) Send(context.Context, uuid.UUID, uuid.UUID, bool) error {
	s.h.add(TypeDeliverySend)
	return nil
}

func (s slotSends) SendBatch(context.Context, uuid.UUID, []uuid.UUID, bool) error {
	s.h.add(TypeDeliverySendBatch)
	return nil
}

type slotEvents struct{ h *handled }

func (s slotEvents) Dispatch(context.Context) error { s.h.add(TypeDispatchEvents); return nil }
func (s slotEvents) SendAlert(context.Context, uuid.UUID, int64, bool) error {
	s.h.add(TypeAlertSend)
	return nil
}

type slotOutbound struct{ h *handled }

func (s slotOutbound) Deliver(context.Context, core.MessageRef, int) error {
	s.h.add(TypeWebhookSend)
	return nil
}

// TestEveryCommandStaysInOneSlot: everything the worker package does in Redis (every kind of
// task queued, queued twice, archived and queued again; the webhook marks; a worker serving the
// tasks with its scheduler, retrying one that failed; the inspector) is recorded, and every
// command, Lua script and transaction among them names keys of one hash slot only, so it runs on
// a Redis Cluster without CROSSSLOT errors. Every queue a task went to is one the worker serves,
// and the sharded queues do not all hash into one third of the slots (one node of the
// three-master cluster redis-cli --cluster create makes).
func TestEveryCommandStaysInOneSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, _, release, err := dbtest.Redis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rec := &redisslot.Recorder{}
	opt := recordedOpt{opts: admin.Options(), rec: rec}
	q := NewQueue(opt)
	defer q.Close()
	inspector := asynq.NewInspector(opt)
	defer inspector.Close()

	merchant, list, conn := uuid.New(), uuid.New(), uuid.New()
	deliveries := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	enqueues := []func() error{
		func() error { return q.EnqueueImport(ctx, merchant, list) },
		func() error { return q.EnqueueBatch(ctx, merchant, list, 3) },
		func() error { return q.EnqueueWebhookBatch(ctx, merchant) },
		func() error { return q.EnqueueSend(ctx, merchant, deliveries[0]) },
		func() error { return q.EnqueueSendBatch(ctx, merchant, "job:1:0", deliveries[1:]) },
		func() error { return q.EnqueueBulkSend(ctx, merchant, list) },
		func() error { return q.EnqueueResumeDeliveries(ctx, merchant, list) },
		func() error {
			return q.EnqueueWebhookMessage(ctx, core.MessageRef{MerchantID: merchant, EndpointID: conn, MessageID: "msg_1"})
		},
		func() error { return q.EnqueueAlert(ctx, merchant, 42) },
	}
	for round := range 2 { // the second round finds every task queued already
		for i, f := range enqueues {
			if err := f(); err != nil {
				t.Fatalf("round %d, enqueue %d: %v", round, i, err)
			}
		}
	}
	// A task archived after its last retry does not block its id.
	batchID := "batch:" + list.String() + ":3"
	if err := inspector.ArchiveTask(QueueBulk, batchID); err != nil {
		t.Fatal(err)
	}
	if err := q.EnqueueBatch(ctx, merchant, list, 3); err != nil {
		t.Fatal(err)
	}
	if err := q.LowerWebhookMark(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if err := q.RaiseWebhookMark(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if _, err := q.WebhookMarkRaised(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if err := q.LowerWebhookMark(ctx, merchant); err != nil {
		t.Fatal(err)
	}

	h := &handled{n: map[string]int{}, failed: map[uuid.UUID]bool{}}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Redis: opt, Concurrency: 4, Shutdown: 5 * time.Second,
			Imports: slotImports{h}, Batches: slotBatches{h}, Sweeper: slotSweeper{h}, WebhookBatches: slotWebhooks{h},
			Sends: slotSends{h}, Resumes: slotResumes{h}, Jobs: slotJobs{h}, Events: slotEvents{h}, Webhooks: slotOutbound{h},
			SweepEvery: 2 * time.Second, DispatchEvery: time.Second})
	}()
	// Nine tasks, the import's after its retry (2 s), and a sweep and a dispatch by the scheduler.
	deadline := time.Now().Add(60 * time.Second)
	for {
		h.mu.Lock()
		ok := h.n[TypeImportRun] == 1 && h.n[TypeSweep] > 0 && h.n[TypeDispatchEvents] > 0
		h.mu.Unlock()
		if ok && h.total() >= len(enqueues)+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks handled after 60 s: %v", h.n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := inspector.Queues(); err != nil {
		t.Fatal(err)
	}
	if _, err := inspector.Servers(); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	got, err := rec.Check(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got.Findings {
		t.Errorf("keys in different slots (CROSSSLOT on a cluster): %s: %v", f.Unit, f.Slots)
	}
	if got.Units < 100 {
		t.Fatalf("only %d keyed commands recorded: the hook did not see the worker's traffic", got.Units)
	}
	var ours []string
	for k := range got.Keys {
		if strings.HasPrefix(k, "cg:") {
			ours = append(ours, k)
		}
	}
	if want := webhookMarkKey(merchant); !slices.Contains(ours, want) {
		t.Errorf("our keys seen: %v; want %s among them", ours, want)
	}

	used, err := admin.SMembers(ctx, "asynq:queues").Result()
	if err != nil {
		t.Fatal(err)
	}
	served := Queues()
	for _, name := range used {
		if _, ok := served[name]; !ok {
			t.Errorf("tasks went to queue %q, which no worker serves (Queues: %v)", name, served)
		}
		if strings.ContainsAny(name, "{}") {
			t.Errorf("queue %q has a brace in its name: asynq's hash tag would break", name)
		}
	}
	thirds := map[int]bool{}
	for name := range served {
		if strings.HasPrefix(name, queueWebhooksPrefix) || strings.HasPrefix(name, queueSendsPrefix) {
			thirds[redisslot.Slot("asynq:{"+name+"}:pending")*3/redisslot.Slots] = true
		}
	}
	if len(thirds) < 2 {
		t.Errorf("the sharded queues all hash into one third of the slots: one node of three would hold them all")
	}
}

type slotResumes struct{ h *handled }

func (s slotResumes) Resume(context.Context, uuid.UUID, uuid.UUID) error {
	s.h.add(TypeDeliveryResume)
	return nil
}

type slotJobs struct{ h *handled }

func (s slotJobs) Run(context.Context, uuid.UUID, uuid.UUID) error {
	s.h.add(TypeBulkSend)
	return nil
}
