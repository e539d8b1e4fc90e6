package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TestWebhookBatchIsQueuedOncePerMark: deliveries stored while a merchant's mark is up queue no
// further task (the task queued when it went up has not read yet); once a batch lowers it, the
// next delivery queues a task again.
func TestWebhookBatchIsQueuedOncePerMark(t *testing.T) {
	t.Parallel()
	opt, err := asynq.ParseRedisURI(env.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(opt)
	defer q.Close()
	inspector := asynq.NewInspector(opt)
	defer inspector.Close()
	ctx := context.Background()
	merchant := uuid.New()
	pending := func() int {
		t.Helper()
		tasks, err := inspector.ListPendingTasks(WebhookQueue(merchant), asynq.PageSize(1000))
		if err != nil {
			t.Fatal(err)
		}
		mine := 0
		for _, task := range tasks {
			if task.Type == TypeWebhookBatch && strings.Contains(task.ID, merchant.String()) {
				mine++
			}
		}
		return mine
	}
	for range 5 {
		if err := q.EnqueueWebhookBatch(ctx, merchant); err != nil {
			t.Fatal(err)
		}
	}
	if raised, err := q.WebhookMarkRaised(ctx, merchant); err != nil || !raised || pending() != 1 {
		t.Fatalf("after 5 deliveries: mark up %v (%v), %d tasks; want up and 1 task", raised, err, pending())
	}
	if err := q.LowerWebhookMark(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if err := q.EnqueueWebhookBatch(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if n := pending(); n != 2 {
		t.Fatalf("a delivery after the mark went down: %d tasks, want 2", n)
	}
	// A task that finds the lock taken raises the mark for the holder; it queues nothing.
	if err := q.LowerWebhookMark(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if err := q.RaiseWebhookMark(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if err := q.EnqueueWebhookBatch(ctx, merchant); err != nil {
		t.Fatal(err)
	}
	if n := pending(); n != 2 {
		t.Fatalf("a delivery while a task's mark is up: %d tasks, want 2", n)
	}
}

// runs records the merchants whose batches ran.
type runs struct{ merchants []uuid.UUID }

func (r *runs) Run(_ context.Context, merchantID uuid.UUID) error {
	r.merchants = append(r.merchants, merchantID)
	return nil
}

// TestOneDeliveryTasksRunTheirMerchantsBatch: the one-delivery tasks an older gateway queued run
// their merchant's batch, so each delivery is applied under the merchant's lock.
func TestOneDeliveryTasksRunTheirMerchantsBatch(t *testing.T) {
	t.Parallel()
	r := &runs{}
	mux := NewMux(Deps{Log: slog.New(slog.DiscardHandler), WebhookBatches: r})
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, task := range []*asynq.Task{
		asynq.NewTask(TypeWebhookBatch, mustJSON(t, WebhookBatchPayload{MerchantID: a})),
		asynq.NewTask(TypeShopifyWebhook, mustJSON(t, WebhookPayload{MerchantID: b, ReceiptID: uuid.New()})),
		asynq.NewTask(TypeWooCommerceWebhook, mustJSON(t, WebhookPayload{MerchantID: c, ReceiptID: uuid.New()})),
	} {
		if err := mux.ProcessTask(context.Background(), task); err != nil {
			t.Fatalf("%s: %v", task.Type(), err)
		}
	}
	if len(r.merchants) != 3 || r.merchants[0] != a || r.merchants[1] != b || r.merchants[2] != c {
		t.Fatalf("batches ran for %v, want %v", r.merchants, []uuid.UUID{a, b, c})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
