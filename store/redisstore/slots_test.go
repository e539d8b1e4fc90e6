package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/internal/redisslot"
	"github.com/coupongate/coupongate/store/redisstore"
)

// TestEveryCommandStaysInOneSlot: every command the cursor and the failure limiter send (draws,
// ranges, moves back and forth, failures past the limit) names keys of one hash slot only, so it
// runs on a Redis Cluster; their keys carry the list or merchant in a hash tag, so all of a
// list's or a merchant's keys live on one node.
func TestEveryCommandStaysInOneSlot(t *testing.T) {
	ctx := context.Background()
	rec := &redisslot.Recorder{}
	rc := redis.NewClient(env.Redis.Options())
	defer rc.Close()
	rc.AddHook(rec)

	list, merchant := uuid.New(), uuid.New()
	cur := redisstore.NewCursor(rc)
	for range 20 {
		if _, err := cur.Next(ctx, list); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cur.Range(ctx, list, 100); err != nil {
		t.Fatal(err)
	}
	if err := cur.AtLeast(ctx, list, 500); err != nil {
		t.Fatal(err)
	}
	if err := cur.AtMost(ctx, list, 10); err != nil {
		t.Fatal(err)
	}
	lim := redisstore.NewFailureLimiter(rc, 3, time.Minute)
	for range 4 {
		if err := lim.Fail(ctx, merchant, "203.0.113.9"); err != nil {
			t.Fatal(err)
		}
	}
	if wait, err := lim.Blocked(ctx, merchant, "203.0.113.9"); err != nil || wait <= 0 {
		t.Fatalf("after 4 failures of 3 allowed: blocked %s, %v", wait, err)
	}

	got, err := rec.Check(ctx, env.Redis)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got.Findings {
		t.Errorf("keys in different slots (CROSSSLOT on a cluster): %s: %v", f.Unit, f.Slots)
	}
	if len(got.Keys) != 2 {
		t.Fatalf("keys seen: %v; want the list's cursor and the client's failure count", got.Keys)
	}
	for key, slot := range got.Keys {
		tag := list.String()
		if strings.HasPrefix(key, "cg:vfail:") {
			tag = merchant.String()
		}
		if !strings.Contains(key, "{"+tag+"}") || slot != redisslot.Slot(tag) {
			t.Errorf("key %s (slot %d) does not carry {%s} as its hash tag", key, slot, tag)
		}
	}
}
