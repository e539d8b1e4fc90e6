package worker

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
)

// TypeSweep is the periodic upkeep (scheduled): it re-enqueues work whose task was lost, expires
// holds and records expiry events.
const TypeSweep = "maintenance:sweep"

// Sweeper does the periodic upkeep: re-enqueues work whose task was lost, expires holds, records
// expiry events.
type Sweeper interface {
	Sweep(ctx context.Context) error
}

// NewSweepTask is the sweep the scheduler queues every interval: on the maintenance queue, one
// per interval however many workers schedule it, not retried (the next interval sweeps again),
// an interval an attempt.
func NewSweepTask(every time.Duration) Task {
	return Task{Type: TypeSweep, Queue: QueueMaintenance,
		Options: []asynq.Option{asynq.Unique(every - time.Second), asynq.MaxRetry(0), asynq.Timeout(every)}}
}

// runSweep is TypeSweep's handler.
func runSweep(s Sweeper) func(context.Context, none) error {
	return func(ctx context.Context, _ none) error { return s.Sweep(ctx) }
}
