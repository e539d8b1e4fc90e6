package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

// validate asks the storefront API about a code.
func validate(t testing.TB, h *apptest.Harness, m apptest.Merchant, body map[string]any) apptest.Response {
	t.Helper()
	return h.Do(t, apptest.Request{Method: "POST", Path: "/storefront/v1/validate", JSON: body, Storefront: m.StorefrontKey})
}

type validation struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason"`
	Code   string `json:"code"`
	List   *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"list"`
	ExpiresAt   *string `json:"expires_at"`
	Reservation *struct {
		ID        string `json:"id"`
		ExpiresAt string `json:"expires_at"`
	} `json:"reservation"`
}

func TestValidationReasons(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.ValidationFailuresPerMinute = 1000 }})
	m := h.NewMerchant(t, "Checkout Shop")
	other := h.NewMerchant(t, "Other Checkout")
	ctx := context.Background()
	pool := h.App.DB.Pool()
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	open := h.CreateList(t, m, map[string]any{"name": "Open"})
	seedCodes(t, h, m, open, "OPEN", 6)
	ci := h.CreateList(t, m, map[string]any{"name": "Case", "case_insensitive": true})
	seedCodes(t, h, m, ci, "Mixed", 1)
	issued := h.CreateList(t, m, map[string]any{"name": "Issued only", "require_issued": true})
	seedCodes(t, h, m, issued, "ISS", 2)
	allocate(t, h, m, issued, "ann@example.com", "") // ISS-1 goes to ann
	expired := h.CreateList(t, m, map[string]any{"name": "Expired"})
	seedCodes(t, h, m, expired, "EXP", 1)
	h.Admin(t, m, "PATCH", "/api/v1/lists/"+expired, map[string]any{"expires_at": past})
	soon := h.CreateList(t, m, map[string]any{"name": "Soon", "starts_at": future})
	seedCodes(t, h, m, soon, "SOON", 1)
	archived := h.CreateList(t, m, map[string]any{"name": "Archived"})
	seedCodes(t, h, m, archived, "ARC", 1)
	h.Admin(t, m, "PATCH", "/api/v1/lists/"+archived, map[string]any{"archived": true})

	// OPEN-2 is used; OPEN-3's own window ended; OPEN-4's opens tomorrow; OPEN-5 is removed.
	h.Admin(t, m, "POST", "/api/v1/orders", map[string]any{"platform": "custom", "shop": "s", "order_id": "o1", "status": "paid", "codes": []string{"OPEN-2"}})
	if _, err := pool.Exec(ctx, `UPDATE codes SET available_till = CASE code WHEN 'OPEN-3' THEN now() - interval '1 hour' END,
		available_from = CASE code WHEN 'OPEN-4' THEN now() + interval '1 day' END,
		state = CASE code WHEN 'OPEN-5' THEN 'removed' ELSE state END
		WHERE merchant_id = $1 AND list_id = $2`, m.ID, open); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		who      apptest.Merchant
		code     string
		customer map[string]any
		valid    bool
		reason   string
	}{
		{"ok", m, "OPEN-1", nil, true, "ok"},
		{"surrounding spaces trimmed", m, "  OPEN-1 ", nil, true, "ok"},
		{"case-sensitive list", m, "open-1", nil, false, "not_found"},
		{"case-insensitive list", m, "MIXED-1", nil, true, "ok"},
		{"unknown", m, "NOPE-1", nil, false, "not_found"},
		{"another merchant's code", other, "OPEN-1", nil, false, "not_found"},
		{"not a code at all", m, "a b", nil, false, "not_found"},
		{"used", m, "OPEN-2", nil, false, "used"},
		{"code window ended", m, "OPEN-3", nil, false, "expired"},
		{"code window not open", m, "OPEN-4", nil, false, "not_started"},
		{"removed", m, "OPEN-5", nil, false, "not_found"},
		{"list expired", m, "EXP-1", nil, false, "expired"},
		{"list not started", m, "SOON-1", nil, false, "not_started"},
		{"list archived", m, "ARC-1", nil, false, "archived"},
		{"require_issued, never delivered", m, "ISS-2", nil, false, "not_issued"},
		{"require_issued, delivered", m, "ISS-1", nil, true, "ok"},
		{"require_issued, its recipient", m, "ISS-1", map[string]any{"email": "Ann@Example.com"}, true, "ok"},
		{"require_issued, someone else", m, "ISS-1", map[string]any{"email": "bob@example.com"}, false, "not_issued"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"code": tc.code}
			if tc.customer != nil {
				body["customer"] = tc.customer
			}
			r := validate(t, h, tc.who, body)
			var v validation
			r.JSON(t, &v)
			if r.Status != 200 || v.Valid != tc.valid || v.Reason != tc.reason {
				t.Fatalf("got %d %s, want valid=%v reason=%s", r.Status, r.Body, tc.valid, tc.reason)
			}
			if tc.reason != "not_found" && (v.List == nil || v.List.ID == "") {
				t.Fatalf("no list in %s", r.Body)
			}
			if tc.reason == "not_found" && v.List != nil {
				t.Fatalf("an unknown code names a list: %s", r.Body)
			}
		})
	}
	if r := h.Do(t, apptest.Request{Method: "POST", Path: "/storefront/v1/validate", JSON: map[string]any{"code": "OPEN-1"}, Storefront: "cg_store_x"}); r.Status != 401 {
		t.Fatalf("bad storefront key: %d", r.Status)
	}
	if r := h.Do(t, apptest.Request{Method: "POST", Path: "/storefront/v1/validate", JSON: map[string]any{"code": "OPEN-1"}, Storefront: m.APIKey}); r.Status != 401 {
		t.Fatalf("admin key as storefront key: %d", r.Status)
	}
}

func TestReservationHoldsASingleUseCode(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.HoldDuration = 2 * time.Second
		c.ValidationFailuresPerMinute = 1000
	}})
	m := h.NewMerchant(t, "Hold Shop")
	list := h.CreateList(t, m, map[string]any{"name": "holds"})
	seedCodes(t, h, m, list, "HOLD", 3)
	ann := map[string]any{"email": "ann@example.com"}
	bob := map[string]any{"email": "bob@example.com"}

	var held validation
	validate(t, h, m, map[string]any{"code": "HOLD-1", "customer": ann, "reserve": true}).JSON(t, &held)
	if !held.Valid || held.Reservation == nil || held.Reservation.ID == "" {
		t.Fatalf("reserve: %+v", held)
	}
	var v validation
	validate(t, h, m, map[string]any{"code": "HOLD-1", "customer": bob}).JSON(t, &v)
	if v.Valid || v.Reason != "reserved" {
		t.Fatalf("someone else during the hold: %+v", v)
	}
	validate(t, h, m, map[string]any{"code": "HOLD-1", "customer": bob, "reserve": true}).JSON(t, &v)
	if v.Valid || v.Reason != "reserved" || v.Reservation != nil {
		t.Fatalf("someone else reserving during the hold: %+v", v)
	}
	// The holder validating again keeps the same hold.
	validate(t, h, m, map[string]any{"code": "HOLD-1", "customer": ann, "reserve": true}).JSON(t, &v)
	if !v.Valid || v.Reservation == nil || v.Reservation.ID != held.Reservation.ID {
		t.Fatalf("holder again: %+v", v)
	}
	// Released: free for others.
	if r := h.Do(t, apptest.Request{Method: "DELETE", Path: "/storefront/v1/reservations/" + held.Reservation.ID, Storefront: m.StorefrontKey}); r.Status != 204 {
		t.Fatalf("release: %d %s", r.Status, r.Body)
	}
	validate(t, h, m, map[string]any{"code": "HOLD-1", "customer": bob}).JSON(t, &v)
	if !v.Valid {
		t.Fatalf("after release: %+v", v)
	}
	if r := h.Do(t, apptest.Request{Method: "DELETE", Path: "/storefront/v1/reservations/" + held.Reservation.ID, Storefront: m.StorefrontKey}); r.Status != 204 {
		t.Fatalf("second release: %d", r.Status)
	}
	if r := h.Do(t, apptest.Request{Method: "DELETE", Path: "/storefront/v1/reservations/00000000-0000-0000-0000-000000000000", Storefront: m.StorefrontKey}); r.Status != 404 {
		t.Fatalf("unknown reservation: %d", r.Status)
	}
	// A hold runs out by itself: a moment before its end it still holds, just after it no longer does.
	validate(t, h, m, map[string]any{"code": "HOLD-2", "customer": ann, "reserve": true}).JSON(t, &v)
	if v.Reservation == nil {
		t.Fatalf("second hold: %+v", v)
	}
	ends, err := time.Parse(time.RFC3339Nano, v.Reservation.ExpiresAt)
	if err != nil {
		t.Fatalf("the hold's end: %v", err)
	}
	h.App.Validator.SetClock(func() time.Time { return ends.Add(-time.Millisecond) })
	validate(t, h, m, map[string]any{"code": "HOLD-2", "customer": bob, "reserve": true}).JSON(t, &v)
	if v.Valid || v.Reason != "reserved" {
		t.Fatalf("a moment before the hold ends: %+v", v)
	}
	h.App.Validator.SetClock(func() time.Time { return ends.Add(time.Millisecond) })
	validate(t, h, m, map[string]any{"code": "HOLD-2", "customer": bob, "reserve": true}).JSON(t, &v)
	if !v.Valid || v.Reservation == nil {
		t.Fatalf("after the hold ran out: %+v", v)
	}
	h.App.Validator.SetClock(nil)
	// A redemption consumes the hold: the code is used, the hold gone.
	r := h.Admin(t, m, "POST", "/api/v1/orders", map[string]any{"platform": "custom", "shop": "s", "order_id": "hold-order", "status": "paid", "codes": []string{"HOLD-2"}})
	if r.Status != 200 {
		t.Fatalf("order: %d %s", r.Status, r.Body)
	}
	validate(t, h, m, map[string]any{"code": "HOLD-2", "customer": bob}).JSON(t, &v)
	if v.Reason != "used" {
		t.Fatalf("after redemption: %+v", v)
	}
	var redeemedHolds int
	_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM reservations WHERE merchant_id = $1 AND ended_by = 'redeemed'`, m.ID).Scan(&redeemedHolds)
	if redeemedHolds != 1 {
		t.Fatalf("%d reservations ended by the redemption, want 1", redeemedHolds)
	}
}

func TestFailedValidationsAreRateLimited(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.ValidationFailuresPerMinute = 5 }})
	m := h.NewMerchant(t, "Brute Force Shop")
	list := h.CreateList(t, m, map[string]any{"name": "guarded"})
	seedCodes(t, h, m, list, "REAL", 1)
	for i := 0; i < 5; i++ {
		if r := validate(t, h, m, map[string]any{"code": fmt.Sprint("GUESS-", i)}); r.Status != 200 {
			t.Fatalf("guess %d: %d", i, r.Status)
		}
	}
	r := validate(t, h, m, map[string]any{"code": "REAL-1"})
	if r.Status != http.StatusTooManyRequests || r.ErrorCode() != "rate_limited" {
		t.Fatalf("after 5 failures: %d %s", r.Status, r.Body)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// Another merchant's storefront is not affected.
	other := h.NewMerchant(t, "Innocent Shop")
	if r := validate(t, h, other, map[string]any{"code": "X"}); r.Status != 200 {
		t.Fatalf("other storefront: %d", r.Status)
	}
}
