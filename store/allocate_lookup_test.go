package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestAllocateFindsEarlierHandOutWithOneProbe: a redeem-link hand-out (cg_allocate_once) finds the
// recipient's earlier hand-out from the link with a few reads however many hand-outs the list has,
// also on a pooled connection whose first hand-outs ran while the table was nearly empty (a new
// installation). It once kept the plan made then, which read every allocation of the list on
// each hand-out (migrations/00020).
func TestAllocateFindsEarlierHandOutWithOneProbe(t *testing.T) {
	t.Parallel()
	db := open(t)
	merchant := newMerchant(t, db)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	list, campaign := uuid.New(), "redeem_link:"+uuid.NewString()
	exec(`INSERT INTO code_lists (merchant_id, id, name, next_seq) VALUES ($1, $2, 'lookup', 30001)`, merchant, list)
	exec(`INSERT INTO codes (merchant_id, list_id, seq, code, lookup)
		SELECT $1, $2, g, 'LK' || g, 'LK' || g FROM generate_series(1, 30000) g`, merchant, list)
	earlier := func(from, to int) {
		t.Helper()
		exec(`INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, recipient_email, campaign, channel, actor)
			SELECT $1, $2, g, 'email:earlier-' || g || '@example.com', 'earlier-' || g || '@example.com', $3, 'redeem_link', $3
			FROM generate_series($4::int, $5::int) g`, merchant, list, campaign, from, to)
		exec(`UPDATE codes SET state = 'delivered' WHERE merchant_id = $1 AND list_id = $2 AND seq BETWEEN $3 AND $4`,
			merchant, list, from, to)
	}
	allocate := func(q pgx.Tx, pos int, email string) (seq int64, reused bool) {
		t.Helper()
		var outcome string
		if err := q.QueryRow(ctx, `SELECT outcome, seq, reused FROM cg_allocate_once($1, $2, $3, $4, NULL, $5, NULL, $6, 'redeem_link', $6, NULL)`,
			merchant, list, pos, "email:"+email, email, campaign).Scan(&outcome, &seq, &reused); err != nil || outcome != "ok" {
			t.Fatalf("allocate %s at %d: %s %v", email, pos, outcome, err)
		}
		return seq, reused
	}
	inTx := func(f func(tx pgx.Tx)) {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		f(tx)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A hundred hand-outs, then the connection's first calls: PL/pgSQL plans them now.
	earlier(1, 100)
	for i := 101; i <= 110; i++ {
		inTx(func(tx pgx.Tx) { allocate(tx, i, fmt.Sprintf("first-%d@example.com", i)) })
	}
	earlier(111, 20000)

	// Rows of allocations read by one hand-out, counted inside its transaction.
	read := func(tx pgx.Tx) int64 {
		t.Helper()
		var n int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)
			FROM pg_stat_xact_user_tables WHERE relid = 'allocations'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		email  string
		pos    int
		seq    int64
		reused bool
	}{
		{"new@example.com", 20001, 20001, false},    // nobody had one: a new hand-out
		{"new@example.com", 20002, 20001, true},     // asks again: the same code
		{"earlier-5@example.com", 20003, 5, true},   // one of the 20,000: the same code
		{"first-105@example.com", 20004, 105, true}, // asked on this connection before
	} {
		inTx(func(tx pgx.Tx) {
			before := read(tx)
			seq, reused := allocate(tx, c.pos, c.email)
			if seq != c.seq || reused != c.reused {
				t.Errorf("%s: code %d reused %v, want %d %v", c.email, seq, reused, c.seq, c.reused)
			}
			if n := read(tx) - before; n > 10 {
				t.Errorf("%s: the hand-out read %d allocations of the list's 20,000, want a few", c.email, n)
			}
		})
	}
}
