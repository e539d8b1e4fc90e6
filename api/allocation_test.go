package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/internal/apptest"
)

func TestAllocationHandsOutEachCodeOnce(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Alloc Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Welcome", "expires_at": "2031-01-01T00:00:00Z"})
	seedCodes(t, h, m, list, "WELCOME", 3)

	r := allocate(t, h, m, list, "ann@example.com", "spring")
	var a struct {
		Code      string         `json:"code"`
		ListID    string         `json:"list_id"`
		Recipient map[string]any `json:"recipient"`
		Campaign  string         `json:"campaign"`
		ExpiresAt string         `json:"expires_at"`
		Reused    bool           `json:"reused"`
	}
	r.JSON(t, &a)
	if r.Status != http.StatusCreated || a.Code == "" || a.Reused || a.ListID != list || a.Campaign != "spring" ||
		a.Recipient["email"] != "ann@example.com" || a.ExpiresAt != "2031-01-01T00:00:00Z" {
		t.Fatalf("first allocation: %d %s", r.Status, r.Body)
	}
	// Same recipient and campaign within the window: the same code, 200, reused.
	again := allocate(t, h, m, list, "ANN@example.com ", "spring")
	var b struct {
		Code   string `json:"code"`
		Reused bool   `json:"reused"`
	}
	again.JSON(t, &b)
	if again.Status != http.StatusOK || b.Code != a.Code || !b.Reused {
		t.Fatalf("same recipient again: %d %s", again.Status, again.Body)
	}
	// Another campaign or recipient gets another code.
	other := allocate(t, h, m, list, "ann@example.com", "summer").Map(t)["code"]
	third := allocate(t, h, m, list, "bob@example.com", "spring").Map(t)["code"]
	if other == a.Code || third == a.Code || other == third {
		t.Fatalf("codes repeat: %v %v %v", a.Code, other, third)
	}
	c := counts(t, h, m, list)
	if c["available"] != 0 || c["delivered"] != 3 || c["total"] != 3 || c["status_exhausted"] != 1 {
		t.Fatalf("counts after three allocations: %v", c)
	}
	if r := allocate(t, h, m, list, "carl@example.com", "spring"); r.Status != http.StatusConflict || r.ErrorCode() != "list_exhausted" {
		t.Fatalf("exhausted list: %d %s", r.Status, r.Body)
	}
	// The delivered event is on the timeline, with actor, channel, recipient and campaign.
	var actor, channel, email, campaign string
	err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT a.actor, a.channel, a.recipient_email, a.campaign FROM allocations a
		JOIN codes c USING (merchant_id, list_id, seq) WHERE a.merchant_id = $1 AND c.code = $2`, m.ID, a.Code).Scan(&actor, &channel, &email, &campaign)
	if err != nil || actor == "" || channel != "api" || email != "ann@example.com" || campaign != "spring" {
		t.Fatalf("delivered record: %v %q %q %q %q", err, actor, channel, email, campaign)
	}
}

func TestAllocationRefusals(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Refusal Shop")
	other := h.NewMerchant(t, "Other Shop")
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	expired := h.CreateList(t, m, map[string]any{"name": "old"})
	seedCodes(t, h, m, expired, "OLD", 1)
	h.Admin(t, m, "PATCH", "/api/v1/lists/"+expired, map[string]any{"expires_at": past})
	notStarted := h.CreateList(t, m, map[string]any{"name": "soon", "starts_at": future})
	seedCodes(t, h, m, notStarted, "SOON", 1)
	archived := h.CreateList(t, m, map[string]any{"name": "archived"})
	seedCodes(t, h, m, archived, "ARCH", 1)
	h.Admin(t, m, "PATCH", "/api/v1/lists/"+archived, map[string]any{"archived": true})
	fine := h.CreateList(t, m, map[string]any{"name": "fine"})
	seedCodes(t, h, m, fine, "FINE", 1)

	tests := []struct {
		name   string
		who    apptest.Merchant
		list   string
		body   any
		status int
		code   string
	}{
		{"expired", m, expired, map[string]any{"recipient": map[string]any{"email": "a@x.io"}}, 409, "list_expired"},
		{"not started", m, notStarted, map[string]any{"recipient": map[string]any{"email": "a@x.io"}}, 409, "list_not_started"},
		{"archived", m, archived, map[string]any{"recipient": map[string]any{"email": "a@x.io"}}, 409, "list_archived"},
		{"no recipient", m, fine, map[string]any{"campaign": "x"}, 422, "invalid_field"},
		{"another merchant's list", other, fine, map[string]any{"recipient": map[string]any{"email": "a@x.io"}}, 404, "list_not_found"},
		{"not JSON", m, fine, "nope", 422, "invalid_field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Admin(t, tc.who, "POST", "/api/v1/lists/"+tc.list+"/allocations", tc.body)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
	if c := counts(t, h, m, fine); c["available"] != 1 {
		t.Fatalf("refusals consumed a code: %v", c)
	}
}

func TestAllocationHonoursPerCodeWindows(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Window Shop")
	list := h.CreateList(t, m, map[string]any{"name": "windows"})
	seedCodes(t, h, m, list, "W", 4)
	// W-1 may be handed out only later, W-2's issue window is over, W-3 can no longer be used.
	_, err := h.App.DB.Pool().Exec(context.Background(), `UPDATE codes SET
		issue_start = CASE code WHEN 'W-1' THEN now() + interval '1 day' END,
		issue_end = CASE code WHEN 'W-2' THEN now() - interval '1 day' END,
		available_till = CASE code WHEN 'W-3' THEN now() - interval '1 minute' END
		WHERE merchant_id = $1 AND list_id = $2`, m.ID, list)
	if err != nil {
		t.Fatal(err)
	}
	r := allocate(t, h, m, list, "a@x.io", "")
	if r.Status != 201 || r.Map(t)["code"] != "W-4" {
		t.Fatalf("only W-4 is issuable: %d %s", r.Status, r.Body)
	}
	if r := allocate(t, h, m, list, "b@x.io", ""); r.Status != 409 || r.ErrorCode() != "list_exhausted" {
		t.Fatalf("nothing else issuable: %d %s", r.Status, r.Body)
	}
}

func TestLastTenCodesUnderSixtyFourConcurrentRequests(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Race Shop")
	list := h.CreateList(t, m, map[string]any{"name": "scarce"})
	seedCodes(t, h, m, list, "LAST", 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	exhausted := 0
	start := make(chan struct{})
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			gt := apptest.InGoroutine(t)
			defer wg.Done()
			<-start
			r := allocate(gt, h, m, list, fmt.Sprintf("buyer%d@x.io", i), "drop")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Status == 201:
				got[r.Map(gt)["code"].(string)]++
			case r.Status == 409 && r.ErrorCode() == "list_exhausted":
				exhausted++
			default:
				t.Errorf("unexpected answer %d %s", r.Status, r.Body)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	if len(got) != 10 || exhausted != 54 {
		t.Fatalf("%d distinct codes and %d exhausted, want 10 and 54", len(got), exhausted)
	}
	for code, n := range got {
		if n != 1 {
			t.Fatalf("code %s handed out %d times", code, n)
		}
	}
	var rows int
	_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM allocations WHERE merchant_id = $1`, m.ID).Scan(&rows)
	if rows != 10 {
		t.Fatalf("%d allocation records, want 10", rows)
	}
}

func TestOneRecipientRacingGetsOneCode(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Same Recipient Shop")
	list := h.CreateList(t, m, map[string]any{"name": "one each"})
	seedCodes(t, h, m, list, "ONE", 50)
	const requests = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	created := 0
	sem := make(chan struct{}, 128)
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			gt := apptest.InGoroutine(t)
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := allocate(gt, h, m, list, "eve@example.com", "launch")
			mu.Lock()
			defer mu.Unlock()
			if r.Status != 201 && r.Status != 200 {
				t.Errorf("answer %d %s", r.Status, r.Body)
				return
			}
			if r.Status == 201 {
				created++
			}
			codes[r.Map(gt)["code"].(string)]++
		}()
	}
	wg.Wait()
	if len(codes) != 1 || created != 1 {
		t.Fatalf("%d distinct codes, %d created; want 1 and 1", len(codes), created)
	}
	if c := counts(t, h, m, list); c["delivered"] != 1 || c["available"] != 49 {
		t.Fatalf("counts: %v", c)
	}
}

func TestFixedListHandsOutItsCodeUpToMaxAssignments(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Fixed Shop")
	list := h.CreateList(t, m, map[string]any{"name": "flyer", "kind": "fixed", "fixed_code": "FLYER5", "max_assignments": 5})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, exhausted := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			gt := apptest.InGoroutine(t)
			defer wg.Done()
			r := allocate(gt, h, m, list, fmt.Sprintf("f%d@x.io", i), "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Status == 201 && r.Map(gt)["code"] == "FLYER5":
				ok++
			case r.Status == 409 && r.ErrorCode() == "list_exhausted":
				exhausted++
			default:
				t.Errorf("answer %d %s", r.Status, r.Body)
			}
		}(i)
	}
	wg.Wait()
	if ok != 5 || exhausted != 15 {
		t.Fatalf("%d handed out, %d refused; want 5 and 15", ok, exhausted)
	}
	got := h.Admin(t, m, "GET", "/api/v1/lists/"+list, nil).Map(t)
	if got["status"] != "exhausted" {
		t.Fatalf("fixed list status %v", got["status"])
	}
	if c := got["counts"].(map[string]any); c["total"] != 1.0 || c["delivered"] != 5.0 || c["available"] != 0.0 {
		t.Fatalf("fixed list counts %v: one code, handed out 5 times", c)
	}
}

func TestStockEventsOncePerCrossing(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Stock Shop")
	list := h.CreateList(t, m, map[string]any{"name": "stock", "low_stock_threshold": 3})
	seedCodes(t, h, m, list, "S", 5)
	events := func() map[string]int {
		rows, err := h.App.DB.Pool().Query(context.Background(), `SELECT type FROM domain_events WHERE merchant_id = $1 AND list_id = $2`, m.ID, list)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var typ string
			_ = rows.Scan(&typ)
			out[typ]++
		}
		return out
	}
	for i := 0; i < 2; i++ { // 5 → 3: not below 3 yet
		allocate(t, h, m, list, fmt.Sprintf("s%d@x.io", i), "")
	}
	if e := events(); len(e) != 0 {
		t.Fatalf("events before the crossing: %v", e)
	}
	allocate(t, h, m, list, "s2@x.io", "") // 2 left: below the threshold
	allocate(t, h, m, list, "s3@x.io", "") // 1 left: still low, no new event
	if e := events(); e["list.low_stock"] != 1 || e["list.exhausted"] != 0 {
		t.Fatalf("after falling below: %v", e)
	}
	allocate(t, h, m, list, "s4@x.io", "") // 0 left
	allocate(t, h, m, list, "s5@x.io", "") // refused: still one exhausted event
	if e := events(); e["list.low_stock"] != 1 || e["list.exhausted"] != 1 {
		t.Fatalf("after running out: %v", e)
	}
	// New codes make the list active again, and the next crossings are recorded anew.
	seedCodes(t, h, m, list, "T", 4)
	if c := counts(t, h, m, list); c["status_active"] != 1 || c["available"] != 4 {
		t.Fatalf("after restock: %v", c)
	}
	for i := 0; i < 4; i++ {
		if r := allocate(t, h, m, list, fmt.Sprintf("t%d@x.io", i), ""); r.Status != 201 {
			t.Fatalf("restocked allocation: %d %s", r.Status, r.Body)
		}
	}
	if e := events(); e["list.low_stock"] != 2 || e["list.exhausted"] != 2 {
		t.Fatalf("second round of crossings: %v", e)
	}
}

func TestAllocationSurvivesALostCursor(t *testing.T) {
	// not parallel: it flushes the whole Redis database (every harness's cursors and queues)
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Cursor Shop")
	list := h.CreateList(t, m, map[string]any{"name": "cursor"})
	seedCodes(t, h, m, list, "C", 30)
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		seen[allocate(t, h, m, list, fmt.Sprintf("c%d@x.io", i), "").Map(t)["code"].(string)] = true
	}
	// Redis loses the cursor (a restart without persistence): allocation goes on, never repeating.
	if err := env.Redis.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 30; i++ {
		r := allocate(t, h, m, list, fmt.Sprintf("c%d@x.io", i), "")
		code, _ := r.Map(t)["code"].(string)
		if r.Status != 201 || seen[code] {
			t.Fatalf("allocation %d after the reset: %d %s (repeat: %v)", i, r.Status, r.Body, seen[code])
		}
		seen[code] = true
	}
	if r := allocate(t, h, m, list, "late@x.io", ""); r.Status != 409 {
		t.Fatalf("31st allocation: %d", r.Status)
	}
}

func TestTwoGatewaysAllocatingTogetherNeverRepeatACode(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("allocates 100,000 codes")
	}
	const total = 100_000
	a := apptest.Start(t, env, apptest.Options{})
	b := apptest.Start(t, env, apptest.Options{Database: a.DatabaseURL}) // a second, independent gateway: own pool, own caches
	m := a.NewMerchant(t, "Two Gateways")
	list := a.CreateList(t, m, map[string]any{"name": "big drop"})
	seedCodes(t, a, m, list, "BIG", total)
	var wg sync.WaitGroup
	var failures sync.Map
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			gt := apptest.InGoroutine(t)
			defer wg.Done()
			h := a
			if g%2 == 1 {
				h = b
			}
			for i := g; i < total; i += 32 {
				r := h.Do(gt, apptest.Request{Method: "POST", Path: "/api/v1/lists/" + list + "/allocations", APIKey: m.APIKey,
					JSON: map[string]any{"recipient": map[string]any{"external_id": fmt.Sprint("r", i)}}})
				if r.Status != 201 {
					failures.Store(i, fmt.Sprintf("%d %s", r.Status, r.Body))
				}
			}
		}(g)
	}
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("allocation %v: %v", k, v); return false })
	var handed, distinct, delivered int
	err := a.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*), count(DISTINCT seq),
		(SELECT count(*) FROM codes WHERE merchant_id = $1 AND list_id = $2 AND state = 'delivered')
		FROM allocations WHERE merchant_id = $1 AND list_id = $2`, m.ID, list).Scan(&handed, &distinct, &delivered)
	if err != nil || handed != total || distinct != total || delivered != total {
		t.Fatalf("%d allocations of %d distinct codes, %d delivered (err %v); want %d each", handed, distinct, delivered, err, total)
	}
}

func TestSweeperRecordsExpiryAndMissedCrossingsOnce(t *testing.T) {
	// not parallel: its sweeper, clock moved to the list's end, records expiries and stock crossings of every merchant's lists
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Sweep Stock Shop")
	ctx := context.Background()
	events := func(list, typ string) int {
		var n int
		_ = h.App.DB.Pool().QueryRow(ctx, `SELECT count(*) FROM domain_events WHERE merchant_id = $1 AND list_id = $2 AND type = $3`, m.ID, list, typ).Scan(&n)
		return n
	}
	sweep := func() {
		if err := h.App.Sweeper.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ends := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	expiring := h.CreateList(t, m, map[string]any{"name": "expiring", "expires_at": ends.Format(time.RFC3339Nano)})
	h.App.Sweeper.SetClock(func() time.Time { return ends.Add(-time.Millisecond) })
	sweep()
	if n := events(expiring, "list.expired"); n != 0 {
		t.Fatalf("expired before its time: %d events", n)
	}
	h.App.Sweeper.SetClock(func() time.Time { return ends })
	sweep()
	sweep()
	if n := events(expiring, "list.expired"); n != 1 {
		t.Fatalf("%d list.expired events after two sweeps, want 1", n)
	}
	h.App.Sweeper.SetClock(nil)
	// A new expiry that passes again is a new crossing.
	h.Admin(t, m, "PATCH", "/api/v1/lists/"+expiring, map[string]any{"expires_at": time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)})
	sweep()
	if n := events(expiring, "list.expired"); n != 2 {
		t.Fatalf("%d list.expired events after the expiry changed, want 2", n)
	}

	// Raising the threshold above the stock is a crossing no allocation records: the sweep does.
	stock := h.CreateList(t, m, map[string]any{"name": "stock", "low_stock_threshold": 2})
	seedCodes(t, h, m, stock, "SW", 10)
	allocate(t, h, m, stock, "a@x.io", "")
	h.Admin(t, m, "PATCH", "/api/v1/lists/"+stock, map[string]any{"low_stock_threshold": 20})
	sweep()
	sweep()
	if n := events(stock, "list.low_stock"); n != 1 {
		t.Fatalf("%d list.low_stock events after two sweeps, want 1", n)
	}
}

func TestLoweringTheThresholdRearmsTheLowStockAlert(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Rearm Shop")
	list := h.CreateList(t, m, map[string]any{"name": "rearm", "low_stock_threshold": 5})
	seedCodes(t, h, m, list, "RA", 6)
	allocate(t, h, m, list, "a@x.io", "")
	allocate(t, h, m, list, "b@x.io", "") // 4 left: low
	h.Admin(t, m, "PATCH", "/api/v1/lists/"+list, map[string]any{"low_stock_threshold": 3})
	allocate(t, h, m, list, "c@x.io", "") // 3 left: not below 3
	allocate(t, h, m, list, "d@x.io", "") // 2 left: below 3, a new crossing
	var n int
	_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM domain_events WHERE merchant_id = $1 AND list_id = $2 AND type = 'list.low_stock'`, m.ID, list).Scan(&n)
	if n != 2 {
		t.Fatalf("%d low-stock events, want 2 (one per crossing)", n)
	}
}

// TestTwoGatewaysRacingForTheLastCodes: 64 clients on each of two gateways, each asking until the
// list says it is exhausted, share the list's last 5,000 codes: every code once, every other answer
// list_exhausted, the counts exact and the crossings recorded once.
func TestTwoGatewaysRacingForTheLastCodes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("allocates 5,000 codes")
	}
	const last, clients = 5_000, 64
	a := apptest.Start(t, env, apptest.Options{})
	b := apptest.Start(t, env, apptest.Options{Database: a.DatabaseURL}) // a second gateway: its own pool, cursor blocks and batches
	m := a.NewMerchant(t, "Last Codes")
	list := a.CreateList(t, m, map[string]any{"name": "last drop", "low_stock_threshold": 100})
	seedCodes(t, a, m, list, "END", last)
	var mu sync.Mutex
	got := map[string]int{}
	exhausted := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 2*clients; g++ {
		wg.Add(1)
		go func(g int) {
			gt := apptest.InGoroutine(t)
			defer wg.Done()
			h := a
			if g%2 == 1 {
				h = b
			}
			<-start
			for i := 0; ; i++ {
				r := allocate(gt, h, m, list, fmt.Sprintf("c%d-%d@x.io", g, i), "final")
				mu.Lock()
				switch {
				case r.Status == 201:
					got[r.Map(gt)["code"].(string)]++
				case r.Status == 409 && r.ErrorCode() == "list_exhausted":
					exhausted++
				default:
					gt.Errorf("unexpected answer %d %s", r.Status, r.Body)
				}
				mu.Unlock()
				if r.Status != 201 {
					return
				}
			}
		}(g)
	}
	close(start)
	wg.Wait()
	if len(got) != last || exhausted != 2*clients {
		t.Fatalf("%d distinct codes and %d exhausted answers, want %d and %d", len(got), exhausted, last, 2*clients)
	}
	for code, n := range got {
		if n != 1 {
			t.Fatalf("code %s handed out %d times", code, n)
		}
	}
	if c := counts(t, a, m, list); c["delivered"] != last || c["available"] != 0 {
		t.Fatalf("counts after the last code: %v", c)
	}
	var rows, lows, outs int
	ctx := context.Background()
	_ = a.App.DB.Pool().QueryRow(ctx, `SELECT count(*) FROM allocations WHERE merchant_id = $1 AND list_id = $2`, m.ID, list).Scan(&rows)
	_ = a.App.DB.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE type = 'list.low_stock'), count(*) FILTER (WHERE type = 'list.exhausted')
		FROM domain_events WHERE merchant_id = $1 AND list_id = $2`, m.ID, list).Scan(&lows, &outs)
	if rows != last || lows != 1 || outs != 1 {
		t.Fatalf("%d allocation records, %d low-stock and %d exhausted events; want %d, 1 and 1", rows, lows, outs, last)
	}
}

// TestOneRecipientInOneBatchWindowGetsOneCode: 200 requests of one recipient and campaign, sent at
// once among 200 of other recipients (so they share batches), get one code between them; with a
// reassign window of 0 each of 20 such requests gets a code of its own, as it would one by one.
func TestOneRecipientInOneBatchWindowGetsOneCode(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Batch Window Shop")
	tests := []struct {
		name           string
		window, asks   int
		wantCodes      int
		wantNew        int
		wantAllocation int
	}{
		{name: "reassign window", window: 86400, asks: 200, wantCodes: 1, wantNew: 1, wantAllocation: 1},
		{name: "no reassign window", window: 0, asks: 20, wantCodes: 20, wantNew: 20, wantAllocation: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := h.CreateList(t, m, map[string]any{"name": tc.name, "reassign_window": tc.window})
			seedCodes(t, h, m, list, "W", 500)
			var mu sync.Mutex
			codes := map[string]int{}
			created, others := 0, map[string]bool{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 2*tc.asks; i++ {
				wg.Add(1)
				go func(i int) {
					gt := apptest.InGoroutine(t)
					defer wg.Done()
					<-start
					email := "eve@example.com"
					if i%2 == 1 {
						email = fmt.Sprintf("other%d@example.com", i)
					}
					r := allocate(gt, h, m, list, email, "launch")
					if r.Status != 201 && r.Status != 200 {
						gt.Errorf("answer %d %s", r.Status, r.Body)
						return
					}
					code := r.Map(gt)["code"].(string)
					mu.Lock()
					defer mu.Unlock()
					if i%2 == 1 {
						if others[code] || codes[code] > 0 {
							gt.Errorf("code %s handed to two recipients", code)
						}
						others[code] = true
						return
					}
					if others[code] {
						gt.Errorf("code %s handed to two recipients", code)
					}
					codes[code]++
					if r.Status == 201 {
						created++
					}
				}(i)
			}
			close(start)
			wg.Wait()
			var rows int
			_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM allocations
				WHERE merchant_id = $1 AND list_id = $2 AND recipient_email = 'eve@example.com'`, m.ID, list).Scan(&rows)
			if len(codes) != tc.wantCodes || created != tc.wantNew || rows != tc.wantAllocation || len(others) != tc.asks {
				t.Fatalf("eve: %d distinct codes, %d created, %d allocation records; others %d codes; want %d, %d, %d; %d",
					len(codes), created, rows, len(others), tc.wantCodes, tc.wantNew, tc.wantAllocation, tc.asks)
			}
			if c := counts(t, h, m, list); c["delivered"] != float64(tc.wantCodes+tc.asks) {
				t.Fatalf("counts: %v, want %d delivered", c, tc.wantCodes+tc.asks)
			}
		})
	}
}
