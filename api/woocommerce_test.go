package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// wooStack is a Coupongate with its worker and a fake WooCommerce store over HTTPS.
type wooStack struct {
	*apptest.Harness
	fake *woofake.Fake
}

func startWooStack(t *testing.T, cfg woofake.Config) wooStack {
	t.Helper()
	fake := woofake.New(t, cfg)
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) { c.ReconcileInterval = time.Hour }})
	// The gateway and worker reach the store over its test certificate.
	h.UseWooCommerceClient(fake.Client())
	return wooStack{Harness: h, fake: fake}
}

func (s wooStack) connect(t *testing.T, m apptest.Merchant, body map[string]any, want int) apptest.Response {
	t.Helper()
	r := s.Admin(t, m, http.MethodPost, "/api/v1/connections/woocommerce", body)
	if r.Status != want {
		t.Fatalf("connect: %d, want %d: %s", r.Status, want, r.Body)
	}
	return r
}

func (s wooStack) keys() map[string]any {
	return map[string]any{"site_url": s.fake.URL(), "consumer_key": woofake.DefaultConsumerKey, "consumer_secret": woofake.DefaultConsumerSecret}
}

// wooOrder is a WooCommerce REST order that used code.
func wooOrder(id int64, status, code string) map[string]any {
	lines := []any{}
	if code != "" {
		lines = append(lines, map[string]any{"id": id * 10, "code": code, "discount": "5.00", "discount_tax": "0.00",
			"meta_data": []any{map[string]any{"id": 1, "key": "coupon_info", "value": `[0,"` + code + `","percent",10]`}}})
	}
	return map[string]any{"id": id, "number": fmt.Sprint(id), "status": status, "currency": "EUR", "customer_id": "0",
		"billing": map[string]any{"email": "ada@example.com"}, "coupon_lines": lines,
		"date_modified_gmt": time.Now().UTC().Format("2006-01-02T15:04:05")}
}

// TestWooCommerceConnectPushRedeem: a merchant connects a store with keys, pushes a list's codes
// as coupons, and paid orders redeem them, whether their delivery arrives or only reconciliation
// finds them; disconnecting deletes the webhooks and forgets the keys.
func TestWooCommerceConnectPushRedeem(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{TLS: true})
	ctx := context.Background()
	db := s.App.DB.Pool()
	m := s.NewMerchant(t, "Woo Shop")

	// Refusals: keys the store refuses, a store that is not there, an address that is not one.
	bad := s.keys()
	bad["consumer_secret"] = "cs_wrong"
	if r := s.connect(t, m, bad, http.StatusUnprocessableEntity); r.ErrorCode() != "invalid_credentials" {
		t.Fatalf("wrong keys: %s", r.Body)
	}
	gone := s.keys()
	gone["site_url"] = "https://127.0.0.1:1"
	if r := s.connect(t, m, gone, http.StatusUnprocessableEntity); r.ErrorCode() != "store_unreachable" {
		t.Fatalf("no store: %s", r.Body)
	}
	for _, site := range []string{"ftp://shop.example.com", "shop", ""} {
		b := s.keys()
		b["site_url"] = site
		s.connect(t, m, b, http.StatusUnprocessableEntity)
	}
	paidBad := s.keys()
	paidBad["paid_statuses"] = []string{"pending"}
	s.connect(t, m, paidBad, http.StatusUnprocessableEntity)

	// Connected: the keys are sealed, two webhooks exist, each pinged us and got its 200.
	var conn struct {
		ID           string   `json:"id"`
		State        string   `json:"state"`
		Platform     string   `json:"platform"`
		PaidStatuses []string `json:"paid_statuses"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)
	if conn.State != "active" || conn.Platform != "woocommerce" || !slices.Equal(conn.PaidStatuses, woocommerce.DefaultPaidStatuses) {
		t.Fatalf("connection: %+v", conn)
	}
	hooks := s.fake.Webhooks()
	if len(hooks) != 2 || hooks[0].Secret == hooks[1].Secret {
		t.Fatalf("webhooks: %+v", hooks)
	}
	for _, w := range hooks {
		if !strings.HasSuffix(w.DeliveryURL, "/webhooks/woocommerce/"+conn.ID) || w.PendingDelivery || w.Status != "active" {
			t.Fatalf("webhook %+v: not delivering to the connection, or its ping failed", w)
		}
	}
	var sealed []byte
	if err := db.QueryRow(ctx, `SELECT credentials FROM connections WHERE id = $1`, conn.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(woofake.DefaultConsumerSecret)) || bytes.Contains(sealed, []byte(hooks[0].Secret)) {
		t.Fatal("the consumer secret or a webhook secret is stored in clear")
	}
	// Connecting the same store again renews the connection: still two webhooks, and the paid
	// statuses chosen before stay unless new ones are given.
	withPaid := s.keys()
	withPaid["paid_statuses"] = []string{"processing", "completed"}
	s.connect(t, m, withPaid, http.StatusOK)
	s.connect(t, m, s.keys(), http.StatusOK).JSON(t, &conn)
	if hooks = s.fake.Webhooks(); len(hooks) != 2 {
		t.Fatalf("after reconnecting: %d webhooks", len(hooks))
	}
	if !slices.Equal(conn.PaidStatuses, []string{"processing", "completed"}) {
		t.Fatalf("paid statuses after a reconnect without them: %v", conn.PaidStatuses)
	}
	// The same address with a trailing slash is the same store.
	slash := s.keys()
	slash["site_url"] = s.fake.URL() + "/"
	s.connect(t, m, slash, http.StatusOK)
	if hooks = s.fake.Webhooks(); len(hooks) != 2 {
		t.Fatalf("after reconnecting: %d webhooks", len(hooks))
	}

	// Push: every code a coupon, in lower case as WooCommerce keeps them.
	expires := time.Now().Add(60 * 24 * time.Hour).UTC().Truncate(time.Second)
	list := s.CreateList(t, m, map[string]any{"name": "Woo", "expires_at": expires.Format(time.RFC3339)})
	codes := numbered("WOO-", 250)
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "c.txt", strings.Join(codes, "\n"))).ID)
	push := map[string]any{"connection_id": conn.ID, "discount": map[string]any{"title": "Ten", "value_type": "percentage", "value": 10}}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", push); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	waitPushOf(t, s.Harness, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 250 })
	coupons := s.fake.Coupons()
	if len(coupons) != 250 {
		t.Fatalf("%d coupons in the store, want 250", len(coupons))
	}
	var c woofake.Coupon
	for _, cp := range coupons {
		if cp.Code == "woo-0001" { // the store keeps codes in lower case
			c = cp
		}
	}
	if c.Code != "woo-0001" || c.DiscountType != "percent" || !strings.HasPrefix(c.Amount, "10") || c.UsageLimit != 1 || !c.IndividualUse ||
		c.DateExpires == nil || !c.DateExpires.Equal(expires) {
		t.Fatalf("coupon: %+v", c)
	}

	// A code the store has already is looked up, not created twice.
	existing := s.fake.AddCoupon(woofake.Coupon{Code: "woo-extra", DiscountType: "percent", Amount: "10"})
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "x.txt", "WOO-EXTRA")).ID)
	waitPushOf(t, s.Harness, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 251 })
	if n := len(s.fake.Coupons()); n != 251 {
		t.Fatalf("%d coupons after a code the store had, want 251", n)
	}
	var remote string
	if err := db.QueryRow(ctx, `SELECT s.remote_id FROM code_pushes s JOIN codes k USING (merchant_id, list_id, seq)
		WHERE k.code = 'WOO-EXTRA'`).Scan(&remote); err != nil || remote != fmt.Sprint("existing:", existing) {
		t.Fatalf("WOO-EXTRA recorded as coupon %q (%v), want %d", remote, err, existing)
	}

	// A list whose codes differ only by case cannot go to WooCommerce.
	clash := s.CreateList(t, m, map[string]any{"name": "Clash"})
	importByHand(t, s.Harness, m, clash, "test", "Summer", "SUMMER", "Winter")
	r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+clash+"/connections", push)
	if r.Status != http.StatusUnprocessableEntity || r.ErrorCode() != "codes_differ_by_case" || !strings.Contains(string(r.Body), "Summer, SUMMER") {
		t.Fatalf("clashing list: %d %s", r.Status, r.Body)
	}

	// A paid order's delivery redeems the code it used (sent in lower case), once.
	s.fake.AddOrder(wooOrder(5001, "processing", "woo-0003"))
	for range 2 {
		res, err := s.fake.DeliverOrder("order.updated", int64(5001))
		if err != nil || len(res) != 1 || res[0].Status != http.StatusOK {
			t.Fatalf("delivery: %+v %v", res, err)
		}
	}
	s.fake.AddOrder(wooOrder(5002, "pending", "woo-0004"))
	if _, err := s.fake.DeliverOrder("order.created", int64(5002)); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, s.Harness, m.ID)
	if u := codeUses(t, s.Harness, m, "WOO-0003"); u != 1 {
		t.Fatalf("paid order: %d uses", u)
	}
	if u := codeUses(t, s.Harness, m, "WOO-0004"); u != 0 {
		t.Fatalf("pending order: %d uses", u)
	}
	// The real fixture, replayed through the store.
	importByHand(t, s.Harness, m, list, "test", "30$off")
	fixture, err := os.ReadFile(filepath.Join("..", "integrations", "woocommerce", "testdata", "orders", "order-processing-coupon.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.fake.DeliverOrder("order.updated", fixture); err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("fixture delivery: %+v %v", res, err)
	}
	waitDeliveries(t, s.Harness, m.ID)
	if u := codeUses(t, s.Harness, m, "30$off"); u != 1 {
		t.Fatalf("the fixture's paid order: %d uses", u)
	}

	// A paid order whose delivery never came, and a webhook WooCommerce disabled: reconciliation
	// counts the order and re-activates the webhook.
	s.fake.AddOrder(wooOrder(5003, "completed", "woo-0005"))
	if err := s.fake.SetWebhookStatus(hooks[1].ID, "disabled"); err != nil {
		t.Fatal(err)
	}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/connections/"+conn.ID+"/reconcile", nil); r.Status != http.StatusAccepted {
		t.Fatalf("reconcile: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 10*time.Second, "reconciliation to count the order and re-activate the webhook", func() bool {
		active := true
		for _, w := range s.fake.Webhooks() {
			active = active && w.Status == "active"
		}
		return active && codeUses(t, s.Harness, m, "WOO-0005") == 1
	})
	if u := codeUses(t, s.Harness, m, "WOO-0003"); u != 1 {
		t.Fatalf("reconciliation counted an order its delivery had counted: %d uses", u)
	}

	// A removed code whose coupon the store had before is left alone there: it is not ours.
	if r := s.Admin(t, m, http.MethodDelete, codePath(list, "WOO-EXTRA"), nil); r.Status >= 300 {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	// A removed code's coupon is deleted from the store.
	if r := s.Admin(t, m, http.MethodDelete, codePath(list, "WOO-0010"), nil); r.Status >= 300 {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 10*time.Second, "the removed code's coupon to go", func() bool {
		for _, c := range s.fake.Coupons() {
			if c.Code == "woo-0010" && c.Status != "trash" {
				return false
			}
		}
		return true
	})
	kept := false
	for _, c := range s.fake.Coupons() {
		kept = kept || (c.ID == existing && c.Status != "trash")
	}
	if !kept {
		t.Fatal("the store's own coupon was deleted with the removed code")
	}

	// Disconnect: webhooks deleted, keys forgotten; deliveries for it are refused from now on.
	if r := s.Admin(t, m, http.MethodDelete, "/api/v1/connections/"+conn.ID, nil); r.Status != http.StatusOK {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 10*time.Second, "the webhooks to be deleted and the keys forgotten", func() bool {
		var forgotten bool
		_ = db.QueryRow(ctx, `SELECT credentials IS NULL FROM connections WHERE id = $1`, conn.ID).Scan(&forgotten)
		return forgotten && len(s.fake.Webhooks()) == 0
	})
}

// TestWooCommerceWebhookIntake: pings, signatures, unknown connections and oversized bodies.
func TestWooCommerceWebhookIntake(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{TLS: true})
	m := s.NewMerchant(t, "Woo Intake")
	var conn struct {
		ID string `json:"id"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)
	secret := s.fake.Webhooks()[0].Secret
	post := func(path string, body []byte, header http.Header) apptest.Response {
		t.Helper()
		return s.Do(t, apptest.Request{Method: http.MethodPost, Path: path, Body: bytes.NewReader(body), ContentType: header.Get("Content-Type"), Header: header})
	}
	path := "/webhooks/woocommerce/" + conn.ID
	signed := func(body []byte, secret string) http.Header {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set(woocommerce.HeaderTopic, "order.updated")
		h.Set(woocommerce.HeaderSignature, woocommerce.SignWebhook(body, secret))
		h.Set(woocommerce.HeaderWebhookID, "1")
		return h
	}
	ping := http.Header{}
	ping.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, p := range []string{path, "/webhooks/woocommerce/" + uuid.NewString(), "/webhooks/woocommerce/not-a-uuid"} {
		if r := post(p, []byte("webhook_id=42"), ping); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "pong") {
			t.Fatalf("ping to %s: %d %s", p, r.Status, r.Body)
		}
	}
	body := []byte(`{"id": 9001, "status": "processing", "coupon_lines": []}`)
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		want   int
		answer string
	}{
		{"signed", path, signed(body, secret), http.StatusOK, "accepted"},
		{"the same body again", path, signed(body, secret), http.StatusOK, "duplicate"},
		{"wrong secret", path, signed(body, "not-the-secret"), http.StatusUnauthorized, "invalid_signature"},
		{"no signature", path, func() http.Header { h := signed(body, secret); h.Del(woocommerce.HeaderSignature); return h }(), http.StatusUnauthorized, "invalid_signature"},
		{"unknown connection", "/webhooks/woocommerce/" + uuid.NewString(), signed(body, secret), http.StatusNotFound, "connection_not_found"},
	} {
		r := post(tc.path, body, tc.header)
		if r.Status != tc.want || !strings.Contains(string(r.Body), tc.answer) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.Body, tc.want, tc.answer)
		}
	}
	big := bytes.Repeat([]byte("x"), woocommerce.MaxWebhookBytes+1)
	if r := post(path, big, signed(big, secret)); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized delivery: %d", r.Status)
	}
}

// TestWooCommerceAppAuthorization connects a store through /wc-auth/v1/authorize: the callback
// takes the keys only with the state Coupongate issued, and the worker creates the webhooks.
func TestWooCommerceAppAuthorization(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{TLS: true})
	m := s.NewMerchant(t, "Woo Authorized")
	noRedirect := &http.Client{Transport: s.fake.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	r := s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/woocommerce/connect?site_url=" + url.QueryEscape(s.fake.URL()) +
		"&return_url=" + url.QueryEscape("https://merchant.example.com/done"), APIKey: m.APIKey})
	if r.Status != http.StatusFound {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	authorize, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(authorize.String(), s.fake.URL()+"/wc-auth/v1/authorize?") ||
		authorize.Query().Get("scope") != "read_write" || authorize.Query().Get("callback_url") != s.URL+"/woocommerce/callback" {
		t.Fatalf("authorize URL: %s", r.Header.Get("Location"))
	}
	if r := s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/woocommerce/connect?site_url=" + url.QueryEscape(s.fake.URL())}); r.Status != http.StatusUnauthorized {
		t.Fatalf("connect without a key: %d", r.Status)
	}

	// A forged user_id: the callback refuses, and WooCommerce deletes the key it made.
	forged := authorize.Query()
	forged.Set("user_id", "forged")
	resp, err := noRedirect.Get(s.fake.URL() + "/wc-auth/v1/authorize?" + forged.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound {
		t.Fatal("the store redirected as if the forged authorization had worked")
	}

	// The merchant approves: the keys come to the callback, the webhooks follow.
	resp, err = noRedirect.Get(authorize.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://merchant.example.com/done?success=1") {
		t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	apptest.Eventually(t, 10*time.Second, "the store's webhooks", func() bool { return len(s.fake.Webhooks()) == 2 })
	r = get(t, s.Harness, m, "/api/v1/connections")
	if !strings.Contains(string(r.Body), `"platform":"woocommerce"`) || !strings.Contains(string(r.Body), `"state":"active"`) {
		t.Fatalf("connections: %s", r.Body)
	}
	if n := len(s.fake.Keys()); n != 2 { // the fake's own key and the authorized one
		t.Fatalf("%d keys in the store, want 2 (the forged authorization's key deleted)", n)
	}
	// The same authorization posted again (a replay of the callback) is refused.
	replay := map[string]any{"key_id": 9, "user_id": authorize.Query().Get("user_id"), "consumer_key": woofake.DefaultConsumerKey,
		"consumer_secret": woofake.DefaultConsumerSecret, "key_permissions": "read_write"}
	if r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/woocommerce/callback", JSON: replay}); r.Status != http.StatusUnauthorized {
		t.Fatalf("replayed callback: %d %s", r.Status, r.Body)
	}
}

// TestWooCommercePrivateAddressRefused: unless the operator allows it, a store on a loopback or
// private address is not called.
func TestWooCommercePrivateAddressRefused(t *testing.T) {
	t.Parallel()
	fake := woofake.New(t, woofake.Config{TLS: true})
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.AllowPrivateNetworks = false }})
	m := h.NewMerchant(t, "Woo Private")
	for _, site := range []string{fake.URL(), "https://10.1.2.3", "https://localhost:8443", "http://169.254.169.254"} {
		r := h.Admin(t, m, http.MethodPost, "/api/v1/connections/woocommerce", map[string]any{"site_url": site,
			"consumer_key": woofake.DefaultConsumerKey, "consumer_secret": woofake.DefaultConsumerSecret})
		if r.Status != http.StatusUnprocessableEntity || r.ErrorCode() != "invalid_site_url" {
			t.Errorf("%s: %d %s", site, r.Status, r.Body)
		}
	}
	if fake.Requests() != 0 {
		t.Fatalf("the store was called %d times", fake.Requests())
	}
}

// waitPushOf waits until the list's one push satisfies want.
func waitPushOf(t *testing.T, h *apptest.Harness, m apptest.Merchant, list string, want func(pushState) bool) pushState {
	t.Helper()
	var last pushState
	apptest.Eventually(t, 30*time.Second, "the push to settle", func() bool {
		var page struct {
			Items []pushState `json:"items"`
		}
		get(t, h, m, "/api/v1/lists/"+list+"/connections").JSON(t, &page)
		if len(page.Items) != 1 {
			return false
		}
		last = page.Items[0]
		return want(last)
	})
	return last
}

// TestWooCommercePlainHTTPStore: a store without TLS is called with OAuth 1.0a (the fake refuses
// anything else over plain HTTP), and a push rides out 429 and 503 answers.
func TestWooCommercePlainHTTPStore(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{})
	m := s.NewMerchant(t, "Woo Plain")
	var conn struct {
		ID string `json:"id"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)
	if len(s.fake.Webhooks()) != 2 {
		t.Fatalf("webhooks: %+v", s.fake.Webhooks())
	}
	list := s.CreateList(t, m, map[string]any{"name": "Plain", "uses_per_code": 3})
	codes := numbered("PLAIN-", 230)
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "p.txt", strings.Join(codes, "\n"))).ID)
	s.fake.FailNext(1, http.StatusTooManyRequests, "1")
	s.fake.FailNext(1, http.StatusServiceUnavailable, "")
	push := map[string]any{"connection_id": conn.ID, "discount": map[string]any{"title": "Five", "value_type": "fixed_amount", "value": 5,
		"applies_once_per_customer": true}}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", push); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	p := waitPushOf(t, s.Harness, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 230 })
	coupons := s.fake.Coupons()
	if p.Failed != 0 || len(coupons) != 230 {
		t.Fatalf("push %+v, %d coupons", p, len(coupons))
	}
	c := coupons[0]
	if c.DiscountType != "fixed_cart" || !strings.HasPrefix(c.Amount, "5") || c.UsageLimit != 3 || c.UsageLimitPerUser != 1 {
		t.Fatalf("coupon: %+v", c)
	}
}

// TestWooCommerceCodeCaseNeverPushed: WooCommerce sends coupon codes in lower case. A code of a
// case-sensitive list that was never pushed (the merchant made the coupon in the store by hand)
// is still found in its upper-case form, and one whose push is still submitted through the push;
// a repeated delivery counts once.
func TestWooCommerceCodeCaseNeverPushed(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{TLS: true})
	ctx := context.Background()
	db := s.App.DB.Pool()
	m := s.NewMerchant(t, "Woo Case")
	var conn struct {
		ID string `json:"id"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)

	list := s.CreateList(t, m, map[string]any{"name": "Spring"})
	importByHand(t, s.Harness, m, list, "test", "SPRING-10")
	s.fake.AddCoupon(woofake.Coupon{Code: "spring-10", DiscountType: "percent", Amount: "10"})
	s.fake.AddOrder(wooOrder(6001, "processing", "spring-10"))
	for range 2 {
		res, err := s.fake.DeliverOrder("order.updated", int64(6001))
		if err != nil || len(res) != 1 || res[0].Status != http.StatusOK {
			t.Fatalf("delivery: %+v %v", res, err)
		}
		waitDeliveries(t, s.Harness, m.ID)
		if u := codeUses(t, s.Harness, m, "SPRING-10"); u != 1 {
			t.Fatalf("a paid order with a never-pushed upper-case code: %d uses, want 1", u)
		}
	}

	// A mixed-case code whose push row is still submitted (the batch's answer never came) is
	// found through the push.
	mixed := s.CreateList(t, m, map[string]any{"name": "Mixed"})
	importByHand(t, s.Harness, m, mixed, "test", "Mixed-Case-7")
	if _, err := db.Exec(ctx, `INSERT INTO list_connections (merchant_id, list_id, connection_id, state)
		VALUES ($1, $2, $3, 'stopped')`, m.ID, mixed, conn.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO code_pushes (merchant_id, list_id, connection_id, seq, state, code_key)
		SELECT merchant_id, list_id, $3, seq, 'submitted', lower(code) FROM codes WHERE merchant_id = $1 AND list_id = $2`,
		m.ID, mixed, conn.ID); err != nil {
		t.Fatal(err)
	}
	s.fake.AddOrder(wooOrder(6002, "completed", "mixed-case-7"))
	if res, err := s.fake.DeliverOrder("order.updated", int64(6002)); err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("delivery: %+v %v", res, err)
	}
	waitDeliveries(t, s.Harness, m.ID)
	if u := codeUses(t, s.Harness, m, "Mixed-Case-7"); u != 1 {
		t.Fatalf("a paid order with a code whose push is submitted: %d uses, want 1", u)
	}
}

// TestWooCommerceLostBatchAnswer: a batch whose answer was lost (the store created the coupons,
// the push never heard) is sent again; the store answers that the codes exist, and the coupons,
// which carry the push's tag, are recorded as the push's own: removing a code from the list
// deletes its coupon. A coupon the merchant made by hand (no tag) is never deleted.
func TestWooCommerceLostBatchAnswer(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{TLS: true})
	ctx := context.Background()
	db := s.App.DB.Pool()
	m := s.NewMerchant(t, "Woo Lost Answer")
	var conn struct {
		ID string `json:"id"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)
	list := s.CreateList(t, m, map[string]any{"name": "Lost"})
	handMade := s.fake.AddCoupon(woofake.Coupon{Code: "lost-hand", DiscountType: "percent", Amount: "10"})
	importByHand(t, s.Harness, m, list, "test", "LOST-1", "LOST-2", "LOST-HAND")
	push := map[string]any{"connection_id": conn.ID, "discount": map[string]any{"title": "Ten", "value_type": "percentage", "value": 10}}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", push); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	waitPushOf(t, s.Harness, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 3 })
	tag := woocommerce.PushTag(uuid.MustParse(list), uuid.MustParse(conn.ID))
	for _, c := range s.fake.Coupons() {
		v, ok := "", false
		for _, md := range c.MetaData {
			if md.Key == woocommerce.PushTagKey {
				v, ok = md.Value, true
			}
		}
		if c.ID == handMade && ok {
			t.Fatalf("the hand-made coupon got the push's tag: %+v", c)
		}
		if c.ID != handMade && (!ok || v != tag) {
			t.Fatalf("coupon %s without the push's tag: %+v", c.Code, c.MetaData)
		}
	}

	// The batch's answer is lost: the codes stay submitted with no batch, and the push runs again.
	if _, err := db.Exec(ctx, `UPDATE code_pushes s SET state = 'submitted', batch_id = '', remote_id = ''
		FROM codes k WHERE k.merchant_id = s.merchant_id AND k.list_id = s.list_id AND k.seq = s.seq
		  AND s.merchant_id = $1 AND s.list_id = $2`, m.ID, list); err != nil {
		t.Fatal(err)
	}
	if err := s.App.WooCommercePusher.RunPush(ctx, uuid.MustParse(m.ID), uuid.MustParse(list), uuid.MustParse(conn.ID)); err != nil {
		t.Fatal(err)
	}
	remotes := map[string]string{}
	rows, err := db.Query(ctx, `SELECT k.code, s.state || ' ' || s.remote_id FROM code_pushes s JOIN codes k USING (merchant_id, list_id, seq)
		WHERE s.merchant_id = $1 AND s.list_id = $2`, m.ID, list)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var code, remote string
		if err := rows.Scan(&code, &remote); err != nil {
			t.Fatal(err)
		}
		remotes[code] = remote
	}
	if rows.Err() != nil || strings.Contains(remotes["LOST-1"], "existing:") || !strings.HasPrefix(remotes["LOST-1"], "pushed ") ||
		remotes["LOST-HAND"] != fmt.Sprint("pushed existing:", handMade) {
		t.Fatalf("after the rerun: %v (%v)", remotes, rows.Err())
	}
	if n := len(s.fake.Coupons()); n != 3 {
		t.Fatalf("%d coupons after the rerun, want 3", n)
	}

	// Removed from the list: the push's coupon goes, the hand-made one stays.
	for _, code := range []string{"LOST-1", "LOST-HAND"} {
		if r := s.Admin(t, m, http.MethodDelete, codePath(list, code), nil); r.Status >= 300 {
			t.Fatalf("remove %s: %d %s", code, r.Status, r.Body)
		}
	}
	apptest.Eventually(t, 10*time.Second, "the removed code's coupon to go", func() bool {
		var deleted int
		_ = db.QueryRow(ctx, `SELECT count(*) FROM code_pushes WHERE merchant_id = $1 AND list_id = $2 AND state = 'deleted'`, m.ID, list).Scan(&deleted)
		return deleted == 2
	})
	codes := map[string]bool{}
	for _, c := range s.fake.Coupons() {
		codes[c.Code] = c.Status != "trash"
	}
	if codes["lost-1"] || !codes["lost-2"] || !codes["lost-hand"] {
		t.Fatalf("coupons in the store after removing LOST-1 and LOST-HAND: %v", codes)
	}
}
