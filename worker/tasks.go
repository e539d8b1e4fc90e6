// Package worker holds Coupongate's background work: the asynq task types, their payloads (ids
// only), the handlers that run them, and the queue adapter that core enqueues through. Every task
// is safe to run twice: handlers resume from checkpoints kept in PostgreSQL, and task ids are
// derived from the object they work on.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/coupongate/coupongate/core"
)

// Task types, namespaced so asynq's ServeMux routes them by prefix.
const (
	TypeImportRun     = "import:run"
	TypeBatchGenerate = "batch:generate"
	TypeSweep         = "maintenance:sweep"
	// TypeShopifyWebhook processed one stored Shopify webhook delivery; older gateways still queue
	// it, and it runs the delivery's merchant's batch (TypeWebhookBatch).
	TypeShopifyWebhook = "shopify:webhook"
	// TypePushRun pushes a list's codes to a connected shop (resuming where it stopped).
	TypePushRun = "push:run"
	// TypeReconcile fetches one connection's recently updated orders.
	TypeReconcile = "connection:reconcile"
	// TypeReconcileAll queues TypeReconcile for every active connection (scheduled).
	TypeReconcileAll = "connection:reconcile-all"
	// TypeDisconnect removes a disconnected shop's webhooks and forgets its credentials.
	TypeDisconnect = "connection:disconnect"
	// TypeFinishConnect creates a newly authorized store's webhooks.
	TypeFinishConnect = "connection:finish"
	// TypeWooCommerceWebhook processed one stored WooCommerce delivery; as TypeShopifyWebhook.
	TypeWooCommerceWebhook = "woocommerce:webhook"
	// TypeDeliverySend renders and sends one delivery of a code.
	TypeDeliverySend = "delivery:send"
	// TypeDeliveryResume gives a list's waiting deliveries the codes that arrived.
	TypeDeliveryResume = "delivery:resume"
	// TypeDeliveryJob reads a CSV of recipients into deliveries.
	TypeDeliveryJob = "delivery:job"
	// TypeDispatchEvents hands new events to webhook endpoints and alert addresses (scheduled).
	TypeDispatchEvents = "events:dispatch"
	// TypeWebhookSend makes one attempt of a webhook message.
	TypeWebhookSend = "webhook:send"
	// TypeAlertSend emails one stock alert.
	TypeAlertSend = "alert:send"
)

// Queue names. The hot task types have sharded queues of their own (WebhookQueue, SendQueue);
// Queues gives every queue's weight.
const (
	QueueDefault     = "default"
	QueueBulk        = "bulk"
	QueueMaintenance = "maintenance"
)

// ImportPayload names the import to run.
type ImportPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	ImportID   uuid.UUID `json:"import_id"`
}

// BatchPayload names the batch to generate.
type BatchPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	ListID     uuid.UUID `json:"list_id"`
	Number     int       `json:"number"`
}

// WebhookPayload names a stored webhook delivery (of any platform): the payload of the
// one-delivery tasks older gateways queue.
type WebhookPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// PushPayload names a push: a list and the connection it is pushed to.
type PushPayload struct {
	MerchantID   uuid.UUID `json:"merchant_id"`
	ListID       uuid.UUID `json:"list_id"`
	ConnectionID uuid.UUID `json:"connection_id"`
}

// ConnectionPayload names a connection.
type ConnectionPayload struct {
	MerchantID   uuid.UUID `json:"merchant_id"`
	ConnectionID uuid.UUID `json:"connection_id"`
}

// Queue enqueues tasks on asynq; it implements core.TaskQueue. It also keeps the merchants'
// webhook marks (core.WebhookSignals), which say when a batch task must be queued.
type Queue struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	rdb       redis.UniversalClient
}

var _ core.TaskQueue = (*Queue)(nil)

// NewQueue returns a queue on the given Redis connection options.
func NewQueue(opt asynq.RedisConnOpt) *Queue {
	rdb, _ := opt.MakeRedisClient().(redis.UniversalClient)
	return &Queue{client: asynq.NewClient(opt), inspector: asynq.NewInspector(opt), rdb: rdb}
}

// Inspector is the queue's asynq inspector (the operators' queue metrics read it).
func (q *Queue) Inspector() *asynq.Inspector { return q.inspector }

// Close closes the Redis connections.
func (q *Queue) Close() error {
	_ = q.inspector.Close()
	if q.rdb != nil {
		_ = q.rdb.Close()
	}
	return q.client.Close()
}

// EnqueueImport implements core.TaskQueue.
func (q *Queue) EnqueueImport(ctx context.Context, merchantID, importID uuid.UUID) error {
	return q.enqueue(ctx, TypeImportRun, ImportPayload{MerchantID: merchantID, ImportID: importID},
		"import:"+importID.String(), QueueBulk, asynq.MaxRetry(25), asynq.Timeout(6*time.Hour))
}

// EnqueueBatch implements core.TaskQueue.
func (q *Queue) EnqueueBatch(ctx context.Context, merchantID, listID uuid.UUID, number int) error {
	return q.enqueue(ctx, TypeBatchGenerate, BatchPayload{MerchantID: merchantID, ListID: listID, Number: number},
		fmt.Sprintf("batch:%s:%d", listID, number), QueueBulk, asynq.MaxRetry(25), asynq.Timeout(6*time.Hour))
}

// EnqueuePush implements core.ConnectionQueue. One push task per list and connection waits or
// runs at a time; the runner takes every code there is before it stops.
func (q *Queue) EnqueuePush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, TypePushRun, PushPayload{MerchantID: merchantID, ListID: listID, ConnectionID: connectionID},
		"push:"+listID.String()+":"+connectionID.String(), QueueBulk, asynq.MaxRetry(25), asynq.Timeout(6*time.Hour))
}

// EnqueueReconcile implements core.ConnectionQueue.
func (q *Queue) EnqueueReconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, TypeReconcile, ConnectionPayload{MerchantID: merchantID, ConnectionID: connectionID},
		"reconcile:"+connectionID.String(), QueueMaintenance, asynq.MaxRetry(5), asynq.Timeout(30*time.Minute))
}

// EnqueueDisconnect implements core.ConnectionQueue.
func (q *Queue) EnqueueDisconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, TypeDisconnect, ConnectionPayload{MerchantID: merchantID, ConnectionID: connectionID},
		"disconnect:"+connectionID.String(), QueueDefault, asynq.MaxRetry(10), asynq.Timeout(5*time.Minute))
}

// DeliveryPayload names a delivery.
type DeliveryPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// ListPayload names a list.
type ListPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	ListID     uuid.UUID `json:"list_id"`
}

// DeliveryMaxRetry is how often a send is retried after passing failures (timeouts, 5xx) before
// the delivery is failed.
const DeliveryMaxRetry = 12

// EnqueueSend implements core.DeliveryQueue: one task per delivery.
func (q *Queue) EnqueueSend(ctx context.Context, merchantID, deliveryID uuid.UUID) error {
	id := "delivery:" + deliveryID.String()
	return q.enqueue(ctx, TypeDeliverySend, DeliveryPayload{MerchantID: merchantID, DeliveryID: deliveryID},
		id, SendQueue(id), asynq.MaxRetry(DeliveryMaxRetry), asynq.Timeout(2*time.Minute))
}

// JobPayload names a delivery job.
type JobPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	JobID      uuid.UUID `json:"job_id"`
}

// EnqueueDeliveryJob implements core.DeliveryJobQueue.
func (q *Queue) EnqueueDeliveryJob(ctx context.Context, merchantID, jobID uuid.UUID) error {
	return q.enqueue(ctx, TypeDeliveryJob, JobPayload{MerchantID: merchantID, JobID: jobID},
		"delivery-job:"+jobID.String(), QueueBulk, asynq.MaxRetry(25), asynq.Timeout(6*time.Hour))
}

// EnqueueResumeDeliveries implements core.DeliveryQueue.
func (q *Queue) EnqueueResumeDeliveries(ctx context.Context, merchantID, listID uuid.UUID) error {
	return q.enqueue(ctx, TypeDeliveryResume, ListPayload{MerchantID: merchantID, ListID: listID},
		"delivery-resume:"+listID.String(), QueueDefault, asynq.MaxRetry(10), asynq.Timeout(30*time.Minute))
}

// MessagePayload names a webhook message of an endpoint.
type MessagePayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	EndpointID uuid.UUID `json:"endpoint_id"`
	MessageID  string    `json:"message_id"`
}

// AlertPayload names a stock event to email.
type AlertPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	EventID    int64     `json:"event_id"`
}

// WebhookMaxRetry is how many retries a webhook message gets (the schedule in
// integrations/outbound stretches them over about a day).
const WebhookMaxRetry = 7

// EnqueueWebhookMessage implements core.OutboundQueue.
func (q *Queue) EnqueueWebhookMessage(ctx context.Context, m core.MessageRef) error {
	id := "webhook:" + m.EndpointID.String() + ":" + m.MessageID
	return q.enqueue(ctx, TypeWebhookSend, MessagePayload{MerchantID: m.MerchantID, EndpointID: m.EndpointID, MessageID: m.MessageID},
		id, SendQueue(id), asynq.MaxRetry(WebhookMaxRetry), asynq.Timeout(time.Minute))
}

// EnqueueAlert implements core.OutboundQueue.
func (q *Queue) EnqueueAlert(ctx context.Context, merchantID uuid.UUID, eventID int64) error {
	return q.enqueue(ctx, TypeAlertSend, AlertPayload{MerchantID: merchantID, EventID: eventID},
		fmt.Sprintf("alert:%s:%d", merchantID, eventID), QueueDefault, asynq.MaxRetry(10), asynq.Timeout(time.Minute))
}

// EnqueueFinishConnect queues the creation of a newly authorized store's webhooks.
func (q *Queue) EnqueueFinishConnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, TypeFinishConnect, ConnectionPayload{MerchantID: merchantID, ConnectionID: connectionID},
		"finish-connect:"+connectionID.String(), QueueDefault, asynq.MaxRetry(10), asynq.Timeout(5*time.Minute))
}

// enqueue sends a task with a deterministic id on queue. A task with that id already waiting or
// running counts as enqueued; one that asynq keeps only as a record (archived after its last
// retry, or completed) would block the id, so it is deleted and the task enqueued again.
func (q *Queue) enqueue(ctx context.Context, typ string, payload any, id, queue string, opts ...asynq.Option) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	opts = append(opts, asynq.TaskID(id), asynq.Queue(queue))
	task := newTask(ctx, typ, b)
	for attempt := 0; ; attempt++ {
		_, err = q.client.EnqueueContext(ctx, task, opts...)
		if errors.Is(err, asynq.ErrDuplicateTask) {
			return nil
		}
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
		info, ierr := q.inspector.GetTaskInfo(queue, id)
		if ierr != nil || attempt > 0 || (info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted) {
			return nil // waiting, scheduled, retrying or running: it will do the work
		}
		if derr := q.inspector.DeleteTask(queue, id); derr != nil && !errors.Is(derr, asynq.ErrTaskNotFound) {
			return fmt.Errorf("enqueue %s: delete the archived task: %w", id, derr)
		}
	}
}

// newTask is a task of typ with payload; when ctx carries a trace (tracing is on and a request
// or a task is being traced), the task's headers carry its W3C traceparent, so that the worker's
// span of the task continues the trace (traceTasks).
func newTask(ctx context.Context, typ string, payload []byte) *asynq.Task {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return asynq.NewTask(typ, payload)
	}
	h := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(h))
	return asynq.NewTaskWithHeaders(typ, payload, h)
}

// decode reads a payload; one that cannot be read will never work, so it is not retried.
func decode(t *asynq.Task, dst any) error {
	if err := json.Unmarshal(t.Payload(), dst); err != nil {
		return fmt.Errorf("decode %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return nil
}
