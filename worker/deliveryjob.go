package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeDeliveryJob reads a CSV of recipients into deliveries.
const TypeDeliveryJob = "delivery:job"

// DeliveryJobPayload names a delivery job.
type DeliveryJobPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	JobID      uuid.UUID `json:"job_id"`
}

// DeliveryJobRunner reads a CSV of recipients into deliveries, from its checkpoint.
type DeliveryJobRunner interface {
	Run(ctx context.Context, merchantID, jobID uuid.UUID) error
}

// NewDeliveryJobTask is the task that runs a delivery job: on the bulk queue, one per job,
// retried 25 times, six hours an attempt.
func NewDeliveryJobTask(merchantID, jobID uuid.UUID) Task {
	return Task{Type: TypeDeliveryJob, Payload: DeliveryJobPayload{MerchantID: merchantID, JobID: jobID},
		ID: "delivery-job:" + jobID.String(), Queue: QueueBulk, Options: []asynq.Option{asynq.MaxRetry(25), asynq.Timeout(6 * time.Hour)}}
}

// EnqueueDeliveryJob implements core.DeliveryJobQueue.
func (q *Queue) EnqueueDeliveryJob(ctx context.Context, merchantID, jobID uuid.UUID) error {
	return q.enqueue(ctx, NewDeliveryJobTask(merchantID, jobID))
}

// runDeliveryJob is TypeDeliveryJob's handler.
func runDeliveryJob(r DeliveryJobRunner) func(context.Context, DeliveryJobPayload) error {
	return func(ctx context.Context, p DeliveryJobPayload) error { return r.Run(ctx, p.MerchantID, p.JobID) }
}
