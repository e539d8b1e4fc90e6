package worker

// This file decides what a failed task's error means to asynq: how long before the task runs
// again (retryDelay).

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"
)

// retryDelay backs off exponentially, 2 s doubling up to 10 min; an error that knows when to come
// back (a RetryAfter method, e.g. a platform's 429) sets the delay itself.
func retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter()
	}
	d := 2 * time.Second << min(n, 9)
	if d > 10*time.Minute {
		d = 10 * time.Minute
	}
	return d
}
