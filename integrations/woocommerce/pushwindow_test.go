package woocommerce

import (
	"context"
	"testing"
	"time"
)

// clock is a test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// fill takes n slots.
func fill(t *testing.T, w *pushWindow, n int) {
	t.Helper()
	for range n {
		if err := w.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPushWindowGrowsWhileAnswersAreFast: a full window whose answers take no longer than the
// store's base time grows by one an answer, up to MaxPushWindow; a window not full does not grow.
func TestPushWindowGrowsWhileAnswersAreFast(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	w := newPushWindow(c.now)
	w.answered(20 * time.Millisecond) // nothing in flight: says nothing of the window's use
	if w.target() != PushWindowStart {
		t.Fatalf("grew to %d without being used", w.target())
	}
	for range 3 * MaxPushWindow {
		size := w.target()
		fill(t, w, size-w.inFlight)
		w.answered(20 * time.Millisecond)
		w.release()
		if got := w.target(); got != min(size+1, MaxPushWindow) {
			t.Fatalf("after a fast answer with %d in flight: %d", size, got)
		}
	}
	if size, peak, _ := w.stats(); size != MaxPushWindow || peak != MaxPushWindow {
		t.Fatalf("size %d, peak %d, want the cap %d", size, peak, MaxPushWindow)
	}
}

// TestPushWindowShrinksWhenTheStoreQueues: answers that take longer as more are in flight (the
// store serves them one after the other) shrink the window to the store's pace plus a few queued.
func TestPushWindowShrinksWhenTheStoreQueues(t *testing.T) {
	t.Parallel()
	w := newPushWindow(nil)
	const serve = 10 * time.Millisecond // the store serves one request at a time
	for range recentAnswers {
		fill(t, w, 1)
		w.answered(serve)
		w.release()
	}
	w.size = MaxPushWindow
	fill(t, w, MaxPushWindow)
	for range 4 * MaxPushWindow {
		// Each answer waited behind the others in flight.
		w.answered(time.Duration(w.inFlight) * serve)
		w.release()
		fill(t, w, max(0, w.target()-w.inFlight))
	}
	// queued = inFlight × (1 − 1/inFlight) = inFlight − 1 stays within [queuedLow, queuedHigh].
	if got := w.target(); got < int(queuedLow)+1 || got > int(queuedHigh)+1 {
		t.Fatalf("a store serving one at a time left the window at %d, want %d to %d", got, int(queuedLow)+1, int(queuedHigh)+1)
	}
}

// TestPushWindowSlowAnswerHalves: an answer near the client's timeout halves the window.
func TestPushWindowSlowAnswerHalves(t *testing.T) {
	t.Parallel()
	w := newPushWindow(nil)
	w.size = 12
	fill(t, w, 1)
	w.answered(slowAnswer)
	if got := w.target(); got != 6 {
		t.Fatalf("after a slow answer: %d, want 6", got)
	}
}

// TestPushWindow429 : a 429 halves the window once for its pause (the other requests of the burst
// get their 429 too), nothing is sent until Retry-After has passed, and a 429 without Retry-After
// waits one second, doubling while 429s follow one another, until an OK answer.
func TestPushWindow429(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	w := newPushWindow(c.now)
	w.size = 8
	if got := w.throttled(3 * time.Second); got != 3*time.Second || w.target() != 4 || w.delay() != 3*time.Second {
		t.Fatalf("after a 429 with Retry-After 3: pause %v, window %d, delay %v", got, w.target(), w.delay())
	}
	c.t = c.t.Add(time.Second)
	w.throttled(time.Second) // the same burst: no second halving, the pause does not shrink
	if w.target() != 4 || w.delay() != 2*time.Second {
		t.Fatalf("a second 429 of the burst: window %d, delay %v", w.target(), w.delay())
	}
	c.t = c.t.Add(2 * time.Second)
	if w.delay() > 0 {
		t.Fatalf("still paused after Retry-After: %v", w.delay())
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if got := w.throttled(0); got != want {
			t.Fatalf("429 without Retry-After: pause %v, want %v", got, want)
		}
		c.t = c.t.Add(want)
	}
	for range 10 {
		w.throttled(0)
	}
	if _, _, throttles := w.stats(); w.backoff != maxBackoff || throttles != 15 {
		t.Fatalf("backoff %v (want the cap %v), %d 429s counted", w.backoff, maxBackoff, throttles)
	}
	fill(t, w, 0)
	w.answered(time.Millisecond)
	if got := w.throttled(0); got != firstBackoff {
		t.Fatalf("after an OK answer, a 429 without Retry-After pauses %v, want %v", got, firstBackoff)
	}
	if w.target() != 1 {
		t.Fatalf("window %d after 429s, want 1", w.target())
	}
}

// TestPushWindowAcquireWaitsOutThePause: acquire returns only after a 429's pause has passed,
// and when its context ends.
func TestPushWindowAcquireWaitsOutThePause(t *testing.T) {
	t.Parallel()
	w := newPushWindow(nil)
	const pause = 150 * time.Millisecond
	w.throttled(pause)
	start := time.Now()
	if err := w.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < pause-5*time.Millisecond {
		t.Fatalf("acquire returned %v into a pause of %v", waited, pause)
	}
	w.throttled(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.acquire(ctx); err == nil {
		t.Fatal("acquire during a pause returned without its context")
	}
}
