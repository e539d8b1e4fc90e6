package core

import (
	"sync/atomic"
	"time"
)

// Clock is the time a core service reads: time.Now, unless a test set another with SetClock, as
// asynq's SetClock and river's archetype do. Services embed it, so a test moves any of them past
// an expiry, a grace period or a schedule without sleeping. The rules still decided at
// PostgreSQL's own now() (a list's start and end, and a code's issue window, in a bulk send's
// chunk statement, cg_deliver_chunk) are moved in tests by moving the rows' times instead.
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
