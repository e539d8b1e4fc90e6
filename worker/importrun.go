package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeImportRun reads an uploaded file of codes into its list, resuming from the import's
// checkpoint.
const TypeImportRun = "import:run"

// ImportRunPayload names the import to run.
type ImportRunPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	ImportID   uuid.UUID `json:"import_id"`
}

// ImportRunner runs one import to its end, resuming from its checkpoint.
type ImportRunner interface {
	Run(ctx context.Context, merchantID, importID uuid.UUID) error
}

// NewImportRunTask is the task that runs an import: on the bulk queue, one per import, retried
// 25 times, six hours an attempt.
func NewImportRunTask(merchantID, importID uuid.UUID) Task {
	return Task{Type: TypeImportRun, Payload: ImportRunPayload{MerchantID: merchantID, ImportID: importID},
		ID: "import:" + importID.String(), Queue: QueueBulk, Options: []asynq.Option{asynq.MaxRetry(25), asynq.Timeout(6 * time.Hour)}}
}

// EnqueueImport implements core.TaskQueue.
func (q *Queue) EnqueueImport(ctx context.Context, merchantID, importID uuid.UUID) error {
	return q.enqueue(ctx, NewImportRunTask(merchantID, importID))
}

// runImport is TypeImportRun's handler.
func runImport(r ImportRunner) func(context.Context, ImportRunPayload) error {
	return func(ctx context.Context, p ImportRunPayload) error { return r.Run(ctx, p.MerchantID, p.ImportID) }
}
