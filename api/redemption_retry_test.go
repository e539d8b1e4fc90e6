package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/coupongate/coupongate/internal/apptest"
)

// TestRefusedRedemptionRetried: a redemption refused because the code has no use left answers the
// same refusal when the same order comes again, by hand (409 already_used) and as an order event
// (over_use), instead of passing for a counted one; an order that did count still answers
// already_counted. The refusal is on the timeline once per order.
func TestRefusedRedemptionRetried(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Retry Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Once", "uses_per_code": 1})
	importByHand(t, h, m, list, "test", "ONCE-1", "ONCE-2")
	overUses := func(t *testing.T, code string) int {
		t.Helper()
		events := timeline(t, h, m, code)
		return len(slices.DeleteFunc(events, func(e string) bool { return e != "over_use" }))
	}

	t.Run("by hand", func(t *testing.T) {
		redeem := func(orderID string, wantStatus int, want string) {
			t.Helper()
			r := h.Admin(t, m, http.MethodPost, codePath(list, "ONCE-1")+"/redeem", map[string]any{"order_id": orderID})
			got := r.ErrorCode()
			if r.Status == http.StatusOK {
				got, _ = r.Map(t)["outcome"].(string)
			}
			if r.Status != wantStatus || got != want {
				t.Fatalf("redeem for %s: %d %s, want %d %s", orderID, r.Status, r.Body, wantStatus, want)
			}
		}
		redeem("till-1", http.StatusOK, "redeemed")
		redeem("till-2", http.StatusConflict, "already_used")
		redeem("till-2", http.StatusConflict, "already_used") // the retry: refused again
		redeem("till-1", http.StatusOK, "already_counted")
		if n := overUses(t, "ONCE-1"); n != 1 {
			t.Fatalf("%d over_use events, want 1", n)
		}
	})

	t.Run("order events", func(t *testing.T) {
		if res := order(t, h, m, "web-1", "paid", "ONCE-2"); res.Results[0].Outcome != "redeemed" {
			t.Fatalf("first paid order: %+v", res.Results)
		}
		for range 2 { // a paid order for the used code, then its retry
			res := order(t, h, m, "web-2", "paid", "ONCE-2")
			if len(res.Results) != 1 || res.Results[0].Outcome != "over_use" || res.Results[0].Uses != 1 {
				t.Fatalf("paid order for a used code: %+v, want over_use with 1 use", res.Results)
			}
		}
		if res := order(t, h, m, "web-1", "paid", "ONCE-2"); res.Results[0].Outcome != "already_counted" {
			t.Fatalf("the counted order again: %+v", res.Results)
		}
		if n := overUses(t, "ONCE-2"); n != 1 {
			t.Fatalf("%d over_use events, want 1", n)
		}
	})
}
