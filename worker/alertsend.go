package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeAlertSend emails one stock alert.
const TypeAlertSend = "alert:send"

// AlertSendPayload names a stock event to email.
type AlertSendPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	EventID    int64     `json:"event_id"`
}

// NewAlertSendTask is the task that emails a stock event: on the default queue, one per event,
// retried 10 times, a minute an attempt.
func NewAlertSendTask(merchantID uuid.UUID, eventID int64) Task {
	return Task{Type: TypeAlertSend, Payload: AlertSendPayload{MerchantID: merchantID, EventID: eventID},
		ID: fmt.Sprintf("alert:%s:%d", merchantID, eventID), Queue: QueueDefault, Options: []asynq.Option{asynq.MaxRetry(10), asynq.Timeout(time.Minute)}}
}

// EnqueueAlert implements core.OutboundQueue.
func (q *Queue) EnqueueAlert(ctx context.Context, merchantID uuid.UUID, eventID int64) error {
	return q.enqueue(ctx, NewAlertSendTask(merchantID, eventID))
}

// runAlertSend is TypeAlertSend's handler; the task's last retry is the alert's last attempt.
func runAlertSend(e EventDispatcher) func(context.Context, AlertSendPayload) error {
	return func(ctx context.Context, p AlertSendPayload) error {
		return e.SendAlert(ctx, p.MerchantID, p.EventID, lastAttempt(ctx))
	}
}
