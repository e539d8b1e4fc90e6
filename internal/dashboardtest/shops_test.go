package dashboardtest

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// TestJourneyConnectWooCommerceAndPush: an owner opens Shops, connects the WooCommerce fake with
// REST API keys (a wrong secret is refused beside the form and never shown again), pushes a list
// with a discount, and watches the push's page follow the push to the end without reloading; the
// codes are then coupons in the fake store with the discount. The pusher runs when the test says,
// so the page is seen waiting first.
func TestJourneyConnectWooCommerceAndPush(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	fake := woofake.New(t, woofake.Config{TLS: true})
	app := s.h.App
	// The gateway reaches the store over its test certificate.
	s.h.UseWooCommerceClient(fake.Client())
	pusher := woocommerce.NewPusher(app.DB, slog.New(slog.DiscardHandler))
	pusher.HTTP = fake.Client()
	ctx := context.Background()

	list := s.list(t, "Autumn <newsletter>")
	imp, err := app.Imports.Start(ctx, s.merchant, list.ID, core.FormatText, "", strings.NewReader("AUTUMN-01\nAUTUMN-02\nAUTUMN-03\n"), 1<<20, "test")
	if err != nil {
		t.Fatal(err)
	}
	s.runImport(t, list.ID, imp.ID)
	email := s.member(t, "owner", core.RoleOwner)
	b := browsertest.New(t)
	signIn(b, s.h.URL, email, password)
	b.WaitText("main h1", "Lists")

	// Shops: the site's Shopify shop, and the forms to connect a WooCommerce store.
	b.ClickText("Shops")
	b.WaitText("main h1", "Shops")
	b.WaitText("main table", s.shop)
	axeClean(t, b, "the shops page")

	// Keys the store refuses, then the right ones.
	wrong := "cs_wrong_secret_for_the_journey"
	b.Fill("#keys-site-url", fake.URL())
	b.Fill("#keys-consumer-key", woofake.DefaultConsumerKey)
	b.Fill("#keys-consumer-secret", wrong)
	b.ClickText("Connect with keys")
	b.WaitText("#error-consumer_key", "The store refused this consumer key and secret")
	if got := browsertest.Eval[string](b, `document.querySelector("#keys-consumer-secret").value`); got != "" {
		t.Errorf("the refused form gives the secret back: %q", got)
	}
	if html := browsertest.Eval[string](b, `document.documentElement.outerHTML`); strings.Contains(html, wrong) {
		t.Error("the refused form's page holds the secret")
	}
	axeClean(t, b, "the keys form with an error")
	b.Fill("#keys-consumer-secret", woofake.DefaultConsumerSecret)
	b.ClickText("Connect with keys")
	b.WaitText("main h1", fake.URL())
	b.WaitText("main", "The store is connected")
	if hooks := fake.Webhooks(); len(hooks) != 2 {
		t.Errorf("the store has %d webhooks, want the two order webhooks", len(hooks))
	}
	axeClean(t, b, "the shop's page")

	// Push the list with a discount.
	if !browsertest.Eval[bool](b, fmt.Sprintf(`(() => { const s = document.querySelector("#push-list"); s.value = %q; return s.value === %q })()`,
		list.ID, list.ID)) {
		t.Fatal("the list is not among the push form's lists")
	}
	b.Fill("#push-title", "Autumn 15%")
	b.Fill("#push-value", "15")
	b.Click("#push-once")
	b.ClickText("Push list")
	b.WaitURL("/pushes/" + list.ID.String())
	// The push waits for a worker; the site's own worker may already have started it.
	if !b.Poll(`(() => { const t = document.querySelector("#push-progress")?.textContent ?? ""; return t.includes("Waiting to start") || t.includes("Pushing") })()`) {
		t.Fatalf("the push's page shows neither Waiting to start nor Pushing: %s", b.Text("#push-progress"))
	}
	if b.Count(`#push-progress[data-poll] progress`) != 1 {
		t.Error("no progress bar on the push's page while it waits")
	}
	b.WaitText("main h1", "Autumn <newsletter> in "+fake.URL())
	axeClean(t, b, "the push's page")

	connID := regexp.MustCompile(`/app/shops/([0-9a-f-]{36})/pushes/`).FindStringSubmatch(b.Location())
	if connID == nil {
		t.Fatalf("the push's page is %s", b.Location())
	}
	if err := pusher.RunPush(ctx, s.merchant, list.ID, uuid.MustParse(connID[1])); err != nil {
		t.Fatal(err)
	}
	b.WaitText("#push-progress .badge", "Active")
	report := strings.Join(strings.Fields(b.Text("#push-progress .report")), "")
	if report != "Pushed3Failed0Pending0" {
		t.Errorf("the finished push reads %q", report)
	}
	b.WaitText("main", "The shop refused no code.")
	loads, polls := 0, 0
	for _, x := range b.Exchanges() {
		if strings.Contains(x.URL, "/pushes/"+list.ID.String()) {
			switch x.Type {
			case "Document":
				loads++
			case "Fetch", "XHR":
				polls++
			}
		}
	}
	if loads != 1 || polls == 0 {
		t.Errorf("the push's progress came with %d page loads and %d polls, want 1 load and polls", loads, polls)
	}
	screenshot(t, b, "shop-push")

	// The codes are coupons in the store, with the discount.
	var codes []string
	for _, c := range fake.Coupons() {
		codes = append(codes, c.Code)
		if c.DiscountType != "percent" || c.Amount != "15.00" || c.UsageLimitPerUser != 1 {
			t.Errorf("coupon %s: %s %s, %d per user", c.Code, c.DiscountType, c.Amount, c.UsageLimitPerUser)
		}
	}
	sort.Strings(codes)
	if strings.Join(codes, " ") != "autumn-01 autumn-02 autumn-03" {
		t.Errorf("the store's coupons: %v", codes)
	}

	// Back on the shop's page the list is among its pushes.
	b.ClickText(fake.URL())
	b.WaitText("main table", "Autumn <newsletter>")
	if got := strings.Join(strings.Fields(b.Text("main table tbody")), " "); !strings.Contains(got, "Active 3 0 0") {
		t.Errorf("the shop's pushes read %q", got)
	}
}
