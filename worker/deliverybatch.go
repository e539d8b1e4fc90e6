package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeDeliverySendBatch sends a batch of a bulk send's deliveries: many messages per task,
// over SMTP connections kept open and pipelined, or with SMS and push requests in flight together.
const TypeDeliverySendBatch = "delivery:send-batch"

// DeliveryBatchPayload names the deliveries of a batch (at most a few hundred ids).
type DeliveryBatchPayload struct {
	MerchantID  uuid.UUID   `json:"merchant_id"`
	DeliveryIDs []uuid.UUID `json:"delivery_ids"`
}

// DeliveryBatchSender sends the queued deliveries among ids; lastAttempt says a passing failure
// now fails them (core.DeliverySender.SendBatch).
type DeliveryBatchSender interface {
	SendBatch(ctx context.Context, merchantID uuid.UUID, ids []uuid.UUID, lastAttempt bool) error
}

// NewDeliveryBatchTask is the task that sends a batch, named by key (a job's chunk and the
// batch's place in it): on its sends-N queue, with the retries of single sends
// (DeliveryMaxRetry) and 30 minutes an attempt.
func NewDeliveryBatchTask(merchantID uuid.UUID, key string, deliveryIDs []uuid.UUID) Task {
	id := "delivery-batch:" + key
	return Task{Type: TypeDeliverySendBatch, Payload: DeliveryBatchPayload{MerchantID: merchantID, DeliveryIDs: deliveryIDs},
		ID: id, Queue: SendQueue(id), Options: []asynq.Option{asynq.MaxRetry(DeliveryMaxRetry), asynq.Timeout(30 * time.Minute)}}
}

// EnqueueSendBatch implements core.BulkSendQueue: one task per batch.
func (q *Queue) EnqueueSendBatch(ctx context.Context, merchantID uuid.UUID, key string, deliveryIDs []uuid.UUID) error {
	return q.enqueue(ctx, NewDeliveryBatchTask(merchantID, key, deliveryIDs))
}

// runDeliveryBatch is TypeDeliverySendBatch's handler; the task's last retry is its deliveries'
// last attempt.
func runDeliveryBatch(b DeliveryBatchSender) func(context.Context, DeliveryBatchPayload) error {
	return func(ctx context.Context, p DeliveryBatchPayload) error {
		return b.SendBatch(ctx, p.MerchantID, p.DeliveryIDs, lastAttempt(ctx))
	}
}
