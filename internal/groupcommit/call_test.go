package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// waitFor spins until cond holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after 10 s for %s", what)
		}
	}
}

// TestDoAnswersEachCallItsOwnAnswer: calls queued behind a running batch go together in the next,
// each answered with what serve gave it; a caller who gives up before a batch takes its call gets
// its context's error, and no batch sees the call.
func TestDoAnswersEachCallItsOwnAnswer(t *testing.T) {
	t.Parallel()
	started, release := make(chan []int, 4), make(chan struct{})
	b := NewCalls(1, 8, func(_ string, batch []*Call[int, int]) {
		reqs := make([]int, len(batch))
		for i, c := range batch {
			reqs[i] = c.Req
		}
		started <- reqs
		<-release
		for _, c := range batch {
			if c.Req < 0 {
				c.Answer(0, errors.New("negative"))
				continue
			}
			c.Answer(c.Req*10, nil)
		}
	})
	type answer struct {
		n   int
		err error
	}
	call := func(ctx context.Context, req int) <-chan answer {
		out := make(chan answer, 1)
		go func() {
			n, err := Do(ctx, b, "k", req)
			out <- answer{n, err}
		}()
		return out
	}
	first := call(t.Context(), 1)
	if got := <-started; len(got) != 1 || got[0] != 1 {
		t.Fatalf("the first batch held %v, want [1]", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	left := call(ctx, 99)
	waitFor(t, "the call that will be abandoned to queue", func() bool { return b.Waiting("k") == 1 })
	cancel()
	if a := <-left; !errors.Is(a.err, context.Canceled) {
		t.Errorf("an abandoned call answered %d, %v; want context.Canceled", a.n, a.err)
	}
	second := call(t.Context(), 2)
	waitFor(t, "a second call to queue", func() bool { return b.Waiting("k") == 2 })
	third := call(t.Context(), -3)
	waitFor(t, "a third call to queue", func() bool { return b.Waiting("k") == 3 })
	release <- struct{}{}
	if a := <-first; a.n != 10 || a.err != nil {
		t.Errorf("the first call answered %d, %v; want 10", a.n, a.err)
	}
	got := <-started
	release <- struct{}{}
	if len(got) != 2 || got[0] != 2 || got[1] != -3 {
		t.Errorf("the second batch held %v, want [2 -3] (the abandoned call left out)", got)
	}
	if a := <-second; a.n != 20 || a.err != nil {
		t.Errorf("the second call answered %d, %v; want 20", a.n, a.err)
	}
	if a := <-third; a.err == nil {
		t.Errorf("the third call answered %d with no error; want serve's error", a.n)
	}
}
