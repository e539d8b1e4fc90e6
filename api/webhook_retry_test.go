package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/integrations/outbound"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/worker"
)

// TestLostWebhookRetryIsFoundWhenDue: an outgoing webhook message whose retry task is lost
// (Redis failed over and lost its queue) is sent again once its retry is a minute overdue, with
// the same webhook-id, and keeps its place in the retry schedule: the attempt after it waits the
// schedule's next step, not its first.
func TestLostWebhookRetryIsFoundWhenDue(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Lost Retry Shop")
	var mu sync.Mutex
	ids := map[string]int{} // attempts that reached the endpoint, by webhook-id
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids[r.Header.Get("webhook-id")]++
		mu.Unlock()
		http.Error(w, "down for now", http.StatusServiceUnavailable)
	}))
	t.Cleanup(receiver.Close)
	r := s.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": receiver.URL, "events": []string{"code.delivered"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}
	endpointID, _ := r.Map(t)["id"].(string)
	list := s.CreateList(t, m, map[string]any{"name": "Retries"})
	importByHand(t, s.Harness, m, list, "test", "LOST-1")
	if r := allocate(t, s.Harness, m, list, "ada@example.com", "c1"); r.Status != http.StatusCreated {
		t.Fatalf("allocate: %d %s", r.Status, r.Body)
	}

	ctx := context.Background()
	pool := s.App.DB.Pool()
	var messageID string
	var attempts int
	var due time.Time
	read := func() {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT id, attempts, next_attempt_at FROM webhook_messages WHERE merchant_id = $1 AND endpoint_id = $2`,
			m.ID, endpointID).Scan(&messageID, &attempts, &due); err != nil {
			t.Fatal(err)
		}
	}
	// The first attempt and its first retry (the schedule's first wait) fail; the next retry
	// waits the schedule's second step.
	apptest.Eventually(t, time.Minute, "two failed attempts", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT coalesce(max(attempts), 0) FROM webhook_messages WHERE merchant_id = $1`, m.ID).Scan(&n)
		return n >= 2
	})
	read()
	if wait := time.Until(due); attempts != 2 || wait < outbound.RetrySchedule[1]-time.Minute || wait > outbound.RetrySchedule[1] {
		t.Fatalf("after %d attempts the next is due in %s, want about %s", attempts, wait, outbound.RetrySchedule[1])
	}

	// Redis loses the waiting retry.
	task := worker.NewWebhookSendTask(core.MessageRef{MerchantID: uuid.MustParse(m.ID), EndpointID: uuid.MustParse(endpointID), MessageID: messageID})
	inspector := asynq.NewInspector(s.App.RedisOpt)
	defer inspector.Close()
	if err := inspector.DeleteTask(s.App.Queue.Name(task.Queue), task.ID); err != nil {
		t.Fatalf("delete the waiting retry: %v", err)
	}
	// Its time comes: the retry is overdue by more than the dispatcher's minute.
	if _, err := pool.Exec(ctx, `UPDATE webhook_messages SET next_attempt_at = now() - interval '2 minutes' WHERE merchant_id = $1 AND id = $2`,
		m.ID, messageID); err != nil {
		t.Fatal(err)
	}
	if err := s.App.Dispatcher.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, time.Minute, "the third attempt", func() bool {
		read()
		return attempts == 3
	})
	if wait := time.Until(due); wait < outbound.RetrySchedule[2]-time.Minute || wait > outbound.RetrySchedule[2] {
		t.Fatalf("after the attempt of a task queued again, the next is due in %s, want about %s (the schedule's third step)", wait, outbound.RetrySchedule[2])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 1 || ids[messageID] != 3 {
		t.Fatalf("attempts by webhook-id: %v, want 3 of %s", ids, messageID)
	}
}
