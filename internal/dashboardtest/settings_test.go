package dashboardtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// storefrontStatus is the status of a storefront call made with key: 404 (no such reservation)
// once the key is accepted, 401 when it is not.
func storefrontStatus(t *testing.T, h *apptest.Harness, key string) int {
	t.Helper()
	return h.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/storefront/v1/reservations/" + uuid.NewString(), Storefront: key}).Status
}

// axeClean fails on any serious or critical accessibility violation of the page shown.
func axeClean(t *testing.T, b *browsertest.Browser, what string) {
	t.Helper()
	for _, v := range b.Axe() {
		if v.Serious() {
			t.Errorf("%s (%s): %s", what, b.Location(), v)
		}
	}
}

// TestJourneyRotateStorefrontKey: the owner opens Settings, saves an alert address (a wrong one is
// told beside the box), opens API keys, rotates the storefront key
// with a 7-day grace period, reads the new key once with the sentence saying so and until when the
// old one works, and copies it with the button; the copied key works at the API, and so does the
// old one for now. Back on the keys page the key is gone for good.
func TestJourneyRotateStorefrontKey(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	m, keys, err := s.h.App.Merchants.Create(context.Background(), "Key Shop")
	if err != nil {
		t.Fatal(err)
	}
	s.merchant = m.ID
	owner := s.member(t, "owner", core.RoleOwner)
	b := browsertest.New(t)
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(b.Context(), browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: s.h.URL}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}

	signIn(b, s.h.URL, owner, password)
	b.WaitText("main h1", "Lists")
	b.Click(`.nav a[href="/app/settings"]`)
	b.WaitText("main h1", "Settings")
	b.WaitText(".tabs a[aria-current=page]", "Alerts")
	axeClean(t, b, "the alerts page")
	// (an empty textarea has no text node for Fill to type into)
	browsertest.Eval[bool](b, `(document.querySelector("#alert-emails").value = "ops@shop.example\nnot-an-address", true)`)
	b.ClickText("Save alert addresses")
	b.WaitText("#error-emails", `"not-an-address" is not an email address.`)
	axeClean(t, b, "the alerts page with an error")
	browsertest.Eval[bool](b, `(document.querySelector("#alert-emails").value = "ops@shop.example", true)`)
	b.ClickText("Save alert addresses")
	b.WaitText(".banner-success", "Alert addresses saved.")
	if got := b.Text("#alert-emails"); got != "ops@shop.example" {
		t.Fatalf("the saved addresses read %q", got)
	}
	b.ClickText("API keys")
	b.WaitText(".tabs a[aria-current=page]", "API keys")
	b.WaitText("main", "Storefront key")
	axeClean(t, b, "the keys page")

	browsertest.Eval[bool](b, `(document.querySelector("#grace-storefront").value = "604800", true)`)
	before := time.Now()
	b.ClickText("Rotate Storefront key")
	b.WaitText("main h1", "New Storefront key")
	if d := b.Dialogs(); len(d) != 1 || !strings.Contains(d[0], "Rotate the Storefront key? The new key is shown once.") {
		t.Fatalf("the rotation asked %v", d)
	}
	b.WaitText("main", "Copy this key now: it will not be shown again.")
	key := b.Text("#new-key")
	if !strings.HasPrefix(key, "cg_store_") || key == keys.StorefrontKey {
		t.Fatalf("the page shows %q", key)
	}
	until := browsertest.Eval[string](b, `document.querySelector("#old-key-until time").getAttribute("datetime")`)
	ends, err := time.Parse(time.RFC3339, until)
	if err != nil || ends.Before(before.Add(7*24*time.Hour-time.Minute)) || ends.After(time.Now().Add(7*24*time.Hour)) {
		t.Fatalf("the old key works until %q, want 7 days from now", until)
	}
	if got := b.Text("#old-key-until"); !strings.HasPrefix(got, "The old key keeps working until "+ends.Format("2 Jan 2006 15:04 UTC")) {
		t.Fatalf("the page says %q", got)
	}
	doc := lastDocument(t, b, "/app/settings/keys/storefront/rotate")
	if doc.Method != http.MethodPost || doc.Status != http.StatusOK || doc.ResponseHeader.Get("Cache-Control") != "no-store" {
		t.Fatalf("the page with the key: %s %d, Cache-Control %q", doc.Method, doc.Status, doc.ResponseHeader.Get("Cache-Control"))
	}
	axeClean(t, b, "the new key")
	screenshot(t, b, "settings-new-key")

	b.ClickText("Copy key")
	b.WaitText("main button[data-copy-target]", "Copied")
	if copied := browsertest.Eval[string](b, `navigator.clipboard.readText()`); copied != key {
		t.Fatalf("the clipboard holds %q, want the new key %q", copied, key)
	}
	for name, k := range map[string]string{"copied": key, "old": keys.StorefrontKey} {
		if st := storefrontStatus(t, s.h, k); st != http.StatusNotFound {
			t.Fatalf("the %s storefront key answers %d", name, st)
		}
	}

	b.ClickText("Done")
	b.WaitText(".tabs a[aria-current=page]", "API keys")
	b.WaitText("main", "keeps working until")
	if strings.Contains(b.Text("main"), key) {
		t.Fatal("the keys page shows the key again")
	}
}

// TestJourneyWebhookEndpoint: the owner adds an outgoing webhook endpoint with two events, reads
// its secret once, opens it, and deletes it after the question; a disabled endpoint says why and
// "Re-enable" turns it on.
func TestJourneyWebhookEndpoint(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	owner := s.member(t, "owner", core.RoleOwner)
	ctx := context.Background()
	down, err := s.h.App.Endpoints.Create(ctx, s.merchant, "https://down.shop.example/hooks", []string{core.EventTypeExhausted})
	if err != nil {
		t.Fatal(err)
	}
	db := s.h.App.DB.Pool()
	if _, err := db.Exec(ctx, `UPDATE webhook_endpoints SET state = 'disabled', failing_since = now() - interval '6 days', disabled_at = now()
		WHERE merchant_id = $1 AND id = $2`, s.merchant, down.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO webhook_attempts (merchant_id, endpoint_id, message_id, event_type, status_code, error)
		VALUES ($1, $2, 'msg_d1', 'list.exhausted', 0, 'connection refused')`, s.merchant, down.ID); err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(t)
	signIn(b, s.h.URL, owner, password)
	b.WaitText("main h1", "Lists")

	b.Navigate(s.h.URL + "/app/settings")
	b.ClickText("Outgoing webhooks")
	b.WaitText(".tabs a[aria-current=page]", "Outgoing webhooks")
	b.WaitText("#endpoint-rows", "Disabled")
	axeClean(t, b, "the endpoints")

	// A form missing its events is told so beside them.
	b.Fill("#endpoint-url", "https://hooks.shop.example/coupongate")
	b.ClickText("Add endpoint")
	b.WaitText("#error-events", "Name at least one event")
	axeClean(t, b, "the endpoint form with errors")
	b.Click(`#event-code\.delivered`)
	b.Click(`#event-code\.redeemed`)
	b.ClickText("Add endpoint")
	b.WaitText(".banner-success", "it will not be shown again")
	secret := b.Text("#endpoint-secret")
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the secret reads %q", secret)
	}
	axeClean(t, b, "the new endpoint's secret")
	b.ClickText("https://hooks.shop.example/coupongate")
	b.WaitText("main h1", "https://hooks.shop.example/coupongate")
	b.WaitText("main", "No attempts yet")
	if strings.Contains(b.Text("main"), secret) {
		t.Fatal("the endpoint's page shows the secret again")
	}
	b.ClickText("Delete endpoint")
	b.WaitText("main h1", "Delete endpoint")
	axeClean(t, b, "the delete question")
	b.Click(`main form button.button-critical`)
	b.WaitText(".banner-success", "The endpoint was deleted.")
	if strings.Contains(b.Text("main"), "hooks.shop.example") {
		t.Fatal("the deleted endpoint is still listed")
	}

	b.ClickText("https://down.shop.example/hooks")
	b.WaitText(".banner-critical", "so Coupongate disabled it")
	b.WaitText("#attempt-rows", "connection refused")
	axeClean(t, b, "a disabled endpoint")
	b.ClickText("Re-enable")
	b.WaitText(".banner-success", "The endpoint is enabled again")
	if got, err := s.h.App.Endpoints.Get(ctx, s.merchant, down.ID); err != nil || got.State != core.EndpointActive {
		t.Fatalf("after Re-enable: %+v %v", got, err)
	}
}

// TestJourneyStaffRefusedSettings: a staff member opening /app/settings, or any page under it,
// gets the 403 page saying that only owners may.
func TestJourneyStaffRefusedSettings(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	staff := s.member(t, "staff", core.RoleStaff)
	b := browsertest.New(t)
	signIn(b, s.h.URL, staff, password)
	b.WaitURL("/app/codes")
	for _, path := range []string{"/app/settings", "/app/settings/webhooks", "/app/settings/keys"} {
		b.Navigate(s.h.URL + path)
		b.WaitText("main h1", "You cannot open this page")
		b.WaitText("main", "Only an owner of the team can open this page or do this.")
		if got := lastDocument(t, b, path); got.Status != http.StatusForbidden {
			t.Fatalf("%s answered %d", path, got.Status)
		}
		if b.Count(`.nav a[href="/app/settings"]`) != 0 {
			t.Fatal("staff navigation offers Settings")
		}
	}
	axeClean(t, b, "the 403 page")
}
