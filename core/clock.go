package core

import (
	"sync/atomic"
	"time"
)

// Clock is the time a core service reads: time.Now, unless a test set another with SetClock, as
// asynq's SetClock and river's archetype do. Services embed it, so a test moves any of them past
// an expiry, a grace period or a schedule without sleeping. Every rule of a hand-out or a use is
// decided in core at its service's clock, a bulk send's chunk's too (DecideChunk, at the chunk's
// CreatedAt).
type Clock struct {
	now atomic.Pointer[func() time.Time]
}

// Now is the service's time.
func (c *Clock) Now() time.Time {
	if f := c.now.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// SetClock replaces the service's clock; nil restores time.Now. It may be called while the
// service is in use.
func (c *Clock) SetClock(now func() time.Time) {
	if now == nil {
		c.now.Store(nil)
		return
	}
	c.now.Store(&now)
}
