// Package groupcommit serves concurrent requests in batches without a timer: the group commit of
// databases, for any statement that costs less per item when items share it.
//
// A request that finds fewer than maxRunning batches of its key running serves at once, in its
// caller's goroutine, so a request alone waits for nothing. Requests that arrive while batches run
// queue, and the next batch to start takes them all (up to maxBatch). The busier the key, the bigger
// the batches; the wait a request adds is at most the batch running ahead of it.
//
// The caller that served keeps serving until its own request is answered, then hands whatever
// still waits to a goroutine of its own, so serving others never delays its own answer.
//
// Core's group commits of allocations (one statement per list) and of order events (one
// transaction per merchant), and the store's code look-ups (one statement for all), are its users.
package groupcommit

import "sync"

// Batcher gathers the requests of each key K and serves them in batches of T.
type Batcher[K comparable, T any] struct {
	maxRunning, maxBatch int
	serve                func(K, []T)
	skip                 func(T) bool

	mu     sync.Mutex
	groups map[K]*group[T]
}

// group is one key's waiting requests and how many batches of it are running. It lives while
// either is non-zero.
type group[T any] struct {
	pending []T
	running int
}

// New makes a Batcher that runs at most maxRunning batches of one key at once, each of at most
// maxBatch requests, with serve. Serve must answer every request it is given.
func New[K comparable, T any](maxRunning, maxBatch int, serve func(K, []T)) *Batcher[K, T] {
	return &Batcher[K, T]{maxRunning: maxRunning, maxBatch: maxBatch, serve: serve, groups: map[K]*group[T]{}}
}

// SkipWhen sets a test of requests no longer wanted (their callers gave up): a batch leaves them
// out when it takes them from the queue. It returns b, and is to be called before any Submit.
func (b *Batcher[K, T]) SkipWhen(skip func(T) bool) *Batcher[K, T] {
	b.skip = skip
	return b
}

// Submit queues item under k and, when a batch of k may start, serves batches in the caller's
// goroutine until answered reports item answered. It returns before the answer when others serve;
// the caller then waits for the answer in its own way.
func (b *Batcher[K, T]) Submit(k K, item T, answered func() bool) {
	b.mu.Lock()
	g := b.groups[k]
	if g == nil {
		g = &group[T]{}
		b.groups[k] = g
	}
	g.pending = append(g.pending, item)
	lead := g.running < b.maxRunning
	if lead {
		g.running++
	}
	b.mu.Unlock()
	if lead {
		b.run(k, g, answered)
	}
}

// Waiting reports how many requests of k wait for a batch to take them (those a batch has taken
// are not counted).
func (b *Batcher[K, T]) Waiting(k K) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if g := b.groups[k]; g != nil {
		return len(g.pending)
	}
	return 0
}

// run serves batches of k until answered says so (answered nil: until nothing waits), then leaves
// what still waits to a goroutine of its own, which takes the slot with it.
func (b *Batcher[K, T]) run(k K, g *group[T], answered func() bool) {
	for {
		batch := b.take(k, g)
		if batch == nil {
			return
		}
		b.serve(k, batch)
		if answered != nil && answered() {
			if b.handOff(k, g) {
				go b.run(k, g, nil)
			}
			return
		}
	}
}

// take removes the next batch from g's queue, or, when none waits, gives the slot back (and
// forgets the key once no batch of it runs).
func (b *Batcher[K, T]) take(k K, g *group[T]) []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []T
	n := 0
	for n < len(g.pending) && len(batch) < b.maxBatch {
		if item := g.pending[n]; b.skip == nil || !b.skip(item) {
			batch = append(batch, item)
		}
		n++
	}
	rest := copy(g.pending, g.pending[n:])
	clear(g.pending[rest:])
	g.pending = g.pending[:rest]
	if len(batch) > 0 {
		return batch
	}
	b.release(k, g)
	return nil
}

// handOff reports whether requests wait for the slot a caller is leaving; if none do, it gives the
// slot back.
func (b *Batcher[K, T]) handOff(k K, g *group[T]) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(g.pending) > 0 {
		return true
	}
	b.release(k, g)
	return false
}

// release gives a slot of g back; the caller holds b.mu.
func (b *Batcher[K, T]) release(k K, g *group[T]) {
	g.running--
	if g.running == 0 && len(g.pending) == 0 {
		delete(b.groups, k)
	}
}
