package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/coupongate/coupongate/core"
)

// TypeWebhookSend makes one attempt of a webhook message.
const TypeWebhookSend = "webhook:send"

// WebhookSendPayload names a webhook message of an endpoint.
type WebhookSendPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	EndpointID uuid.UUID `json:"endpoint_id"`
	MessageID  string    `json:"message_id"`
}

// WebhookMaxRetry is how many retries a webhook message gets (the schedule in
// integrations/outbound stretches them over about a day).
const WebhookMaxRetry = 7

// WebhookDeliverer makes one attempt of a webhook message.
type WebhookDeliverer interface {
	Deliver(ctx context.Context, ref core.MessageRef, attempt int) error
}

// NewWebhookSendTask is the task that sends a webhook message: on its sends-N queue, one per
// endpoint and message, retried WebhookMaxRetry times, a minute an attempt.
func NewWebhookSendTask(m core.MessageRef) Task {
	id := "webhook:" + m.EndpointID.String() + ":" + m.MessageID
	return Task{Type: TypeWebhookSend, Payload: WebhookSendPayload{MerchantID: m.MerchantID, EndpointID: m.EndpointID, MessageID: m.MessageID},
		ID: id, Queue: SendQueue(id), Options: []asynq.Option{asynq.MaxRetry(WebhookMaxRetry), asynq.Timeout(time.Minute)}}
}

// EnqueueWebhookMessage implements core.OutboundQueue.
func (q *Queue) EnqueueWebhookMessage(ctx context.Context, m core.MessageRef) error {
	return q.enqueue(ctx, NewWebhookSendTask(m))
}

// runWebhookSend is TypeWebhookSend's handler; the attempt is the task's retry count.
func runWebhookSend(w WebhookDeliverer) func(context.Context, WebhookSendPayload) error {
	return func(ctx context.Context, p WebhookSendPayload) error {
		retried, _ := asynq.GetRetryCount(ctx)
		return w.Deliver(ctx, core.MessageRef{MerchantID: p.MerchantID, EndpointID: p.EndpointID, MessageID: p.MessageID}, retried)
	}
}
