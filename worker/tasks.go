// Package worker holds Coupongate's background work. Each task type has a file of its own
// (importrun.go, deliverysend.go, …) with its type name, its payload (ids only), its
// constructor, the Queue method that enqueues it and its handler; NewMux registers every handler
// through handle, and Run serves them. Every task is safe to run twice: handlers resume from
// checkpoints kept in PostgreSQL, and task ids are derived from the object they work on.
package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Queue names. The hot task types have sharded queues of their own (WebhookQueue, SendQueue);
// Queues gives every queue's weight.
const (
	QueueDefault     = "default"
	QueueBulk        = "bulk"
	QueueMaintenance = "maintenance"
)

// Task is one of the package's tasks as its constructor describes it: the type, the payload (a
// struct that encodes to JSON), and how it is queued. ID names the task so that one waits or
// runs per object (empty for the scheduler's periodic tasks, which are unique by interval);
// Queue is the asynq queue; Options are its retries, timeout and uniqueness. Queue.enqueue needs
// ID and Queue apart from the options, to clear a finished record that holds the id.
type Task struct {
	Type    string
	Payload any
	ID      string
	Queue   string
	Options []asynq.Option
}

// Asynq is the asynq task: its JSON payload, every option, and, when ctx carries a trace
// (tracing is on and a request or a task is being traced), the trace's W3C traceparent in its
// headers, so that the worker's span of the task continues it (traceTasks).
func (t Task) Asynq(ctx context.Context) (*asynq.Task, error) {
	var b []byte
	if t.Payload != nil {
		var err error
		if b, err = json.Marshal(t.Payload); err != nil {
			return nil, fmt.Errorf("encode %s payload: %w", t.Type, err)
		}
	}
	opts := append([]asynq.Option{asynq.Queue(t.Queue)}, t.Options...)
	if t.ID != "" {
		opts = append(opts, asynq.TaskID(t.ID))
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return asynq.NewTask(t.Type, b, opts...), nil
	}
	h := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(h))
	return asynq.NewTaskWithHeaders(t.Type, b, h, opts...), nil
}

// none is the payload of the task types that carry none (the scheduler's periodic tasks):
// handle does not read it.
type none struct{}

// handle routes typ to run with the task's payload decoded into a P. A payload that does not
// decode will never work: the task fails with asynq.SkipRetry and is not retried, and logTasks
// logs it at warn with the decoding error. The context is asynq's, so the process logger adds
// the task id to every line run logs (TaskIDFrom).
func handle[P any](mux *asynq.ServeMux, typ string, run func(ctx context.Context, p P) error) {
	mux.HandleFunc(typ, func(ctx context.Context, t *asynq.Task) error {
		var p P
		if _, empty := any(p).(none); !empty {
			if err := decode(t, &p); err != nil {
				return err
			}
		}
		return run(ctx, p)
	})
}

// decode reads a payload; one that cannot be read will never work, so it is not retried.
func decode(t *asynq.Task, dst any) error {
	if err := json.Unmarshal(t.Payload(), dst); err != nil {
		return fmt.Errorf("decode %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return nil
}

// lastAttempt reports whether the running task has no retry left, so that a passing failure
// must now fail what it works on (a delivery, an alert).
func lastAttempt(ctx context.Context) bool {
	retried, _ := asynq.GetRetryCount(ctx)
	max, _ := asynq.GetMaxRetry(ctx)
	return retried >= max
}
