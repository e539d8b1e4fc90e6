package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/coupongate/coupongate/internal/apptest"
)

type orderResult struct {
	Results []struct {
		Code    string `json:"code"`
		Outcome string `json:"outcome"`
		Uses    int    `json:"uses"`
	} `json:"results"`
}

func order(t testing.TB, h *apptest.Harness, m apptest.Merchant, id, status string, codes ...string) orderResult {
	t.Helper()
	r := h.Admin(t, m, "POST", "/api/v1/orders", map[string]any{"platform": "custom", "shop": "shop-1", "order_id": id,
		"status": status, "codes": codes, "customer": map[string]any{"email": "buyer@example.com"}})
	if r.Status != 200 {
		t.Fatalf("order %s %s: %d %s", id, status, r.Status, r.Body)
	}
	var res orderResult
	r.JSON(t, &res)
	return res
}

// timeline lists the event types of a code, oldest first.
func timeline(t testing.TB, h *apptest.Harness, m apptest.Merchant, code string) []string {
	t.Helper()
	rows, err := h.App.DB.Pool().Query(context.Background(), `SELECT e.type FROM code_events e JOIN codes c USING (merchant_id, list_id, seq)
		WHERE e.merchant_id = $1 AND c.code = $2 ORDER BY e.id`, m.ID, code)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		_ = rows.Scan(&typ)
		out = append(out, typ)
	}
	return out
}

func TestOrderStatusTransitions(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Orders Shop")
	list := h.CreateList(t, m, map[string]any{"name": "orders"})
	seedCodes(t, h, m, list, "ORD", 8)
	tests := []struct {
		name     string
		code     string
		events   [][2]string // status, expected outcome
		uses     int
		timeline []string
	}{
		{"pending then paid counts once", "ORD-1", [][2]string{{"pending", "recorded"}, {"paid", "redeemed"}}, 1, []string{"order_pending", "redeemed"}},
		{"paid twice counts once", "ORD-2", [][2]string{{"paid", "redeemed"}, {"paid", "already_counted"}}, 1, []string{"redeemed"}},
		{"paid then cancelled stays counted", "ORD-3", [][2]string{{"paid", "redeemed"}, {"cancelled", "recorded"}}, 1, []string{"redeemed", "cancelled"}},
		{"paid then refunded stays counted", "ORD-4", [][2]string{{"paid", "redeemed"}, {"refunded", "recorded"}, {"refunded", "already_recorded"}}, 1, []string{"redeemed", "refunded"}},
		{"cancelled arriving before paid", "ORD-5", [][2]string{{"cancelled", "recorded"}, {"paid", "redeemed"}}, 1, []string{"cancelled", "redeemed"}},
		{"pending only never counts", "ORD-6", [][2]string{{"pending", "recorded"}, {"pending", "already_recorded"}}, 0, []string{"order_pending"}},
		{"cancelled only never counts", "ORD-7", [][2]string{{"cancelled", "recorded"}}, 0, []string{"cancelled"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ev := range tc.events {
				res := order(t, h, m, "order-"+tc.code, ev[0], tc.code)
				if len(res.Results) != 1 || res.Results[0].Outcome != ev[1] {
					t.Fatalf("%s: %+v, want %s", ev[0], res, ev[1])
				}
			}
			var v validation
			validate(t, h, m, map[string]any{"code": tc.code}).JSON(t, &v)
			if (tc.uses == 1) != (v.Reason == "used") {
				t.Fatalf("validation after the events: %+v", v)
			}
			got := timeline(t, h, m, tc.code)
			if len(got) != len(tc.timeline) {
				t.Fatalf("timeline %v, want %v", got, tc.timeline)
			}
			for i := range got {
				if got[i] != tc.timeline[i] {
					t.Fatalf("timeline %v, want %v", got, tc.timeline)
				}
			}
		})
	}
	c := counts(t, h, m, list)
	if c["redeemed"] != 5 || c["available"] != 3 {
		t.Fatalf("counts: %v", c)
	}
	// Another order using a used single-use code is an over-use: recorded, not counted.
	res := order(t, h, m, "late-order", "paid", "ORD-1", "NOT-A-CODE")
	if res.Results[0].Outcome != "over_use" || res.Results[0].Uses != 1 || res.Results[1].Outcome != "not_found" {
		t.Fatalf("over-use: %+v", res)
	}
	if got := timeline(t, h, m, "ORD-1"); got[len(got)-1] != "over_use" {
		t.Fatalf("over-use not on the timeline: %v", got)
	}
}

func TestMultiUseCodesCountUpToTheLimit(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Multi Shop")
	list := h.CreateList(t, m, map[string]any{"name": "three uses", "uses_per_code": 3})
	seedCodes(t, h, m, list, "TRI", 1)
	want := []string{"redeemed", "redeemed", "redeemed", "over_use"}
	for i, w := range want {
		res := order(t, h, m, "multi-"+string(rune('a'+i)), "paid", "TRI-1")
		if res.Results[0].Outcome != w {
			t.Fatalf("order %d: %+v, want %s", i, res, w)
		}
	}
	var uses int
	_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT uses FROM codes WHERE merchant_id = $1 AND code = 'TRI-1'`, m.ID).Scan(&uses)
	if uses != 3 {
		t.Fatalf("uses %d, want 3", uses)
	}
}

func TestTheSameOrderFiftyTimesAtOnceCountsOnce(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Retry Storm Shop")
	list := h.CreateList(t, m, map[string]any{"name": "storm", "uses_per_code": 100})
	seedCodes(t, h, m, list, "STORM", 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			gt := apptest.InGoroutine(t)
			defer wg.Done()
			res := order(gt, h, m, "storm-order", "paid", "STORM-1")
			mu.Lock()
			outcomes[res.Results[0].Outcome]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if outcomes["redeemed"] != 1 || outcomes["already_counted"] != 49 {
		t.Fatalf("outcomes %v", outcomes)
	}
	var uses, events int
	_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT uses FROM codes WHERE merchant_id = $1 AND code = 'STORM-1'`, m.ID).Scan(&uses)
	_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM code_events WHERE merchant_id = $1 AND type = 'redeemed'`, m.ID).Scan(&events)
	if uses != 1 || events != 1 {
		t.Fatalf("uses %d, redeemed events %d; want 1 and 1", uses, events)
	}
}

func TestManualRedeem(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Till Shop")
	list := h.CreateList(t, m, map[string]any{"name": "till"})
	seedCodes(t, h, m, list, "TILL", 2)
	issued := h.CreateList(t, m, map[string]any{"name": "issued", "require_issued": true})
	seedCodes(t, h, m, issued, "ISSUED", 1)
	path := func(l, code string) string { return "/api/v1/lists/" + l + "/codes/" + code + "/redeem" }
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"redeem", path(list, "TILL-1"), map[string]any{"order_id": "till-1", "note": "counter 3"}, 200, ""},
		{"same order again is harmless", path(list, "TILL-1"), map[string]any{"order_id": "till-1"}, 200, ""},
		{"used code", path(list, "TILL-1"), map[string]any{"order_id": "till-2"}, 409, "already_used"},
		{"no body", path(list, "TILL-2"), nil, 200, ""},
		{"not issued", path(issued, "ISSUED-1"), map[string]any{}, 409, "not_issued"},
		{"unknown code", path(list, "NOPE"), map[string]any{}, 404, "code_not_found"},
		{"a NUL byte is no code", path(list, "A%00B"), map[string]any{}, 404, "code_not_found"},
		{"invalid UTF-8 is no code", path(list, "%FF"), map[string]any{}, 404, "code_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Admin(t, m, http.MethodPost, tc.path, tc.body)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
	if got := timeline(t, h, m, "TILL-1"); len(got) != 2 || got[0] != "redeemed" || got[1] != "over_use" {
		t.Fatalf("timeline %v", got)
	}
}
