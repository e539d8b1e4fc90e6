package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeDeliverySendBatch sends a batch of a delivery job's deliveries: many messages per task,
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

// EnqueueSendBatch implements core.DeliveryJobQueue: one task per batch, named by key (a job's
// chunk and the batch's place in it), with the retries and timeout of single sends scaled to a
// batch.
func (q *Queue) EnqueueSendBatch(ctx context.Context, merchantID uuid.UUID, key string, deliveryIDs []uuid.UUID) error {
	id := "delivery-batch:" + key
	return q.enqueue(ctx, TypeDeliverySendBatch, DeliveryBatchPayload{MerchantID: merchantID, DeliveryIDs: deliveryIDs},
		id, SendQueue(id), asynq.MaxRetry(DeliveryMaxRetry), asynq.Timeout(30*time.Minute))
}

// handleSendBatches routes TypeDeliverySendBatch when the worker's sender sends batches.
func handleSendBatches(mux *asynq.ServeMux, d Deps) {
	b, ok := d.Sends.(DeliveryBatchSender)
	if !ok {
		return
	}
	mux.HandleFunc(TypeDeliverySendBatch, func(ctx context.Context, t *asynq.Task) error {
		var p DeliveryBatchPayload
		if err := decode(t, &p); err != nil {
			return err
		}
		retried, _ := asynq.GetRetryCount(ctx)
		max, _ := asynq.GetMaxRetry(ctx)
		return b.SendBatch(ctx, p.MerchantID, p.DeliveryIDs, retried >= max)
	})
}
