package redisstore_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/store/redisstore"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

func TestCursorHandsOutDensePositionsUnderConcurrency(t *testing.T) {
	c := redisstore.NewCursor(env.Redis)
	other := redisstore.NewCursor(env.Redis) // a second process on the same list
	list := uuid.New()
	const n = 2000
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cur := c
			if i%2 == 1 {
				cur = other
			}
			pos, err := cur.Next(context.Background(), list)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[pos]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	for pos, k := range seen {
		if k != 1 {
			t.Fatalf("position %d drawn %d times", pos, k)
		}
	}
	// Each process wastes at most the rest of its current block: no position beyond n + 2 blocks.
	for pos := range seen {
		if pos < 1 || pos > n+32 {
			t.Fatalf("position %d drawn for %d draws: blocks were wasted", pos, n)
		}
	}
}

func TestCursorMovesForwardAndBack(t *testing.T) {
	ctx := context.Background()
	c := redisstore.NewCursor(env.Redis)
	list := uuid.New()
	if err := c.AtLeast(ctx, list, 100); err != nil {
		t.Fatal(err)
	}
	if pos, _ := c.Next(ctx, list); pos != 101 {
		t.Fatalf("after AtLeast(100): %d, want 101", pos)
	}
	if err := c.AtMost(ctx, list, 10); err != nil {
		t.Fatal(err)
	}
	if pos, _ := c.Next(ctx, list); pos != 11 {
		t.Fatalf("after AtMost(10): %d, want 11", pos)
	}
	if err := c.AtLeast(ctx, list, 5); err != nil { // behind: no effect
		t.Fatal(err)
	}
	if pos, _ := c.Next(ctx, list); pos != 12 {
		t.Fatalf("AtLeast behind the cursor moved it: %d", pos)
	}
}

func TestFailureLimiterBlocksAfterTheLimit(t *testing.T) {
	ctx := context.Background()
	f := redisstore.NewFailureLimiter(env.Redis, 3, time.Minute)
	m := uuid.New()
	for i := 0; i < 3; i++ {
		if wait, err := f.Blocked(ctx, m, "10.0.0.1"); err != nil || wait != 0 {
			t.Fatalf("blocked after %d failures: %v %v", i, wait, err)
		}
		if err := f.Fail(ctx, m, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	wait, err := f.Blocked(ctx, m, "10.0.0.1")
	if err != nil || wait <= 0 || wait > time.Minute {
		t.Fatalf("after the limit: %v %v", wait, err)
	}
	if wait, _ := f.Blocked(ctx, m, "10.0.0.2"); wait != 0 {
		t.Fatal("another client is blocked too")
	}
	// Another gateway process learns the block at the client's next failure there.
	g := redisstore.NewFailureLimiter(env.Redis, 3, time.Minute)
	if wait, _ := g.Blocked(ctx, m, "10.0.0.1"); wait != 0 {
		t.Fatal("a fresh process blocks a client it never saw")
	}
	if err := g.Fail(ctx, m, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if wait, _ := g.Blocked(ctx, m, "10.0.0.1"); wait <= 0 {
		t.Fatal("the second process does not block after the shared count passed the limit")
	}
	if wait, _ := f.Blocked(ctx, uuid.New(), "10.0.0.1"); wait != 0 {
		t.Fatal("another merchant's storefront is blocked too")
	}
}

// TestFailureLimitersOfTwoInstallationsCountApart: installations sharing one Redis (each its own
// QUEUE_PREFIX) count failures apart, also for a client address that names no merchant (a
// sign-in); the same prefix shares the count, as one installation's gateways do.
func TestFailureLimitersOfTwoInstallationsCountApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	suffix := uuid.NewString()[:8]
	staging := redisstore.NewFailureLimiter(env.Redis, 2, time.Minute).WithKeyPrefix("staging-" + suffix + "-")
	production := redisstore.NewFailureLimiter(env.Redis, 2, time.Minute).WithKeyPrefix("prod-" + suffix + "-")
	for range 2 {
		if err := staging.Fail(ctx, uuid.Nil, "10.9.9.9"); err != nil {
			t.Fatal(err)
		}
	}
	if wait, _ := staging.Blocked(ctx, uuid.Nil, "10.9.9.9"); wait <= 0 {
		t.Fatal("the installation that counted the failures does not block the client")
	}
	if err := production.Fail(ctx, uuid.Nil, "10.9.9.9"); err != nil {
		t.Fatal(err)
	}
	if wait, _ := production.Blocked(ctx, uuid.Nil, "10.9.9.9"); wait != 0 {
		t.Fatal("one failure in the other installation blocks the client: the counts are shared")
	}
	again := redisstore.NewFailureLimiter(env.Redis, 2, time.Minute).WithKeyPrefix("staging-" + suffix + "-")
	if err := again.Fail(ctx, uuid.Nil, "10.9.9.9"); err != nil {
		t.Fatal(err)
	}
	if wait, _ := again.Blocked(ctx, uuid.Nil, "10.9.9.9"); wait <= 0 {
		t.Fatal("another gateway of the same installation does not share its count")
	}
}

// records keeps the messages logged through it.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func TestFailureLimiterLimitsInTheProcessWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: every Redis call is refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	down := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { down.Close() })

	ctx := context.Background()
	log := &records{}
	const limit = 5
	f := redisstore.NewFailureLimiter(down, limit, time.Minute).WithLogger(slog.New(log))
	m := uuid.New()
	for i := 0; i < limit; i++ {
		if wait, err := f.Blocked(ctx, m, "10.0.0.1"); err != nil || wait != 0 {
			t.Fatalf("blocked after %d failures: %v %v", i, wait, err)
		}
		if err := f.Fail(ctx, m, "10.0.0.1"); err != nil {
			t.Fatalf("failure %d not counted: %v", i+1, err)
		}
	}
	wait, err := f.Blocked(ctx, m, "10.0.0.1")
	if err != nil || wait <= 0 || wait > time.Minute {
		t.Fatalf("guess %d with Redis down: blocked %v (%v), want blocked for the rest of the minute", limit+1, wait, err)
	}
	if wait, _ := f.Blocked(ctx, m, "10.0.0.2"); wait != 0 {
		t.Fatal("another client is blocked too")
	}
	if wait, _ := f.Blocked(ctx, uuid.New(), "10.0.0.1"); wait != 0 {
		t.Fatal("another merchant's storefront is blocked too")
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.msgs) != 1 || !strings.HasPrefix(log.msgs[0], "WARN ") {
		t.Fatalf("want the fall-back logged once, got %q", log.msgs)
	}
}
