package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

// TestAllocateFindsEarlierHandOutWithOneProbe: an allocation finds the recipient's earlier
// hand-out from the list (the reassign window, a redeem link) with a few reads however many
// hand-outs the list has, also on a pooled connection whose first hand-outs ran while the table
// was nearly empty (a new installation), for one recipient and for a group. A plan made then once
// read every allocation of the list on each hand-out (migrations/00020). The statements are the
// store's, on a connection of their own, so PostgreSQL caches their plans as a pooled one does.
func TestAllocateFindsEarlierHandOutWithOneProbe(t *testing.T) {
	t.Parallel()
	db := open(t)
	merchant := newMerchant(t, db)
	ctx := context.Background()
	conn, exec := ownConnection(t)
	list, campaign := uuid.New(), "redeem_link:"+uuid.NewString()
	exec(`INSERT INTO code_lists (merchant_id, id, name, next_seq) VALUES ($1, $2, 'lookup', 30001)`, merchant, list)
	exec(`INSERT INTO codes (merchant_id, list_id, seq, code, lookup)
		SELECT $1, $2, g, 'LK' || g, 'LK' || g FROM generate_series(1, 30000) g`, merchant, list)
	earlier := func(from, to int) {
		t.Helper()
		exec(`INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, recipient_email, campaign, channel, actor)
			SELECT $1, $2, g, 'email:earlier-' || g || '@example.com', 'earlier-' || g || '@example.com', $3, 'redeem_link', $3
			FROM generate_series($4::int, $5::int) g`, merchant, list, campaign, from, to)
	}
	// lookup answers the seq of each recipient's last hand-out (0: none) and the rows of
	// allocations it read, counted inside its transaction.
	lookup := func(link bool, emails ...string) (seqs []int64, read int64) {
		t.Helper()
		keys, campaigns := make([]string, len(emails)), make([]string, len(emails))
		for i, e := range emails {
			keys[i], campaigns[i] = "email:"+e, campaign
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		reads := func() int64 { return rowsRead(t, tx, "allocations") }
		before := reads()
		prior, err := store.ReadPriorHandOuts(ctx, tx, merchant, list, keys, campaigns, link)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			seqs = append(seqs, prior[core.RecipientCampaign{RecipientKey: k, Campaign: campaign}].Seq)
		}
		return seqs, reads() - before
	}

	// Statistics that do not know the list (as when it was made after the last ANALYZE): other
	// merchants' hand-outs from many lists, analysed. Planned on them, the list holds one
	// allocation, and reading it through the primary key's prefix looks as cheap as a probe.
	exec(`INSERT INTO allocations (merchant_id, list_id, seq, recipient_key, campaign, actor)
		SELECT gen_random_uuid(), gen_random_uuid(), 1, 'email:other-' || g || '@example.com', '', 'test'
		FROM generate_series(1, 5000) g`)
	exec(`ANALYZE allocations`)

	// A hundred hand-outs, then the connection's first look-ups: PostgreSQL plans them now.
	earlier(1, 100)
	for i := 1; i <= 10; i++ {
		lookup(true, fmt.Sprintf("earlier-%d@example.com", i))
		lookup(false, fmt.Sprintf("earlier-%d@example.com", i), "nobody@example.com")
	}
	earlier(101, 20000)

	for _, c := range []struct {
		name   string
		link   bool
		emails []string
		seqs   []int64
	}{
		{"nobody had one", true, []string{"new@example.com"}, []int64{0}},
		{"one of the 20,000", true, []string{"earlier-5@example.com"}, []int64{5}},
		{"one of the 20,000, in the reassign window", false, []string{"earlier-19999@example.com"}, []int64{19999}},
		{"a group", false, []string{"earlier-7@example.com", "new@example.com", "earlier-15000@example.com"}, []int64{7, 0, 15000}},
		{"a group from a link", true, []string{"earlier-8@example.com", "earlier-9@example.com"}, []int64{8, 9}},
	} {
		seqs, read := lookup(c.link, c.emails...)
		if !slices.Equal(seqs, c.seqs) {
			t.Errorf("%s: found %v, want %v", c.name, seqs, c.seqs)
		}
		if read == 0 && slices.ContainsFunc(c.seqs, func(s int64) bool { return s > 0 }) {
			t.Errorf("%s: no read of allocations counted, yet a hand-out was found", c.name)
		}
		if read > int64(10*len(c.emails)) {
			t.Errorf("%s: the look-up read %d allocations of the list's 20,000, want a few", c.name, read)
		}
	}
}

// TestAllocateLocksCodesWithOneProbeOnANewList: an allocation locks the codes at its drawn
// positions with one probe of the primary key each, also for a merchant and a list newer than
// the last ANALYZE. Planned on their values, such a list holds one code, and the probe looked no
// cheaper than a scan of another index's (merchant_id, …, list_id) range, which read the list's
// every code on each allocation (100,000 codes made TestTwoGatewaysAllocatingTogetherNeverRepeatACode
// run for over ten minutes).
func TestAllocateLocksCodesWithOneProbeOnANewList(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	conn, exec := ownConnection(t)
	// Statistics that know neither: other merchants' codes in many lists, analysed.
	other := newMerchant(t, db)
	exec(`INSERT INTO codes (merchant_id, list_id, seq, code, lookup)
		SELECT $1, gen_random_uuid(), 1, 'OT' || g, 'OT' || g FROM generate_series(1, 5000) g`, other)
	exec(`ANALYZE codes`)
	merchant, list := newMerchant(t, db), uuid.New()
	exec(`INSERT INTO code_lists (merchant_id, id, name, next_seq) VALUES ($1, $2, 'new', 20001)`, merchant, list)
	exec(`INSERT INTO codes (merchant_id, list_id, seq, code, lookup)
		SELECT $1, $2, g, 'NW' || g, 'NW' || g FROM generate_series(1, 20000) g`, merchant, list)

	for _, positions := range [][]int64{{17}, {18}, {19}, {20}, {21}, {22}, {5000, 5001, 19999}, {7, 8}, {9, 10}} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reads := func() int64 { return rowsRead(t, tx, "codes") }
		before := reads()
		codes, err := store.LockCodesAt(ctx, tx, merchant, list, positions)
		if err != nil {
			t.Fatal(err)
		}
		read := reads() - before
		_ = tx.Rollback(ctx)
		for _, p := range positions {
			if c := codes[p]; c == nil || c.Code != fmt.Sprint("NW", p) || c.State != core.StateAvailable {
				t.Errorf("position %d: %+v", p, c)
			}
		}
		if read == 0 || read > int64(10*len(positions)) {
			t.Errorf("locking %v read %d codes of the list's 20,000, want a few", positions, read)
		}
	}
}

// ownConnection opens a connection of the test's own (whose statements' plans PostgreSQL caches
// as a pooled connection's), and a function that runs a statement on it or fails the test.
func ownConnection(t *testing.T) (*pgx.Conn, func(sql string, args ...any)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn, func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
}

// rowsRead is how many rows of table tx has read so far, through indexes or scans.
func rowsRead(t *testing.T, tx pgx.Tx, table string) (n int64) {
	t.Helper()
	if err := tx.QueryRow(context.Background(), `SELECT coalesce(sum(coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)), 0)
		FROM pg_stat_xact_user_tables WHERE relid = $1::regclass`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
