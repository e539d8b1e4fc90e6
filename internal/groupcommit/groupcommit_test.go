package groupcommit

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// request is one test request: its key and, once served, the batch it went in.
type request struct {
	key    int
	batch  atomic.Int64 // the batch's number, from 1
	gone   bool
	served chan struct{}
}

func (r *request) answered() bool {
	select {
	case <-r.served:
		return true
	default:
		return false
	}
}

// recorder serves batches, recording how many ran at once per key and their sizes.
type recorder struct {
	mu       sync.Mutex
	running  map[int]int
	most     map[int]int
	sizes    []int
	batches  atomic.Int64
	inServe  int           // requests in batches started and not yet answered
	hold     chan struct{} // when not nil, a batch waits for it before answering
	started  chan int      // when not nil, a batch sends its size on it when it starts
	sameKeys bool
}

func newRecorder() *recorder {
	return &recorder{running: map[int]int{}, most: map[int]int{}, sameKeys: true}
}

func (rec *recorder) serve(k int, batch []*request) {
	rec.mu.Lock()
	rec.running[k]++
	rec.most[k] = max(rec.most[k], rec.running[k])
	rec.sizes = append(rec.sizes, len(batch))
	rec.inServe += len(batch)
	for _, r := range batch {
		if r.key != k {
			rec.sameKeys = false
		}
	}
	rec.mu.Unlock()
	if rec.started != nil {
		rec.started <- len(batch)
	}
	if rec.hold != nil {
		<-rec.hold
	}
	n := rec.batches.Add(1)
	rec.mu.Lock()
	rec.running[k]--
	rec.inServe -= len(batch)
	rec.mu.Unlock()
	for _, r := range batch {
		if r.batch.Swap(n) != 0 {
			panic("a request served twice")
		}
		close(r.served)
	}
}

func TestALoneRequestIsServedInItsCallersGoroutine(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	b := New(2, 8, rec.serve)
	r := &request{key: 1, served: make(chan struct{})}
	b.Submit(1, r, r.answered)
	if !r.answered() {
		t.Fatal("Submit returned before serving a request that had no one to wait for")
	}
	if len(b.groups) != 0 {
		t.Fatalf("the idle key is still held: %d groups", len(b.groups))
	}
}

func TestConcurrentRequestsShareBatchesWithinTheLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		maxRunning, maxBatch int
		keys, perKey         int
	}{
		{"one key, one batch at a time", 1, 16, 1, 400},
		{"one key, two batches at a time", 2, 64, 1, 1000},
		{"several keys", 2, 8, 5, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			rec.hold = make(chan struct{})
			b := New(tt.maxRunning, tt.maxBatch, rec.serve)
			var reqs []*request
			var wg sync.WaitGroup
			for k := range tt.keys {
				for range tt.perKey {
					r := &request{key: k, served: make(chan struct{})}
					reqs = append(reqs, r)
					wg.Go(func() {
						b.Submit(k, r, r.answered)
						<-r.served
					})
				}
			}
			// The first batches wait for hold while the rest queue behind them; once every request
			// is queued or being served, everything is let through.
			for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
				b.mu.Lock()
				queued := 0
				for _, g := range b.groups {
					queued += len(g.pending)
				}
				b.mu.Unlock()
				rec.mu.Lock()
				queued += rec.inServe
				rec.mu.Unlock()
				if queued == len(reqs) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d requests queued or served after 10 s", queued, len(reqs))
				}
			}
			go func() {
				for {
					select {
					case rec.hold <- struct{}{}:
					case <-t.Context().Done():
						return
					}
				}
			}()
			wg.Wait()
			for _, r := range reqs {
				if r.batch.Load() == 0 {
					t.Fatal("a request was never served")
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !rec.sameKeys {
				t.Error("a batch mixed keys")
			}
			for k, most := range rec.most {
				if most > tt.maxRunning {
					t.Errorf("key %d: %d batches ran at once, limit %d", k, most, tt.maxRunning)
				}
			}
			total := 0
			for _, n := range rec.sizes {
				if n < 1 || n > tt.maxBatch {
					t.Errorf("a batch of %d, limit %d", n, tt.maxBatch)
				}
				total += n
			}
			if total != len(reqs) {
				t.Errorf("%d requests served in all, want %d", total, len(reqs))
			}
			if len(rec.sizes) >= len(reqs) {
				t.Errorf("%d batches for %d requests: none were shared", len(rec.sizes), len(reqs))
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.groups) != 0 {
				t.Errorf("%d keys still held after every request was served", len(b.groups))
			}
		})
	}
}

func TestSkippedRequestsAreLeftOut(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	rec.hold = make(chan struct{})
	rec.started = make(chan int, 2)
	b := New(1, 8, rec.serve).SkipWhen(func(r *request) bool { return r.gone })
	first := &request{key: 0, served: make(chan struct{})}
	go b.Submit(0, first, first.answered)
	// While the first batch runs, queue one request whose caller gives up and one that waits.
	<-rec.started
	gone := &request{key: 0, gone: true, served: make(chan struct{})}
	kept := &request{key: 0, served: make(chan struct{})}
	b.Submit(0, gone, gone.answered)
	b.Submit(0, kept, kept.answered)
	close(rec.hold)
	<-first.served
	<-kept.served
	if gone.answered() {
		t.Error("a request whose caller gave up was served")
	}
	if n := <-rec.started; n != 1 {
		t.Errorf("the second batch held %d requests, want the one still wanted", n)
	}
}
