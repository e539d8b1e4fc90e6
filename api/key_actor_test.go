package api_test

import (
	"context"
	"testing"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestTimelinesNameTheKeyThatActed: a hold placed with the storefront key and a code marked used
// with the admin key record the key's fingerprint as who acted, the same whether the gateway
// verified the key with PostgreSQL (its first request) or found it in its cache (the next ones).
func TestTimelinesNameTheKeyThatActed(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.ValidationFailuresPerMinute = 1000 }})
	m := h.NewMerchant(t, "Actor Shop")
	list := h.CreateList(t, m, map[string]any{"name": "actors"})
	seedCodes(t, h, m, list, "ACT", 4)
	for _, code := range []string{"ACT-1", "ACT-2"} {
		var v validation
		validate(t, h, m, map[string]any{"code": code, "reserve": true}).JSON(t, &v)
		if v.Reservation == nil {
			t.Fatalf("reserve %s: %+v", code, v)
		}
	}
	for _, code := range []string{"ACT-3", "ACT-4"} {
		if r := h.Admin(t, m, "POST", "/api/v1/lists/"+list+"/codes/"+code+"/redeem", map[string]any{}); r.Status/100 != 2 {
			t.Fatalf("mark %s used: %d %s", code, r.Status, r.Body)
		}
	}
	want := map[string]string{
		"ACT-1": "storefront_key:" + core.KeyFingerprint(m.StorefrontKey),
		"ACT-2": "storefront_key:" + core.KeyFingerprint(m.StorefrontKey),
		"ACT-3": "api_key:" + core.KeyFingerprint(m.APIKey),
		"ACT-4": "api_key:" + core.KeyFingerprint(m.APIKey),
	}
	rows, err := h.App.DB.Pool().Query(context.Background(), `SELECT c.code, e.actor FROM code_events e
		JOIN codes c ON c.merchant_id = e.merchant_id AND c.list_id = e.list_id AND c.seq = e.seq
		WHERE e.merchant_id = $1 AND e.type IN ('reserved', 'redeemed')`, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var code, actor string
		if err := rows.Scan(&code, &actor); err != nil {
			t.Fatal(err)
		}
		seen++
		if actor != want[code] {
			t.Errorf("%s: the timeline names %q, want %q", code, actor, want[code])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("%d events recorded, want %d", seen, len(want))
	}
}
