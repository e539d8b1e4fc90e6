package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/coupongate/coupongate/core"
)

// calls records every call the worker's collaborators get, as "Method arg arg …".
type calls struct {
	mu  sync.Mutex
	got []string
}

func (c *calls) add(format string, args ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, fmt.Sprintf(format, args...))
	return nil
}

func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// recorder is every collaborator of Deps at once.
type recorder struct{ c *calls }

type recImports struct{ c *calls }

func (r recImports) Run(_ context.Context, m, i uuid.UUID) error {
	return r.c.add("Import %s %s", m, i)
}

type recBatches struct{ c *calls }

func (r recBatches) Run(_ context.Context, m, l uuid.UUID, n int) error {
	return r.c.add("Batch %s %s %d", m, l, n)
}

type recJobs struct{ c *calls }

func (r recJobs) Run(_ context.Context, m, j uuid.UUID) error { return r.c.add("Job %s %s", m, j) }

type recWebhookBatches struct{ c *calls }

func (r recWebhookBatches) Run(_ context.Context, m uuid.UUID) error {
	return r.c.add("WebhookBatch %s", m)
}

func (r recorder) Sweep(context.Context) error { return r.c.add("Sweep") }
func (r recorder) RunPush(_ context.Context, m, l, c uuid.UUID) error {
	return r.c.add("Push %s %s %s", m, l, c)
}
func (r recorder) Reconcile(_ context.Context, m, c uuid.UUID) error {
	return r.c.add("Reconcile %s %s", m, c)
}
func (r recorder) ReconcileAll(context.Context) error { return r.c.add("ReconcileAll") }
func (r recorder) Disconnect(_ context.Context, m, c uuid.UUID) error {
	return r.c.add("Disconnect %s %s", m, c)
}
func (r recorder) FinishConnect(_ context.Context, m, c uuid.UUID) error {
	return r.c.add("FinishConnect %s %s", m, c)
}
func (r recorder) Send(_ context.Context, m, d uuid.UUID, last bool) error {
	return r.c.add("Send %s %s %v", m, d, last)
}
func (r recorder) SendBatch(_ context.Context, m uuid.UUID, ids []uuid.UUID, last bool) error {
	return r.c.add("SendBatch %s %v %v", m, ids, last)
}
func (r recorder) Resume(_ context.Context, m, l uuid.UUID) error {
	return r.c.add("Resume %s %s", m, l)
}
func (r recorder) Dispatch(context.Context) error { return r.c.add("Dispatch") }
func (r recorder) SendAlert(_ context.Context, m uuid.UUID, e int64, last bool) error {
	return r.c.add("Alert %s %d %v", m, e, last)
}
func (r recorder) Deliver(_ context.Context, ref core.MessageRef, attempt int) error {
	return r.c.add("Deliver %s %s %s %d", ref.MerchantID, ref.EndpointID, ref.MessageID, attempt)
}

// recordingMux is NewMux with every collaborator recording into c.
func recordingMux(c *calls) *asynq.ServeMux {
	r := recorder{c}
	return NewMux(Deps{Log: slog.New(slog.DiscardHandler), Imports: recImports{c}, Batches: recBatches{c}, Sweeper: r,
		WebhookBatches: recWebhookBatches{c}, Pushes: r, Reconciler: r, Disconnector: r, ConnectFinisher: r,
		Sends: r, Resumes: r, Jobs: recJobs{c}, Events: r, Webhooks: r})
}

// TestEveryTaskReachesItsHandler: the task each constructor makes, served by NewMux, calls its
// collaborator with the ids it was made with. Outside a server asynq reports no retries left,
// so the sends see their last attempt and the webhook message its first.
func TestEveryTaskReachesItsHandler(t *testing.T) {
	t.Parallel()
	m, a, b := uuid.New(), uuid.New(), uuid.New()
	ref := core.MessageRef{MerchantID: m, EndpointID: a, MessageID: "msg_1"}
	for _, tc := range []struct {
		task Task
		want string
	}{
		{NewImportRunTask(m, a), fmt.Sprintf("Import %s %s", m, a)},
		{NewBatchGenerateTask(m, a, 7), fmt.Sprintf("Batch %s %s 7", m, a)},
		{NewSweepTask(time.Minute), "Sweep"},
		{NewPushRunTask(m, a, b), fmt.Sprintf("Push %s %s %s", m, a, b)},
		{NewReconcileTask(m, a), fmt.Sprintf("Reconcile %s %s", m, a)},
		{NewReconcileAllTask(time.Minute), "ReconcileAll"},
		{NewDisconnectTask(m, a), fmt.Sprintf("Disconnect %s %s", m, a)},
		{NewFinishConnectTask(m, a), fmt.Sprintf("FinishConnect %s %s", m, a)},
		{NewDeliverySendTask(m, a), fmt.Sprintf("Send %s %s true", m, a)},
		{NewDeliveryBatchTask(m, "job:1:0", []uuid.UUID{a, b}), fmt.Sprintf("SendBatch %s %v true", m, []uuid.UUID{a, b})},
		{NewBulkSendTask(m, a), fmt.Sprintf("Job %s %s", m, a)},
		{NewDeliveryResumeTask(m, a), fmt.Sprintf("Resume %s %s", m, a)},
		{NewDispatchEventsTask(time.Second), "Dispatch"},
		{NewAlertSendTask(m, 42), fmt.Sprintf("Alert %s 42 true", m)},
		{NewWebhookSendTask(ref), fmt.Sprintf("Deliver %s %s msg_1 0", m, a)},
		{NewWebhookBatchTask(m, "token"), fmt.Sprintf("WebhookBatch %s", m)},
	} {
		t.Run(tc.task.Type, func(t *testing.T) {
			t.Parallel()
			c := &calls{}
			task, err := tc.task.Asynq(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := recordingMux(c).ProcessTask(context.Background(), task); err != nil {
				t.Fatal(err)
			}
			if got := c.list(); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("calls %q, want [%q]", got, tc.want)
			}
		})
	}
}

// TestUndecodablePayloadIsNotRetried: a task whose payload is not its JSON fails with
// asynq.SkipRetry, naming its type, and its collaborator is not called.
func TestUndecodablePayloadIsNotRetried(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{TypeImportRun, TypeBatchGenerate, TypePushRun, TypeReconcile, TypeDisconnect,
		TypeFinishConnect, TypeDeliverySend, TypeDeliverySendBatch, TypeBulkSend, TypeDeliveryResume, TypeAlertSend,
		TypeWebhookSend, TypeWebhookBatch, TypeShopifyWebhook, TypeWooCommerceWebhook} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			c := &calls{}
			err := recordingMux(c).ProcessTask(context.Background(), asynq.NewTask(typ, []byte("{not json")))
			if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "decode "+typ+" payload") {
				t.Fatalf("err %v, want SkipRetry naming %s", err, typ)
			}
			if got := c.list(); len(got) != 0 {
				t.Fatalf("calls %q after an undecodable payload", got)
			}
		})
	}
}
