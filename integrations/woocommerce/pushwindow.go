package woocommerce

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Bounds of a push's window: how many batch requests it keeps in flight to one store.
const (
	// PushWindowStart is the window a push starts with.
	PushWindowStart = 2
	// MaxPushWindow caps the window however fast the store answers: a WordPress site serves a
	// batch on one PHP worker, and a host has few of them.
	MaxPushWindow = 16
)

// What the window makes of an answer.
const (
	// queuedLow and queuedHigh bound how many requests the store should have waiting at its door
	// (TCP Vegas's alpha and beta): fewer, and the window grows by one; more, and it shrinks by
	// one. The estimate is the requests in flight less what the store serves at once, which is
	// the requests in flight times the base latency over the answer's. A few waiting keep the
	// store busy between one answer and the next request.
	queuedLow  = 2.0
	queuedHigh = 6.0
	// recentAnswers is how many OK answers make one sample of the base latency (the store's time
	// with nothing queued): their tenth percentile, where the fastest answer ever seen is one
	// lucky sample on a busy machine. The base is the lowest sample so far: a base taken only from
	// recent answers would rise with the queue it is meant to measure.
	recentAnswers = 64
	// slowAnswer halves the window: an answer this slow is near the client's timeout (30 s), past
	// which its coupons are made without the push hearing of it.
	slowAnswer = 10 * time.Second
	// firstBackoff and maxBackoff bound the pause after a 429 that says nothing of when to come
	// back (no Retry-After): one second, doubling while 429s follow one another.
	firstBackoff = time.Second
	maxBackoff   = time.Minute
)

// pushWindow decides how many batch requests a push has in flight: it grows while answers come
// back fast and OK, shrinks when they slow down (the store queues them), and halves on a 429,
// when nothing is sent until the answer's Retry-After has passed.
type pushWindow struct {
	now func() time.Time

	mu        sync.Mutex
	size      int             // requests allowed in flight
	peak      int             // the largest size reached, for the log
	inFlight  int             // requests holding a slot
	recent    []time.Duration // the OK answers' latencies since the last base sample
	base      time.Duration   // the lowest base sample so far (0: none yet)
	until     time.Time       // nothing is sent before (a 429's Retry-After)
	backoff   time.Duration   // the pause of the last 429 without Retry-After (0 after an OK answer)
	throttles int             // 429s answered
	wake      chan struct{}   // closed (and replaced) whenever a slot frees or the size changes
}

func newPushWindow(now func() time.Time) *pushWindow {
	if now == nil {
		now = time.Now
	}
	return &pushWindow{now: now, size: PushWindowStart, peak: PushWindowStart, wake: make(chan struct{})}
}

// acquire waits for a slot: fewer requests in flight than the window, and no 429 pause running.
func (w *pushWindow) acquire(ctx context.Context) error {
	for {
		w.mu.Lock()
		wait := w.delayLocked()
		if wait <= 0 && w.inFlight < w.size {
			w.inFlight++
			w.mu.Unlock()
			return nil
		}
		wake := w.wake
		w.mu.Unlock()
		var timer *time.Timer
		var fired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fired = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return ctx.Err()
		case <-wake:
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// release frees the slot acquire took.
func (w *pushWindow) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight--
	w.signalLocked()
}

// delay is how long sending must still wait for a 429's pause to end.
func (w *pushWindow) delay() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.delayLocked()
}

func (w *pushWindow) delayLocked() time.Duration { return w.until.Sub(w.now()) }

func (w *pushWindow) signalLocked() {
	close(w.wake)
	w.wake = make(chan struct{})
}

// answered adjusts the window to an OK answer that took latency, its request holding a slot.
func (w *pushWindow) answered(latency time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.backoff = 0
	if latency <= 0 {
		latency = time.Nanosecond
	}
	w.recent = append(w.recent, latency)
	if len(w.recent) == recentAnswers {
		w.base = w.baseLocked()
		w.recent = w.recent[:0]
	}
	if latency >= slowAnswer {
		w.size = max(1, w.size/2)
		w.signalLocked()
		return
	}
	// The store serves about inFlight × base/latency requests at once; the rest wait there.
	queued := float64(w.inFlight) * (1 - float64(w.baseLocked())/float64(latency))
	switch {
	case queued < queuedLow && w.size < MaxPushWindow && w.inFlight >= w.size:
		// Grow only when the window is full: a window that is not used says nothing.
		w.size++
		w.peak = max(w.peak, w.size)
	case queued > queuedHigh && w.size > 1:
		w.size--
	}
	w.signalLocked()
}

// baseLocked is the base latency: the lowest sample so far, the tenth percentile of the answers
// since counting too (all there is before the first sample is complete).
func (w *pushWindow) baseLocked() time.Duration {
	if len(w.recent) == 0 {
		return w.base
	}
	sorted := slices.Clone(w.recent)
	slices.Sort(sorted)
	p10 := sorted[len(sorted)/10]
	if w.base > 0 && w.base < p10 {
		return w.base
	}
	return p10
}

// throttled records a 429 whose Retry-After said retryAfter (0 when it had none) and returns the
// pause: the window halves (once per pause: the other requests of the same burst get their 429 too)
// and nothing is sent until the pause ends.
func (w *pushWindow) throttled(retryAfter time.Duration) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.throttles++
	if retryAfter <= 0 {
		w.backoff = min(max(2*w.backoff, firstBackoff), maxBackoff)
		retryAfter = w.backoff
	}
	now := w.now()
	if !w.until.After(now) {
		w.size = max(1, w.size/2)
	}
	if until := now.Add(retryAfter); until.After(w.until) {
		w.until = until
	}
	w.signalLocked()
	return retryAfter
}

// target is how many requests the window allows in flight now.
func (w *pushWindow) target() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// stats returns the window's size now, the largest it reached and the 429s it met.
func (w *pushWindow) stats() (size, peak, throttles int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size, w.peak, w.throttles
}
