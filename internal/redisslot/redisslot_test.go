package redisslot

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/internal/dbtest"
)

// TestSlot: the slots Redis Cluster's specification gives, and its hash tag rules.
func TestSlot(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		key  string
		want int
	}{
		{"123456789", 12739}, // the specification's CRC16 check value 0x31C3
		{"foo", 12182},
		{"bar", 5061},
		{"{foo}:anything", 12182},          // only the tag is hashed
		{"x{foo}y{bar}", 12182},            // the first tag counts
		{"foo{}{bar}", Slot("foo{}{bar}")}, // an empty first tag: the whole key
		{"foo{{bar}}zap", Slot("{bar")},    // from the first { to the next }
		{"asynq:{default}:pending", Slot("default")},
	} {
		if got := Slot(c.key); got != c.want {
			t.Errorf("Slot(%q) = %d, want %d", c.key, got, c.want)
		}
	}
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Errorf("foo{}{bar} hashes as bar; an empty first tag must not count")
	}
}

// TestCheckFindsCrossSlotCommands: Check reports a multi-key command, a script and a transaction
// whose keys lie in two slots, and passes the same with hash-tagged keys and single-key commands.
func TestCheckFindsCrossSlotCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, _, release, err := dbtest.Redis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	opts := *admin.Options()
	rec := &Recorder{}
	rc := redis.NewClient(&opts)
	defer rc.Close()
	rc.AddHook(rec)

	script := redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1]) return redis.call('SET', KEYS[2], ARGV[1])`)
	// Loaded beforehand, unrecorded: else the first run on a server without it records a failed
	// EVALSHA and then its EVAL, two findings for the one script.
	if err := script.Load(ctx, admin).Err(); err != nil {
		t.Fatal(err)
	}
	bad := []func() error{
		func() error { return rc.MSet(ctx, "cg:a", 1, "cg:b", 2).Err() },
		func() error { return script.Run(ctx, rc, []string{"cg:a", "cg:b"}, 1).Err() },
		func() error {
			_, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "cg:a")
				p.Incr(ctx, "cg:b")
				return nil
			})
			return err
		},
	}
	good := []func() error{
		func() error { return rc.MSet(ctx, "cg:{x}:a", 1, "cg:{x}:b", 2).Err() },
		func() error { return script.Run(ctx, rc, []string{"cg:{x}:a", "cg:{x}:b"}, 1).Err() },
		func() error {
			_, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "cg:{x}:a")
				p.Incr(ctx, "cg:{x}:b")
				return nil
			})
			return err
		},
		// A plain pipeline is not atomic: each command is on its own.
		func() error {
			_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "cg:a")
				p.Incr(ctx, "cg:b")
				return nil
			})
			return err
		},
		func() error { return rc.Ping(ctx).Err() },
	}
	for _, f := range append(bad, good...) {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rec.Check(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != len(bad) {
		for _, f := range got.Findings {
			t.Logf("finding: %s %v", f.Unit, f.Slots)
		}
		t.Fatalf("%d cross-slot findings, want %d (the MSET, the script and the transaction on cg:a and cg:b)", len(got.Findings), len(bad))
	}
	for _, f := range got.Findings {
		if f.Slots["cg:a"] == f.Slots["cg:b"] || len(f.Slots) != 2 {
			t.Errorf("finding %s: slots %v", f.Unit, f.Slots)
		}
	}
	if got.Keys["cg:{x}:a"] != Slot("x") {
		t.Errorf("keys seen: %v", got.Keys)
	}
}
