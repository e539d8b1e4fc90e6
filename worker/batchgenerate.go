package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeBatchGenerate generates one batch of a list's codes, resuming from the batch's checkpoint.
const TypeBatchGenerate = "batch:generate"

// BatchGeneratePayload names the batch to generate: a list and the batch's number in it.
type BatchGeneratePayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	ListID     uuid.UUID `json:"list_id"`
	Number     int       `json:"number"`
}

// BatchRunner generates one batch to its end, resuming from its checkpoint.
type BatchRunner interface {
	Run(ctx context.Context, merchantID, listID uuid.UUID, number int) error
}

// NewBatchGenerateTask is the task that generates a batch: on the bulk queue, one per list and
// number, retried 25 times, six hours an attempt.
func NewBatchGenerateTask(merchantID, listID uuid.UUID, number int) Task {
	return Task{Type: TypeBatchGenerate, Payload: BatchGeneratePayload{MerchantID: merchantID, ListID: listID, Number: number},
		ID: fmt.Sprintf("batch:%s:%d", listID, number), Queue: QueueBulk, Options: []asynq.Option{asynq.MaxRetry(25), asynq.Timeout(6 * time.Hour)}}
}

// EnqueueBatch implements core.TaskQueue.
func (q *Queue) EnqueueBatch(ctx context.Context, merchantID, listID uuid.UUID, number int) error {
	return q.enqueue(ctx, NewBatchGenerateTask(merchantID, listID, number))
}

// runBatch is TypeBatchGenerate's handler.
func runBatch(r BatchRunner) func(context.Context, BatchGeneratePayload) error {
	return func(ctx context.Context, p BatchGeneratePayload) error {
		return r.Run(ctx, p.MerchantID, p.ListID, p.Number)
	}
}
