package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestScansFireCodeRedeemed: a scan's "Mark as used" and a staff PIN on the redeem page fire
// code.redeemed as any redemption does, with the channel in_store and the person as actor.
func TestScansFireCodeRedeemed(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) { c.WebhooksAllowPrivate = true }})
	m := h.NewMerchant(t, "Scan Hook Shop")
	ctx := context.Background()
	merchant := uuid.MustParse(m.ID)

	var mu sync.Mutex
	heard := map[string]map[string]any{} // code → data
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		if code, _ := ev.Data["code"].(string); ev.Type == "code.redeemed" {
			heard[code] = ev.Data
		}
	}))
	t.Cleanup(receiver.Close)
	if r := h.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": receiver.URL, "events": []string{"code.redeemed"}}); r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}

	list := h.CreateList(t, m, map[string]any{"name": "Scan hooks"})
	importByHand(t, h, m, list, "test", "HOOK-SCAN", "HOOK-PIN")
	_, token, err := h.App.Users.Invite(ctx, merchant, core.InviteInput{Email: "pin-" + uuid.NewString()[:8] + "@example.com", Role: core.RoleStaff})
	if err != nil {
		t.Fatal(err)
	}
	staff, err := h.App.Users.AcceptInvite(ctx, token, dashPassword, dashPassword)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := h.App.Scanner.NewPIN(ctx, merchant, staff.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.App.Scanner.MarkUsed(ctx, merchant, core.ScanScope{All: true}, uuid.MustParse(list), "HOOK-SCAN", "till@shop.example"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.App.Scanner.MarkUsedWithPIN(ctx, merchant, uuid.MustParse(list), "HOOK-PIN", pin, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}

	apptest.Eventually(t, 30*time.Second, "code.redeemed for both codes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return heard["HOOK-SCAN"] != nil && heard["HOOK-PIN"] != nil
	})
	mu.Lock()
	defer mu.Unlock()
	for code, actor := range map[string]string{"HOOK-SCAN": "till@shop.example", "HOOK-PIN": staff.User.Email} {
		if d := heard[code]; d["channel"] != "in_store" || d["actor"] != actor {
			t.Errorf("code.redeemed of %s: %v", code, d)
		}
	}
	h.Drain(t, 30*time.Second)
}
