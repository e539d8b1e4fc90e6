package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypePushRun pushes a list's codes to a connected shop, resuming where it stopped.
const TypePushRun = "push:run"

// PushRunPayload names a push: a list and the connection it is pushed to.
type PushRunPayload struct {
	MerchantID   uuid.UUID `json:"merchant_id"`
	ListID       uuid.UUID `json:"list_id"`
	ConnectionID uuid.UUID `json:"connection_id"`
}

// PushRunner runs one push of a list's codes to a connection until every code is in the shop.
type PushRunner interface {
	RunPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error
}

// NewPushRunTask is the task that pushes a list to a connection: on the bulk queue, one per list
// and connection waiting or running at a time (the runner takes every code there is before it
// stops), retried 25 times, six hours an attempt.
func NewPushRunTask(merchantID, listID, connectionID uuid.UUID) Task {
	return Task{Type: TypePushRun, Payload: PushRunPayload{MerchantID: merchantID, ListID: listID, ConnectionID: connectionID},
		ID: "push:" + listID.String() + ":" + connectionID.String(), Queue: QueueBulk,
		Options: []asynq.Option{asynq.MaxRetry(25), asynq.Timeout(6 * time.Hour)}}
}

// EnqueuePush implements core.ConnectionQueue.
func (q *Queue) EnqueuePush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, NewPushRunTask(merchantID, listID, connectionID))
}

// runPush is TypePushRun's handler.
func runPush(r PushRunner) func(context.Context, PushRunPayload) error {
	return func(ctx context.Context, p PushRunPayload) error {
		return r.RunPush(ctx, p.MerchantID, p.ListID, p.ConnectionID)
	}
}
