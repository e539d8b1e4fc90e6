package api_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The Shops pages (api/dashboard_shops.go), over HTTP as a browser without JavaScript uses them.

// TestShopPagesConnectPushReconcileDisconnect: an owner connects the WooCommerce fake with keys
// (after the form refused what was missing or wrong, beside each field, and never showed the
// secret again), pushes a list with a discount (after refusals beside the fields), watches the
// push finish with the code the store refused and its reason, asks for a reconciliation, and
// disconnects after confirming. The app-authorization form sends the browser to the store.
func TestShopPagesConnectPushReconcileDisconnect(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{TLS: true})
	m := s.NewMerchant(t, "Shop Pages")
	b := lpSignIn(t, s.Harness, m, "owner@example.com", core.RoleOwner)

	lpWant(t, "no shop yet", b.get(t, "/app/shops"), http.StatusOK, "No shop is connected yet", "Connect a WooCommerce store",
		"Connect with WooCommerce", "Connect with keys", `<label for="keys-consumer-secret">Consumer secret</label>`)

	// The keys form: what is missing, then keys the store refuses.
	r := b.post(t, "/app/shops/woocommerce/keys", url.Values{"site_url": {""}, "consumer_key": {""}, "consumer_secret": {""}})
	lpWant(t, "empty keys form", r, http.StatusUnprocessableEntity)
	lpFieldError(t, r, "keys-site-url", "site_url", "Enter the store's address, such as https://shop.example.com.")
	lpFieldError(t, r, "keys-consumer-key", "consumer_key", "Enter the consumer key (it starts with ck_).")
	lpFieldError(t, r, "keys-consumer-secret", "consumer_secret", "Enter the consumer secret (it starts with cs_).")
	wrong := "cs_wrong_but_secret_0123456789"
	r = b.post(t, "/app/shops/woocommerce/keys", url.Values{"site_url": {s.fake.URL()}, "consumer_key": {woofake.DefaultConsumerKey}, "consumer_secret": {wrong}})
	lpWant(t, "refused keys", r, http.StatusUnprocessableEntity, `value="`+s.fake.URL()+`"`)
	lpFieldError(t, r, "keys-consumer-key", "consumer_key",
		"The store refused this consumer key and secret. Create a key with Read/Write permissions in WooCommerce → Settings → Advanced → REST API.")
	if strings.Contains(string(r.Body), wrong) {
		t.Error("the refused form shows the consumer secret again")
	}
	r = b.post(t, "/app/shops/woocommerce/keys", url.Values{"site_url": {"ftp://shop.example.com"}, "consumer_key": {"ck_x"}, "consumer_secret": {"cs_x"}})
	lpFieldError(t, r, "keys-site-url", "site_url", "Enter the store's address, such as https://shop.example.com.")

	// Connected.
	loc := lpLocation(t, b.post(t, "/app/shops/woocommerce/keys", url.Values{"site_url": {s.fake.URL()},
		"consumer_key": {woofake.DefaultConsumerKey}, "consumer_secret": {woofake.DefaultConsumerSecret}}))
	m2 := regexp.MustCompile(`^/app/shops/([0-9a-f-]{36})\?connected=1$`).FindStringSubmatch(loc)
	if m2 == nil {
		t.Fatalf("connected, then to %q", loc)
	}
	shop := "/app/shops/" + m2[1]
	lpWant(t, "the shop", b.get(t, loc), http.StatusOK, "The store is connected", "WooCommerce", s.fake.URL(), "Active",
		"Reconcile now", "Disconnect", "Push a list", "No list is pushed to this shop yet")
	for _, path := range []string{"/app/shops", shop} {
		if page := b.get(t, path); strings.Contains(string(page.Body), woofake.DefaultConsumerSecret) {
			t.Errorf("%s shows the consumer secret", path)
		}
	}
	lpWant(t, "the shops", b.get(t, "/app/shops"), http.StatusOK, `href="`+shop+`"`, s.fake.URL(), "Active")

	// A list of three codes.
	list := s.CreateList(t, m, map[string]any{"name": "Spring <b>codes</b>"})
	importByHand(t, s.Harness, m, list, "test", "SPRING-1", "SPRING-2", "SPRING-3")
	lpWant(t, "the push form", b.get(t, shop), http.StatusOK, `<option value="`+list+`">Spring <b>codes</b></option>`)

	// The push form refuses what is missing or wrong, beside the field.
	r = b.post(t, shop+"/push", url.Values{"list_id": {""}, "title": {"Spring"}, "value_type": {"percentage"}, "value": {"ten"}})
	lpWant(t, "push without a list", r, http.StatusUnprocessableEntity)
	lpFieldError(t, r, "push-list", "list_id", "Choose the list whose codes go to the shop.")
	lpFieldError(t, r, "push-value", "value", "Enter the discount as a number, such as 10 or 4.50.")
	r = b.post(t, shop+"/push", url.Values{"list_id": {list}, "title": {"Spring"}, "value_type": {"percentage"}, "value": {"150"}})
	lpFieldError(t, r, "push-value", "value", "A percentage must be at most 100.")
	r = b.post(t, shop+"/push", url.Values{"list_id": {list}, "title": {" "}, "value_type": {"percentage"}, "value": {"10"}})
	lpFieldError(t, r, "push-title", "title", "Enter the discount's title, at most 255 characters: the shop shows it at checkout.")

	// Pushed; the page follows the push until it is done.
	loc = lpLocation(t, b.post(t, shop+"/push", url.Values{"list_id": {list}, "title": {"Spring 10%"}, "value_type": {"percentage"},
		"value": {"10"}, "once_per_customer": {"1"}}))
	if loc != shop+"/pushes/"+list {
		t.Fatalf("pushed, then to %q", loc)
	}
	var page string
	apptest.Eventually(t, 30*time.Second, "the push to finish", func() bool {
		r := b.get(t, loc)
		page = lpPage(r)
		return r.Status == http.StatusOK && !strings.Contains(page, "data-poll=")
	})
	for _, want := range []*regexp.Regexp{regexp.MustCompile(`<dt>Pushed</dt><dd>3</dd>`), regexp.MustCompile(`<dt>Failed</dt><dd>0</dd>`),
		regexp.MustCompile(`<dt>Pending</dt><dd>0</dd>`), regexp.MustCompile(`The shop refused no code.`),
		regexp.MustCompile(`Spring 10%: 10% off, once per customer`), regexp.MustCompile(`Spring <b>codes</b> in `)} {
		if !want.MatchString(page) {
			t.Errorf("the finished push does not read %s:\n%s", want, page)
		}
	}
	codes := map[string]bool{}
	for _, c := range s.fake.Coupons() {
		codes[c.Code] = true
	}
	if !codes["spring-1"] || !codes["spring-2"] || !codes["spring-3"] {
		t.Errorf("the store's coupons: %v", codes)
	}
	lpWant(t, "the shop's pushes", b.get(t, shop), http.StatusOK, "Spring <b>codes</b>", "Spring 10%: 10% off, once per customer")

	// Reconcile now.
	if loc := lpLocation(t, b.post(t, shop+"/reconcile", nil)); loc != shop+"?reconciling=1" {
		t.Fatalf("reconcile, then to %q", loc)
	}
	lpWant(t, "reconciling", b.get(t, shop+"?reconciling=1"), http.StatusOK, "Reconciliation started")

	// Disconnect, after the question.
	lpWant(t, "the question", b.get(t, shop+"/disconnect"), http.StatusOK, "Disconnect "+s.fake.URL()+"?", `action="`+shop+`/disconnect"`, "Cancel")
	if loc := lpLocation(t, b.post(t, shop+"/disconnect", nil)); loc != shop {
		t.Fatalf("disconnected, then to %q", loc)
	}
	r = b.get(t, shop)
	lpWant(t, "disconnected", r, http.StatusOK, "Disconnected: Coupongate no longer hears from the shop")
	if strings.Contains(string(r.Body), "Reconcile now") || strings.Contains(string(r.Body), "Push list") {
		t.Error("a disconnected shop still offers Reconcile now or the push form")
	}
	r = b.post(t, shop+"/reconcile", nil)
	lpWant(t, "reconcile a disconnected shop", r, http.StatusConflict, "Only an active shop can be reconciled")

	// The app authorization: the browser goes to the store's authorize page.
	r = b.post(t, "/app/shops/woocommerce/authorize", url.Values{"site_url": {s.fake.URL()}})
	if loc := lpLocation(t, r); !strings.HasPrefix(loc, s.fake.URL()+"/wc-auth/v1/authorize?") || !strings.Contains(loc, url.QueryEscape("/app/shops?woocommerce=returned")) {
		t.Errorf("Connect with WooCommerce goes to %q", loc)
	}
	r = b.post(t, "/app/shops/woocommerce/authorize", url.Values{"site_url": {"shop"}})
	lpWant(t, "authorize a bad address", r, http.StatusUnprocessableEntity)
	lpFieldError(t, r, "authorize-site-url", "authorize_site_url", "Enter the store's address, such as https://shop.example.com.")
	lpWant(t, "back from the store", b.get(t, "/app/shops?woocommerce=returned&success=1"), http.StatusOK, "The store approved Coupongate")
	lpWant(t, "refused at the store", b.get(t, "/app/shops?woocommerce=returned&success=0"), http.StatusOK, "The store did not approve Coupongate")
}

// TestShopPagesShowRefusedCodes: a push's page lists the codes the shop refused with the shop's
// reasons, everything the merchant or the shop wrote as text, and follows the push (data-poll)
// while it runs.
func TestShopPagesShowRefusedCodes(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Refused Codes")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	shopName := testShop("refused")
	conn := connectShop(t, h, m.ID, shopName)
	list := h.CreateList(t, m, map[string]any{"name": "<svg/onload=alert(1)> list"})
	hostile := "<svg/onload=alert(1)>"
	importByHand(t, h, m, list, "test", "OK-1", hostile, "REFUSED-3")

	loc := lpLocation(t, b.post(t, "/app/shops/"+conn.String()+"/push", url.Values{"list_id": {list}, "title": {"<i>Ten</i>"},
		"value_type": {"fixed_amount"}, "value": {"4,50"}}))
	// The worker's part, as the Shopify pusher records it: one code pushed, two refused.
	ctx := context.Background()
	ref := core.PushRef{MerchantID: uuid.MustParse(m.ID), ListID: uuid.MustParse(list), ConnectionID: conn}
	codes, err := h.App.DB.ClaimPushCodes(ctx, ref, 10)
	if err != nil || len(codes) != 3 {
		t.Fatalf("claim: %v %v", codes, err)
	}
	reasons := map[string]string{hostile: "Code <b>contains</b> invalid characters", "REFUSED-3": "Code has already been taken"}
	var outcomes []core.PushOutcome
	for _, c := range codes {
		if reason, ok := reasons[c.Code]; ok {
			outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Error: reason})
		} else {
			outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: "gid://shopify/DiscountRedeemCode/1"})
		}
	}
	if err := h.App.DB.FinishPushCodes(ctx, ref, outcomes); err != nil {
		t.Fatal(err)
	}

	r := b.get(t, loc)
	lpWant(t, "the push", r, http.StatusOK, "<dt>Pushed</dt><dd>1</dd>", "<dt>Failed</dt><dd>2</dd>", "Waiting to start",
		`data-poll="`+loc+`"`, "<i>Ten</i>: 4.5 off (in the shop's currency)")
	body := string(r.Body)
	for _, want := range []string{tmplEscape(hostile) + "</a>", tmplEscape("Code <b>contains</b> invalid characters"),
		"REFUSED-3</a>", "Code has already been taken", tmplEscape("<svg/onload=alert(1)> list") + " in " + shopName} {
		if !strings.Contains(body, want) {
			t.Errorf("the push's page does not hold %q", want)
		}
	}
	for _, raw := range []string{hostile, "<b>contains</b>", "<i>Ten</i>"} {
		if strings.Contains(body, raw) {
			t.Errorf("the push's page holds %q unescaped", raw)
		}
	}
	shop := b.get(t, "/app/shops/"+conn.String())
	if strings.Contains(string(shop.Body), hostile) || !strings.Contains(string(shop.Body), tmplEscape(hostile)) {
		t.Error("the shop's page does not show the list's name escaped")
	}
}
