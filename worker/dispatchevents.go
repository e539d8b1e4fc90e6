package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TypeDispatchEvents hands new events to webhook endpoints and alert addresses (scheduled).
const TypeDispatchEvents = "events:dispatch"

// EventDispatcher hands new events out (Dispatch) and emails stock alerts (SendAlert).
type EventDispatcher interface {
	Dispatch(ctx context.Context) error
	SendAlert(ctx context.Context, merchantID uuid.UUID, eventID int64, lastAttempt bool) error
}

// NewDispatchEventsTask is the dispatch the scheduler queues every interval: on the default
// queue, one per interval, not retried (the next interval dispatches again), a minute an
// attempt.
func NewDispatchEventsTask(every time.Duration) Task {
	return Task{Type: TypeDispatchEvents, Queue: QueueDefault,
		Options: []asynq.Option{asynq.Unique(every), asynq.MaxRetry(0), asynq.Timeout(time.Minute)}}
}

// runDispatchEvents is TypeDispatchEvents' handler.
func runDispatchEvents(e EventDispatcher) func(context.Context, none) error {
	return func(ctx context.Context, _ none) error { return e.Dispatch(ctx) }
}
