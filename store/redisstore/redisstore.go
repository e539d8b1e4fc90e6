// Package redisstore implements the core ports that live in Redis: the per-list allocation cursor
// and the failed-validation rate limiter. Keys carry the list or merchant id in a hash tag
// ({...}), so each key lands whole on one node of a Redis cluster.
package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/core"
)

// cursorBlock is how many positions a process takes from Redis at a time. Positions a process
// takes but never uses (it stopped, or the list ran out) are holes that the allocation scan finds.
const cursorBlock = 16

// Cursor is the per-list allocation cursor (core.AllocationCursor) on Redis INCRBY. Each process
// takes positions in blocks of 16, so Redis sees one round trip per 16 allocations.
type Cursor struct {
	rdb    redis.UniversalClient
	mu     sync.Mutex
	blocks map[uuid.UUID]*block
}

// block is a process's current range of positions of one list. Its lock is held while it is
// refilled, so concurrent callers wait for one refill instead of each taking (and wasting) a block.
type block struct {
	mu        sync.Mutex
	next, end int64
}

var _ core.AllocationCursor = (*Cursor)(nil)

// NewCursor returns the cursor on rdb.
func NewCursor(rdb redis.UniversalClient) *Cursor {
	return &Cursor{rdb: rdb, blocks: map[uuid.UUID]*block{}}
}

func cursorKey(listID uuid.UUID) string { return "cg:cursor:{" + listID.String() + "}" }

func (c *Cursor) block(listID uuid.UUID) *block {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[listID]
	if b == nil {
		if len(c.blocks) > 10_000 {
			c.blocks = map[uuid.UUID]*block{}
		}
		b = &block{}
		c.blocks[listID] = b
	}
	return b
}

// Next implements core.AllocationCursor.
func (c *Cursor) Next(ctx context.Context, listID uuid.UUID) (int64, error) {
	b := c.block(listID)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next >= b.end {
		end, err := c.rdb.IncrBy(ctx, cursorKey(listID), cursorBlock).Result()
		if err != nil {
			return 0, err
		}
		b.next, b.end = end-cursorBlock+1, end+1
	}
	pos := b.next
	b.next++
	return pos, nil
}

// forget drops the process's block of a list after the shared cursor moved.
func (c *Cursor) forget(listID uuid.UUID) {
	b := c.block(listID)
	b.mu.Lock()
	b.next, b.end = 0, 0
	b.mu.Unlock()
}

// atLeast and atMost move the shared cursor and answer 1 when they did.
var atLeast = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0`)

var atMost = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0`)

// AtLeast implements core.AllocationCursor.
func (c *Cursor) AtLeast(ctx context.Context, listID uuid.UUID, pos int64) error {
	return c.move(ctx, atLeast, listID, pos)
}

// AtMost implements core.AllocationCursor.
func (c *Cursor) AtMost(ctx context.Context, listID uuid.UUID, pos int64) error {
	return c.move(ctx, atMost, listID, pos)
}

// move runs a cursor script and, when it moved the shared cursor, drops this process's block,
// whose positions now lie on the wrong side of it.
func (c *Cursor) move(ctx context.Context, script *redis.Script, listID uuid.UUID, pos int64) error {
	moved, err := script.Run(ctx, c.rdb, []string{cursorKey(listID)}, pos).Int()
	if err != nil {
		return err
	}
	if moved == 1 {
		c.forget(listID)
	}
	return nil
}

// FailureLimiter counts failed storefront validations per storefront key and client address in a
// fixed window (core.FailureLimiter). The count lives in Redis, shared by every gateway; a process
// remembers the clients it saw reach the limit, so checking a client costs no round trip. A client
// that reached the limit through other gateways is blocked here after its next failure here.
//
// While Redis does not answer, the process counts failures itself, with the same limit and window
// per client: a client then gets the limit at each gateway instead of once across them, never an
// unlimited number of guesses. The switch to local counts, and back, is logged once each.
type FailureLimiter struct {
	rdb     redis.UniversalClient
	limit   int64
	window  time.Duration
	log     *slog.Logger
	prefix  string       // before every key (QUEUE_PREFIX)
	local   atomic.Bool  // Redis failed the last count: failures are counted in this process
	retryAt atomic.Int64 // while local, Redis is tried again from this time (Unix nanoseconds)
	mu      sync.Mutex
	blocked map[string]time.Time    // merchant|client → blocked until
	counts  map[string]*localWindow // merchant|client → failures counted here while Redis is down
}

// localWindow is a client's fixed window counted in the process.
type localWindow struct {
	n   int64
	end time.Time
}

// NewFailureLimiter allows limit failures per window.
func NewFailureLimiter(rdb redis.UniversalClient, limit int, window time.Duration) *FailureLimiter {
	return &FailureLimiter{rdb: rdb, limit: int64(limit), window: window, log: slog.New(slog.DiscardHandler),
		blocked: map[string]time.Time{}, counts: map[string]*localWindow{}}
}

// WithLogger sets where the limiter says that it counts in the process because Redis is down, and
// that Redis is back.
func (f *FailureLimiter) WithLogger(log *slog.Logger) *FailureLimiter {
	f.log = log
	return f
}

// WithKeyPrefix puts prefix (the installation's QUEUE_PREFIX) before the limiter's keys, so that
// installations sharing one Redis count their clients apart (a sign-in's client address names
// no merchant).
func (f *FailureLimiter) WithKeyPrefix(prefix string) *FailureLimiter {
	f.prefix = prefix
	return f
}

func (f *FailureLimiter) key(merchantID uuid.UUID, client string) string {
	return fmt.Sprintf("%scg:vfail:{%s}:%s", f.prefix, merchantID, client)
}

// Blocked reports whether the client used up its failures, and for how long it stays blocked.
func (f *FailureLimiter) Blocked(_ context.Context, merchantID uuid.UUID, client string) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.blocked) == 0 {
		return 0, nil // the usual case: nobody to find, so no key to build
	}
	key := f.key(merchantID, client)
	until, ok := f.blocked[key]
	if !ok {
		return 0, nil
	}
	if wait := time.Until(until); wait > 0 {
		return wait, nil
	}
	delete(f.blocked, key)
	return 0, nil
}

// countFailure adds one failure and answers the count and the window's remaining milliseconds.
var countFailure = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`)

// Fail records one failed validation; at the limit the client is blocked for the rest of the
// window. When Redis does not answer, the failure is counted in the process instead.
func (f *FailureLimiter) Fail(ctx context.Context, merchantID uuid.UUID, client string) error {
	key := f.key(merchantID, client)
	if f.local.Load() && time.Now().UnixNano() < f.retryAt.Load() {
		// Redis failed a moment ago: do not make every failure wait for its dial and retries.
		f.failLocally(ctx, key, nil)
		return nil
	}
	res, err := countFailure.Run(ctx, f.rdb, []string{key}, f.window.Milliseconds()).Int64Slice()
	if err != nil {
		f.retryAt.Store(time.Now().Add(redisRetryEvery).UnixNano())
		f.failLocally(ctx, key, err)
		return nil
	}
	if f.local.Load() && f.local.CompareAndSwap(true, false) {
		f.log.InfoContext(ctx, "validation rate limiter: Redis answers again; failed validations are counted in Redis again")
		f.mu.Lock()
		f.counts = map[string]*localWindow{}
		f.mu.Unlock()
	}
	if len(res) != 2 || res[0] < f.limit {
		return nil
	}
	ttl := time.Duration(res[1]) * time.Millisecond
	if ttl <= 0 {
		ttl = f.window
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block(key, time.Now().Add(ttl))
	return nil
}

// redisRetryEvery is how often a limiter counting in the process tries Redis again.
const redisRetryEvery = 2 * time.Second

// failLocally counts a failure in the process's own fixed window for key, because Redis failed
// with err (nil: it failed a moment ago and was not asked).
func (f *FailureLimiter) failLocally(ctx context.Context, key string, err error) {
	if err != nil && ctx.Err() == nil && f.local.CompareAndSwap(false, true) {
		f.log.WarnContext(ctx, "validation rate limiter: Redis is not answering; failed validations are limited per process until it does",
			"err", err, "limit", f.limit, "window", f.window.String())
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.counts[key]
	if w == nil || !now.Before(w.end) {
		if len(f.counts) > 100_000 {
			for k, old := range f.counts {
				if !now.Before(old.end) {
					delete(f.counts, k)
				}
			}
		}
		w = &localWindow{end: now.Add(f.window)}
		f.counts[key] = w
	}
	w.n++
	if w.n >= f.limit {
		f.block(key, w.end)
	}
}

// block blocks key until the given time; f.mu is held.
func (f *FailureLimiter) block(key string, until time.Time) {
	if len(f.blocked) > 100_000 {
		now := time.Now()
		for k, t := range f.blocked {
			if t.Before(now) {
				delete(f.blocked, k)
			}
		}
	}
	f.blocked[key] = until
}
