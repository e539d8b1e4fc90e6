package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/store"
)

// lookupWorld is two merchants whose lists share code names, for the look-up tests.
type lookupWorld struct {
	a, b                               uuid.UUID
	aList, aFolded, aOld, aArch, bList uuid.UUID
}

// newLookupWorld makes merchant a with a case-sensitive list of codes SHARED-1…SHARED-n, a
// case-insensitive list holding Fold-Me, an older list and a newer archived list that both hold
// TWICE (and the older one a removed GONE, the newer one a live GONE), and merchant b with one list
// holding SHARED-1 (delivered) and ONLY-B.
func newLookupWorld(t *testing.T, db *store.DB, n int) lookupWorld {
	t.Helper()
	ctx := context.Background()
	w := lookupWorld{a: newMerchant(t, db), b: newMerchant(t, db),
		aList: uuid.New(), aFolded: uuid.New(), aOld: uuid.New(), aArch: uuid.New(), bList: uuid.New()}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	lists := `INSERT INTO code_lists (merchant_id, id, name, case_insensitive, archived_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)`
	now := time.Now()
	exec(lists, w.a, w.aList, "shared", false, nil, now.Add(-time.Hour))
	exec(lists, w.a, w.aFolded, "folded", true, nil, now.Add(-time.Hour))
	exec(lists, w.a, w.aOld, "old", false, nil, now.Add(-48*time.Hour))
	exec(lists, w.a, w.aArch, "archived", false, now, now.Add(-time.Minute))
	exec(lists, w.b, w.bList, "b", false, nil, now)
	exec(`INSERT INTO codes (merchant_id, list_id, seq, code, lookup)
		SELECT $1, $2, g, 'SHARED-' || g, 'SHARED-' || g FROM generate_series(1, $3::int) g`, w.a, w.aList, n)
	code := `INSERT INTO codes (merchant_id, list_id, seq, code, lookup, state) VALUES ($1, $2, $3, $4, $5, $6)`
	exec(code, w.a, w.aFolded, 1, "Fold-Me", "fold-me", "available")
	exec(code, w.a, w.aOld, 1, "TWICE", "TWICE", "available")
	exec(code, w.a, w.aArch, 1, "TWICE", "TWICE", "available")
	exec(code, w.a, w.aOld, 2, "GONE", "GONE", "removed")
	exec(code, w.a, w.aArch, 2, "GONE", "GONE", "available")
	exec(code, w.b, w.bList, 1, "SHARED-1", "SHARED-1", "delivered")
	exec(code, w.b, w.bList, 2, "ONLY-B", "ONLY-B", "available")
	return w
}

// lookupCase is one FindCode and what it must answer: found in list at seq, or not found (list nil).
type lookupCase struct {
	name     string
	merchant uuid.UUID
	code     string
	list     uuid.UUID // uuid.Nil: not found
	seq      int64
	state    core.CodeState
}

func (w lookupWorld) cases(n int) []lookupCase {
	cs := []lookupCase{
		{"other merchant's code of the same name", w.b, "SHARED-1", w.bList, 1, core.StateDelivered},
		{"a code only the other merchant has", w.a, "ONLY-B", uuid.Nil, 0, ""},
		{"a code beyond the list", w.b, "SHARED-2", uuid.Nil, 0, ""},
		{"case-sensitive list, other case", w.a, "shared-3", uuid.Nil, 0, ""},
		{"case-insensitive list, other case", w.a, "FOLD-ME", w.aFolded, 1, core.StateAvailable},
		{"an active list before a newer archived one", w.a, "TWICE", w.aOld, 1, core.StateAvailable},
		{"a live code before a removed one", w.a, "GONE", w.aArch, 2, core.StateAvailable},
		{"an unknown code", w.a, "NO-SUCH-CODE", uuid.Nil, 0, ""},
	}
	for i := 1; i <= n; i++ {
		cs = append(cs, lookupCase{fmt.Sprintf("SHARED-%d", i), w.a, fmt.Sprintf("SHARED-%d", i), w.aList, int64(i), core.StateAvailable})
	}
	return cs
}

// check compares one answer with the case.
func (c lookupCase) check(f core.FoundCode, found bool, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("%s: %v", c.name, err)
	case c.list == uuid.Nil && found:
		return fmt.Errorf("%s: found %s in list %s, want not found", c.name, f.Code, f.List.Name)
	case c.list == uuid.Nil:
		return nil
	case !found:
		return fmt.Errorf("%s: not found", c.name)
	case f.List.ID != c.list || f.Seq != c.seq || f.State != c.state:
		return fmt.Errorf("%s: %s in list %s seq %d %s, want list %s seq %d %s", c.name, f.Code, f.List.ID, f.Seq, f.State, c.list, c.seq, c.state)
	}
	return nil
}

// TestFindCodeConcurrentLookUpsGetTheirOwnAnswers: hundreds of look-ups at once, which share
// statements, each get the answer FindCode gives alone: their own merchant's code (the other
// merchant's code of the same name never), the list's case rule, a live code in the newest active
// list before others, and not found for codes that do not exist.
func TestFindCodeConcurrentLookUpsGetTheirOwnAnswers(t *testing.T) {
	t.Parallel()
	db := open(t)
	w := newLookupWorld(t, db, 200)
	cases := w.cases(200)
	ctx := context.Background()
	// Alone first: the reference.
	for _, c := range cases[:8] {
		f, found, err := db.FindCode(ctx, c.merchant, c.code)
		if err := c.check(f, found, err); err != nil {
			t.Error("alone:", err)
		}
	}
	// Then all at once, three times each, in an order that mixes merchants.
	start := make(chan struct{})
	errs := make(chan error, 3*len(cases))
	var wg sync.WaitGroup
	for round := range 3 {
		for i := range cases {
			c := cases[(i*7+round)%len(cases)]
			wg.Go(func() {
				<-start
				f, found, err := db.FindCode(ctx, c.merchant, c.code)
				if err := c.check(f, found, err); err != nil {
					errs <- err
				}
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error("concurrent:", err)
	}
}

// TestFindCodeBatchOfEveryShape: one statement answers a batch of each size up to the largest,
// padded to its shape, each look-up in its place.
func TestFindCodeBatchOfEveryShape(t *testing.T) {
	t.Parallel()
	db := open(t)
	w := newLookupWorld(t, db, 70)
	cases := w.cases(70)
	for _, size := range []int{1, 2, 3, 5, 8, 13, 16, 31, 33, 64} {
		batch := make([]lookupCase, size)
		merchants, codes := make([]uuid.UUID, size), make([]string, size)
		for i := range batch {
			batch[i] = cases[(i*5+size)%len(cases)]
			merchants[i], codes[i] = batch[i].merchant, batch[i].code
		}
		found, ok, err := store.FindCodesInOneStatement(db, merchants, codes)
		if err != nil {
			t.Fatalf("batch of %d: %v", size, err)
		}
		for i, c := range batch {
			if err := c.check(found[i], ok[i], nil); err != nil {
				t.Errorf("batch of %d, look-up %d: %v", size, i, err)
			}
		}
	}
}

// TestFindCodeCallerGoesAway: a look-up whose request is cancelled answers at once with the
// cancellation, and the look-ups after it are answered as usual.
func TestFindCodeCallerGoesAway(t *testing.T) {
	t.Parallel()
	db := open(t)
	w := newLookupWorld(t, db, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := db.FindCode(ctx, w.a, "SHARED-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled look-up: %v, want context.Canceled", err)
	}
	c := w.cases(1)[len(w.cases(1))-1]
	f, found, err := db.FindCode(context.Background(), c.merchant, c.code)
	if err := c.check(f, found, err); err != nil {
		t.Fatal("after a cancelled look-up:", err)
	}
}

// TestFindCodePostgresGone: when PostgreSQL goes away (connections refused, those in the pool cut),
// a look-up fails with an error IsUnavailable recognises (the API's 503), never an answer, and
// look-ups succeed again once it is back.
func TestFindCodePostgresGone(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	pg := apptest.NewProxy(t, u.Host)
	ctx := context.Background()
	db, err := store.Open(ctx, pg.URL(t, env.DatabaseURL), 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := newLookupWorld(t, db, 1)
	c := w.cases(1)[len(w.cases(1))-1]
	if err := c.check(db.FindCode(ctx, c.merchant, c.code)); err != nil {
		t.Fatal("before the cut:", err)
	}
	pg.Cut()
	for range 3 {
		f, found, err := db.FindCode(ctx, c.merchant, c.code)
		if err == nil || !store.IsUnavailable(err) {
			t.Fatalf("FindCode with PostgreSQL gone: %q %v %v; want an unavailable error", f.Code, found, err)
		}
	}
	pg.Restore(t)
	if err := c.check(db.FindCode(ctx, c.merchant, c.code)); err != nil {
		t.Fatal("after PostgreSQL is back:", err)
	}
}
