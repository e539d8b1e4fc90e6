package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeDisconnect removes a disconnected shop's webhooks and forgets its credentials.
const TypeDisconnect = "connection:disconnect"

// DisconnectPayload names the connection that was disconnected.
type DisconnectPayload struct {
	MerchantID   uuid.UUID `json:"merchant_id"`
	ConnectionID uuid.UUID `json:"connection_id"`
}

// Disconnector removes a disconnected connection's platform webhooks and credentials.
type Disconnector interface {
	Disconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// NewDisconnectTask is the task that cleans up after a disconnection: on the default queue, one
// per connection, retried 10 times, five minutes an attempt.
func NewDisconnectTask(merchantID, connectionID uuid.UUID) Task {
	return Task{Type: TypeDisconnect, Payload: DisconnectPayload{MerchantID: merchantID, ConnectionID: connectionID},
		ID: "disconnect:" + connectionID.String(), Queue: QueueDefault, Options: []asynq.Option{asynq.MaxRetry(10), asynq.Timeout(5 * time.Minute)}}
}

// EnqueueDisconnect implements core.ConnectionQueue.
func (q *Queue) EnqueueDisconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	return q.enqueue(ctx, NewDisconnectTask(merchantID, connectionID))
}

// runDisconnect is TypeDisconnect's handler.
func runDisconnect(d Disconnector) func(context.Context, DisconnectPayload) error {
	return func(ctx context.Context, p DisconnectPayload) error {
		return d.Disconnect(ctx, p.MerchantID, p.ConnectionID)
	}
}
