package worker

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
)

// TypeReconcileAll queues TypeReconcile for every active connection (scheduled).
const TypeReconcileAll = "connection:reconcile-all"

// NewReconcileAllTask is the reconciliation round the scheduler queues every interval: on the
// maintenance queue, one per interval, not retried (the next round comes), an interval an
// attempt.
func NewReconcileAllTask(every time.Duration) Task {
	return Task{Type: TypeReconcileAll, Queue: QueueMaintenance,
		Options: []asynq.Option{asynq.Unique(every - time.Second), asynq.MaxRetry(0), asynq.Timeout(every)}}
}

// runReconcileAll is TypeReconcileAll's handler.
func runReconcileAll(r Reconciler) func(context.Context, none) error {
	return func(ctx context.Context, _ none) error { return r.ReconcileAll(ctx) }
}
