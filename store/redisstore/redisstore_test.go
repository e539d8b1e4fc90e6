package redisstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

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
