package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeDeliverySend renders and sends one delivery of a code.
const TypeDeliverySend = "delivery:send"

// DeliverySendPayload names the delivery to send.
type DeliverySendPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// DeliveryMaxRetry is how often a send is retried after passing failures (timeouts, 5xx) before
// the delivery is failed.
const DeliveryMaxRetry = 12

// DeliverySender sends one delivery; lastAttempt says a passing failure now fails it.
type DeliverySender interface {
	Send(ctx context.Context, merchantID, deliveryID uuid.UUID, lastAttempt bool) error
}

// NewDeliverySendTask is the task that sends a delivery: on its sends-N queue, one per delivery,
// retried DeliveryMaxRetry times, two minutes an attempt.
func NewDeliverySendTask(merchantID, deliveryID uuid.UUID) Task {
	id := "delivery:" + deliveryID.String()
	return Task{Type: TypeDeliverySend, Payload: DeliverySendPayload{MerchantID: merchantID, DeliveryID: deliveryID},
		ID: id, Queue: SendQueue(id), Options: []asynq.Option{asynq.MaxRetry(DeliveryMaxRetry), asynq.Timeout(2 * time.Minute)}}
}

// EnqueueSend implements core.DeliveryQueue: one task per delivery.
func (q *Queue) EnqueueSend(ctx context.Context, merchantID, deliveryID uuid.UUID) error {
	return q.enqueue(ctx, NewDeliverySendTask(merchantID, deliveryID))
}

// runDeliverySend is TypeDeliverySend's handler; the task's last retry is the delivery's last
// attempt.
func runDeliverySend(s DeliverySender) func(context.Context, DeliverySendPayload) error {
	return func(ctx context.Context, p DeliverySendPayload) error {
		return s.Send(ctx, p.MerchantID, p.DeliveryID, lastAttempt(ctx))
	}
}
