package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeFinishConnect creates a newly authorized store's webhooks.
const TypeFinishConnect = "connection:finish"

// FinishConnectPayload names the newly authorized connection.
type FinishConnectPayload struct {
	MerchantID   uuid.UUID `json:"merchant_id"`
	ConnectionID uuid.UUID `json:"connection_id"`
}

// ConnectFinisher creates a newly authorized store's webhooks.
type ConnectFinisher interface {
	FinishConnect(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// NewFinishConnectTask is the task that finishes a connection: on the default queue, one per
// connection, retried 10 times, five minutes an attempt.
func NewFinishConnectTask(merchantID, connectionID uuid.UUID) Task {
	return Task{Type: TypeFinishConnect, Payload: FinishConnectPayload{MerchantID: merchantID, ConnectionID: connectionID},
		ID: "finish-connect:" + connectionID.String(), Queue: QueueDefault, Options: []asynq.Option{asynq.MaxRetry(10), asynq.Timeout(5 * time.Minute)}}
}

// EnqueueFinishConnect queues the creation of a newly authorized store's webhooks.
func (q *Queue) EnqueueFinishConnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, NewFinishConnectTask(merchantID, connectionID))
}

// runFinishConnect is TypeFinishConnect's handler.
func runFinishConnect(f ConnectFinisher) func(context.Context, FinishConnectPayload) error {
	return func(ctx context.Context, p FinishConnectPayload) error {
		return f.FinishConnect(ctx, p.MerchantID, p.ConnectionID)
	}
}
