package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeBulkSend reads a CSV of recipients into deliveries. The type string keeps its old name:
// queued tasks carry it.
const TypeBulkSend = "delivery:job"

// BulkSendPayload names a bulk send.
type BulkSendPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	JobID      uuid.UUID `json:"job_id"`
}

// BulkSendRunner reads a CSV of recipients into deliveries, from its checkpoint.
type BulkSendRunner interface {
	Run(ctx context.Context, merchantID, jobID uuid.UUID) error
}

// NewBulkSendTask is the task that runs a bulk send: on the bulk queue, one per job,
// retried 25 times, six hours an attempt.
func NewBulkSendTask(merchantID, jobID uuid.UUID) Task {
	return Task{Type: TypeBulkSend, Payload: BulkSendPayload{MerchantID: merchantID, JobID: jobID},
		ID: "delivery-job:" + jobID.String(), Queue: QueueBulk, Options: []asynq.Option{asynq.MaxRetry(25), asynq.Timeout(6 * time.Hour)}}
}

// EnqueueBulkSend implements core.BulkSendQueue.
func (q *Queue) EnqueueBulkSend(ctx context.Context, merchantID, jobID uuid.UUID) error {
	return q.enqueue(ctx, NewBulkSendTask(merchantID, jobID))
}

// runBulkSend is TypeBulkSend's handler.
func runBulkSend(r BulkSendRunner) func(context.Context, BulkSendPayload) error {
	return func(ctx context.Context, p BulkSendPayload) error { return r.Run(ctx, p.MerchantID, p.JobID) }
}
