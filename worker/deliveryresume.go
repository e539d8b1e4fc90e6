package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeDeliveryResume gives a list's waiting deliveries the codes that arrived.
const TypeDeliveryResume = "delivery:resume"

// DeliveryResumePayload names the list whose waiting deliveries are resumed.
type DeliveryResumePayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	ListID     uuid.UUID `json:"list_id"`
}

// DeliveryResumer gives a list's waiting deliveries the codes that arrived.
type DeliveryResumer interface {
	Resume(ctx context.Context, merchantID, listID uuid.UUID) error
}

// NewDeliveryResumeTask is the task that resumes a list's deliveries: on the default queue, one
// per list, retried 10 times, 30 minutes an attempt.
func NewDeliveryResumeTask(merchantID, listID uuid.UUID) Task {
	return Task{Type: TypeDeliveryResume, Payload: DeliveryResumePayload{MerchantID: merchantID, ListID: listID},
		ID: "delivery-resume:" + listID.String(), Queue: QueueDefault, Options: []asynq.Option{asynq.MaxRetry(10), asynq.Timeout(30 * time.Minute)}}
}

// EnqueueResumeDeliveries implements core.DeliveryQueue.
func (q *Queue) EnqueueResumeDeliveries(ctx context.Context, merchantID, listID uuid.UUID) error {
	return q.enqueue(ctx, NewDeliveryResumeTask(merchantID, listID))
}

// runDeliveryResume is TypeDeliveryResume's handler.
func runDeliveryResume(r DeliveryResumer) func(context.Context, DeliveryResumePayload) error {
	return func(ctx context.Context, p DeliveryResumePayload) error { return r.Resume(ctx, p.MerchantID, p.ListID) }
}
