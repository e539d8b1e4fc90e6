package groupcommit

import (
	"context"
	"sync/atomic"
)

// Call is one caller's request to a Batcher of calls (NewCalls) and, once answered, its answer.
// The caller waits for it with Do; serve answers it with Answer.
type Call[Q, A any] struct {
	// Ctx is the caller's context: its values serve the batch (a batch should not end with its
	// first caller's cancellation, so serve detaches it: context.WithoutCancel).
	Ctx context.Context
	Req Q

	ans  A
	err  error
	done chan struct{}
	gone atomic.Bool // the caller stopped waiting; a batch not yet started leaves the call out
}

// Answer gives the call its answer. It is called once per call.
func (c *Call[Q, A]) Answer(ans A, err error) {
	c.ans, c.err = ans, err
	close(c.done)
}

// answered reports whether the call has its answer.
func (c *Call[Q, A]) answered() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// NewCalls makes a Batcher of calls (New), which leaves out of a batch the calls whose callers
// stopped waiting before it started.
func NewCalls[K comparable, Q, A any](maxRunning, maxBatch int, serve func(K, []*Call[Q, A])) *Batcher[K, *Call[Q, A]] {
	return New(maxRunning, maxBatch, serve).SkipWhen(func(c *Call[Q, A]) bool { return c.gone.Load() })
}

// Do submits req under k to b and waits for its answer, or for ctx to end: a call taken by a
// batch before then is still answered (and the answer returned when it came first), a call no
// batch took yet is left out and answers ctx's error.
func Do[K comparable, Q, A any](ctx context.Context, b *Batcher[K, *Call[Q, A]], k K, req Q) (A, error) {
	c := &Call[Q, A]{Ctx: ctx, Req: req, done: make(chan struct{})}
	b.Submit(k, c, c.answered)
	select {
	case <-c.done:
		return c.ans, c.err
	case <-ctx.Done():
		c.gone.Store(true)
		if c.answered() {
			return c.ans, c.err
		}
		var zero A
		return zero, ctx.Err()
	}
}
