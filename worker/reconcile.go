package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeReconcile fetches one connection's recently updated orders.
const TypeReconcile = "connection:reconcile"

// ReconcilePayload names the connection to reconcile.
type ReconcilePayload struct {
	MerchantID   uuid.UUID `json:"merchant_id"`
	ConnectionID uuid.UUID `json:"connection_id"`
}

// Reconciler fetches a connection's recently updated orders; ReconcileAll queues that for every
// active connection.
type Reconciler interface {
	Reconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error
	ReconcileAll(ctx context.Context) error
}

// NewReconcileTask is the task that reconciles a connection: on the maintenance queue, one per
// connection, retried 5 times, 30 minutes an attempt.
func NewReconcileTask(merchantID, connectionID uuid.UUID) Task {
	return Task{Type: TypeReconcile, Payload: ReconcilePayload{MerchantID: merchantID, ConnectionID: connectionID},
		ID: "reconcile:" + connectionID.String(), Queue: QueueMaintenance, Options: []asynq.Option{asynq.MaxRetry(5), asynq.Timeout(30 * time.Minute)}}
}

// EnqueueReconcile implements core.ConnectionQueue.
func (q *Queue) EnqueueReconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, NewReconcileTask(merchantID, connectionID))
}

// runReconcile is TypeReconcile's handler.
func runReconcile(r Reconciler) func(context.Context, ReconcilePayload) error {
	return func(ctx context.Context, p ReconcilePayload) error {
		return r.Reconcile(ctx, p.MerchantID, p.ConnectionID)
	}
}
