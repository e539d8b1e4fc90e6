package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// shopifyStack is a Coupongate with its worker, talking to a fake Shopify.
type shopifyStack struct {
	*apptest.Harness
	fake *shopifyfake.Fake
}

func startShopifyStack(t *testing.T, cfg shopifyfake.Config) shopifyStack {
	t.Helper()
	fake := shopifyfake.New(t, cfg)
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.ShopifyAPIKey = fake.Config().ClientID
		c.ShopifyAPISecret = fake.Config().ClientSecret
		c.ShopifyAdminURL = fake.URL() + "/{shop}"
		c.ReconcileInterval = time.Hour
	}})
	return shopifyStack{Harness: h, fake: fake}
}

// install connects shop to the merchant with a grant the fake issued, as the OAuth callback does.
func (s shopifyStack) install(t *testing.T, m apptest.Merchant, shop string, g shopify.Grant) uuid.UUID {
	t.Helper()
	conn := connectShop(t, s.Harness, m.ID, shop)
	if g.Credentials.AccessToken == "" {
		g = shopify.Grant{Credentials: core.Credentials{AccessToken: s.fake.IssueToken(shop)}, Scope: "write_discounts,read_orders,read_discounts"}
	}
	route, created, err := s.App.Gateway.ShopifyInstaller.Install(context.Background(), shop, g)
	if err != nil {
		t.Fatal(err)
	}
	if created || route.ConnectionID != conn {
		t.Fatalf("install made a new merchant (%v) or connection (%s, want %s)", created, route.ConnectionID, conn)
	}
	return conn
}

// oauthGrant walks the fake's authorize and token endpoints for an expiring offline token pair.
func (s shopifyStack) oauthGrant(t *testing.T, shop string) shopify.Grant {
	t.Helper()
	app := s.App.Gateway.ShopifyInstaller.App()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(app.AuthorizeURL(shop, "https://coupongate.example/shopify/callback", "nonce"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize did not redirect with a code: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	g, err := app.ExchangeCode(context.Background(), shop, loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Credentials.RefreshToken == "" || g.Credentials.ExpiresAt == nil {
		t.Fatalf("the code exchange did not give an expiring token pair: %+v", g)
	}
	return g
}

type pushState struct {
	ConnectionID string `json:"connection_id"`
	State        string `json:"state"`
	DiscountID   string `json:"discount_id"`
	Pushed       int64  `json:"pushed"`
	Failed       int64  `json:"failed"`
	Pending      int64  `json:"pending"`
	Deleted      int64  `json:"deleted"`
	Error        string `json:"error"`
}

func (s shopifyStack) pushes(t *testing.T, m apptest.Merchant, list string) []pushState {
	t.Helper()
	r := get(t, s.Harness, m, "/api/v1/lists/"+list+"/connections")
	if r.Status != http.StatusOK {
		t.Fatalf("list pushes: %d %s", r.Status, r.Body)
	}
	var page struct {
		Items []pushState `json:"items"`
	}
	r.JSON(t, &page)
	return page.Items
}

// waitPush waits until the list's one push is active with want codes pushed and none pending.
func (s shopifyStack) waitPush(t *testing.T, m apptest.Merchant, list string, want func(pushState) bool) pushState {
	t.Helper()
	var last pushState
	apptest.Eventually(t, 30*time.Second, "the push to settle", func() bool {
		ps := s.pushes(t, m, list)
		if len(ps) != 1 {
			return false
		}
		last = ps[0]
		return want(last)
	})
	return last
}

func pushBody(conn uuid.UUID) map[string]any {
	return map[string]any{"connection_id": conn.String(), "discount": map[string]any{
		"title": "Welcome 10", "value_type": "percentage", "value": 10, "applies_once_per_customer": true}}
}

// orderWebhook is a paid (or not) order that used code at checkout, as Shopify sends it.
func orderWebhook(orderID int64, financialStatus, code string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": orderID, "name": fmt.Sprintf("#%d", orderID%10000), "email": "ada@example.com",
		"financial_status": financialStatus, "cancelled_at": nil,
		"discount_codes":        []any{map[string]any{"code": code, "amount": "10.00", "type": "percentage"}},
		"discount_applications": []any{map[string]any{"type": "discount_code", "code": code, "value": "10.0", "value_type": "percentage"}},
	})
	return b
}

// TestShopifyInstallPushAndRedeem goes from install to a paid Shopify order redeeming a pushed
// code: the discount and every code land in the fake shop once, codes added later follow,
// removed codes are deleted, a paid order webhook and a reconciled order both redeem, and
// disconnecting removes the webhooks and forgets the token.
func TestShopifyInstallPushAndRedeem(t *testing.T) {
	t.Parallel()
	s := startShopifyStack(t, shopifyfake.Config{BulkDelay: 20 * time.Millisecond})
	ctx := context.Background()
	m := s.NewMerchant(t, "Push Shop")
	const shop = "push-shop.myshopify.com"
	list := s.CreateList(t, m, map[string]any{"name": "Shopify welcome", "expires_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)})
	first := numbered("WELCOME-", 250)
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "codes.txt", strings.Join(first, "\n"))).ID)

	conn := s.install(t, m, shop, shopify.Grant{})
	if subs := s.fake.WebhookSubscriptions(shop); len(subs) != len(shopify.WebhookTopics) {
		t.Fatalf("install subscribed %d webhooks, want %d: %+v", len(subs), len(shopify.WebhookTopics), subs)
	}
	var sealed []byte
	if err := s.App.DB.Pool().QueryRow(ctx, `SELECT credentials FROM connections WHERE merchant_id = $1 AND id = $2`, m.ID, conn).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || strings.Contains(string(sealed), "shpat_") {
		t.Fatalf("the access token is not sealed at rest: %q", sealed)
	}

	r := get(t, s.Harness, m, "/api/v1/connections")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"state":"active"`) || !strings.Contains(string(r.Body), shop) {
		t.Fatalf("connections: %d %s", r.Status, r.Body)
	}

	r = s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", pushBody(conn))
	if r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	p := s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 250 })
	if p.Failed != 0 || p.Pending != 0 || p.DiscountID == "" {
		t.Fatalf("push after the run: %+v", p)
	}
	d, ok := s.fake.Discount(shop, p.DiscountID)
	if !ok || d.Title != "Welcome 10" || d.Percentage == nil || *d.Percentage != 0.1 || d.UsageLimit == nil || *d.UsageLimit != 1 ||
		!d.AppliesOncePerCustomer || d.EndsAt == nil {
		t.Fatalf("the shop's discount: %+v (found %v)", d, ok)
	}
	inShop := s.fake.RedeemCodes(shop, p.DiscountID)
	if !slices.Equal(inShop, sorted(first)) {
		t.Fatalf("the shop holds %d codes, want the list's 250", len(inShop))
	}
	detail := get(t, s.Harness, m, codePath(list, first[7]))
	if !strings.Contains(string(detail.Body), `"type":"pushed"`) {
		t.Fatalf("the code's timeline has no pushed event: %s", detail.Body)
	}

	// Asking again pushes nothing twice.
	r = s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", pushBody(conn))
	if r.Status != http.StatusOK {
		t.Fatalf("second push: %d %s", r.Status, r.Body)
	}
	s.Drain(t, 30*time.Second) // whatever the second push queued has run
	if n := len(s.fake.RedeemCodes(shop, p.DiscountID)); n != 250 {
		t.Fatalf("after a second push the shop holds %d codes", n)
	}

	// Codes imported later follow; a removed code is deleted from the shop.
	later := numbered("LATER-", 120)
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "more.txt", strings.Join(later, "\n"))).ID)
	s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 370 })
	if r := s.Admin(t, m, http.MethodDelete, codePath(list, first[0]), nil); r.Status != http.StatusNoContent && r.Status != http.StatusOK {
		t.Fatalf("remove code: %d %s", r.Status, r.Body)
	}
	s.waitPush(t, m, list, func(p pushState) bool { return p.Deleted == 1 })
	apptest.Eventually(t, 5*time.Second, "the removed code to leave the shop", func() bool {
		return len(s.fake.RedeemCodes(shop, p.DiscountID)) == 369 && !slices.Contains(s.fake.RedeemCodes(shop, p.DiscountID), first[0])
	})

	// A paid order webhook redeems a pushed code, once.
	body := orderWebhook(7001, "paid", first[3])
	for range 2 {
		if r := s.Do(t, shopifyWebhook(s.fake.Config().ClientSecret, "orders/paid", shop, "evt-7001", body)); r.Status != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.Status, r.Body)
		}
	}
	waitDeliveries(t, s.Harness, m.ID)
	if u := codeUses(t, s.Harness, m, first[3]); u != 1 {
		t.Fatalf("paid order: %d uses, want 1", u)
	}

	// A paid order whose webhook never came is found by reconciliation.
	s.fake.AddOrder(shop, shopifyfake.Order{LegacyID: 7002, FinancialStatus: "PAID", DiscountCodes: []string{first[4]}, Email: "bo@example.com"})
	s.fake.AddOrder(shop, shopifyfake.Order{LegacyID: 7003, FinancialStatus: "PENDING", DiscountCodes: []string{first[5]}})
	s.fake.AddOrder(shop, shopifyfake.Order{LegacyID: 7001, FinancialStatus: "PAID", DiscountCodes: []string{first[3]}})
	// A paid order with a manual discount titled with one code's text (which Shopify also lists
	// among the order's discountCodes) and, beyond the first page of its discount applications,
	// another code entered at checkout: only the entered code is redeemed, the manual discount is
	// recorded on its code's timeline.
	s.fake.AddOrder(shop, shopifyfake.Order{LegacyID: 7005, FinancialStatus: "PAID", DiscountApplications: []shopifyfake.DiscountApplication{
		{Kind: shopifyfake.ManualDiscountApplication, Title: first[8]},
		{Kind: shopifyfake.AutomaticDiscountApplication, Title: "Spring sale"},
		{Kind: shopifyfake.AutomaticDiscountApplication, Title: "Free shipping"},
		{Kind: shopifyfake.ScriptDiscountApplication, Title: "Bundle"},
		{Kind: shopifyfake.AutomaticDiscountApplication, Title: "Loyalty"},
		{Kind: shopifyfake.DiscountCodeApplication, Code: first[9]},
	}})
	for range 2 {
		if r := s.Admin(t, m, http.MethodPost, "/api/v1/connections/"+conn.String()+"/reconcile", nil); r.Status != http.StatusAccepted {
			t.Fatalf("reconcile: %d %s", r.Status, r.Body)
		}
		apptest.Eventually(t, 10*time.Second, "reconciliation to redeem the orders", func() bool {
			return codeUses(t, s.Harness, m, first[4]) == 1 && codeUses(t, s.Harness, m, first[9]) == 1
		})
	}
	if u := codeUses(t, s.Harness, m, first[8]); u != 0 {
		t.Fatalf("reconciliation redeemed a manual discount's title (%d uses)", u)
	}
	apptest.Eventually(t, 10*time.Second, "the manual discount on the code's timeline", func() bool {
		return strings.Count(string(get(t, s.Harness, m, codePath(list, first[8])).Body), `"type":"manual_discount"`) == 1
	})
	if u := codeUses(t, s.Harness, m, first[5]); u != 0 {
		t.Fatalf("a pending order redeemed its code (%d uses)", u)
	}
	if u := codeUses(t, s.Harness, m, first[3]); u != 1 {
		t.Fatalf("reconciliation counted an order its webhook had counted: %d uses", u)
	}
	apptest.Eventually(t, 10*time.Second, "reconciliation to record its sync mark", func() bool {
		var synced *time.Time
		err := s.App.DB.Pool().QueryRow(ctx, `SELECT synced_at FROM connections WHERE merchant_id = $1 AND id = $2`, m.ID, conn).Scan(&synced)
		return err == nil && synced != nil
	})

	// Disconnecting removes the shop's webhooks, forgets the token and stops the push.
	r = s.Admin(t, m, http.MethodDelete, "/api/v1/connections/"+conn.String(), nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"state":"disconnected"`) {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 10*time.Second, "the webhooks to be removed and the token forgotten", func() bool {
		var forgotten bool
		_ = s.App.DB.Pool().QueryRow(ctx, `SELECT credentials IS NULL FROM connections WHERE merchant_id = $1 AND id = $2`, m.ID, conn).Scan(&forgotten)
		return forgotten && len(s.fake.WebhookSubscriptions(shop)) == 0
	})
	if ps := s.pushes(t, m, list); len(ps) != 1 || ps[0].State != core.PushStopped {
		t.Fatalf("push after disconnect: %+v", ps)
	}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/connections/"+conn.String()+"/reconcile", nil); r.Status != http.StatusConflict {
		t.Fatalf("reconcile of a disconnected shop: %d %s", r.Status, r.Body)
	}
	r = s.Do(t, shopifyWebhook(s.fake.Config().ClientSecret, "orders/paid", shop, "evt-late", orderWebhook(7004, "paid", first[6])))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "ignored") {
		t.Fatalf("a webhook after disconnect: %d %s", r.Status, r.Body)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func codeUses(t testing.TB, h *apptest.Harness, m apptest.Merchant, code string) int {
	t.Helper()
	var n int
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT uses FROM codes WHERE merchant_id = $1 AND code = $2`, m.ID, code).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShopifyPushThrottledFailingAndRerun pushes through a small cost bucket, 429s and 503s, an
// access token that expires mid-push, and then reruns over recorded states a crash could leave:
// the shop ends with every code exactly once and one discount.
func TestShopifyPushThrottledFailingAndRerun(t *testing.T) {
	t.Parallel()
	s := startShopifyStack(t, shopifyfake.Config{BulkDelay: 10 * time.Millisecond, BucketSize: 40, RestoreRate: 200})
	ctx := context.Background()
	db := s.App.DB.Pool()
	m := s.NewMerchant(t, "Throttled Shop")
	const shop = "throttled.myshopify.com"
	list := s.CreateList(t, m, map[string]any{"name": "Throttled", "uses_per_code": 2})
	codes := numbered("TH-", 1000)
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "codes.txt", strings.Join(codes, "\n"))).ID)
	g := s.oauthGrant(t, shop)
	conn := s.install(t, m, shop, g)
	var version int64
	if err := db.QueryRow(ctx, `SELECT credentials_version FROM connections WHERE merchant_id = $1 AND id = $2`, m.ID, conn).Scan(&version); err != nil {
		t.Fatal(err)
	}

	// The token expires before the push: the first call gets 401, the token is refreshed.
	s.fake.ExpireToken(g.Credentials.AccessToken)
	s.fake.FailNext(2, http.StatusServiceUnavailable, "")
	s.fake.FailNext(1, http.StatusTooManyRequests, "1")
	body := pushBody(conn)
	body["discount"] = map[string]any{"title": "Five off", "value_type": "fixed_amount", "value": 5}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", body); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	p := s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 1000 })
	if got := s.fake.RedeemCodes(shop, p.DiscountID); !slices.Equal(got, sorted(codes)) {
		t.Fatalf("the shop holds %d codes, want 1000", len(got))
	}
	d, _ := s.fake.Discount(shop, p.DiscountID)
	if d.Amount != "5" || d.UsageLimit == nil || *d.UsageLimit != 2 || d.AppliesOncePerCustomer {
		t.Fatalf("the shop's discount: %+v", d)
	}
	var now int64
	if err := db.QueryRow(ctx, `SELECT credentials_version FROM connections WHERE merchant_id = $1 AND id = $2`, m.ID, conn).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if now <= version {
		t.Fatalf("the expired token was not refreshed and stored (version %d → %d)", version, now)
	}

	// A crash after codes were recorded submitted but before their batch id was: the rerun
	// submits them again, Shopify calls them taken by this discount, and they count as pushed.
	ref := core.PushRef{MerchantID: uuid.MustParse(m.ID), ListID: uuid.MustParse(list), ConnectionID: conn}
	if _, err := db.Exec(ctx, `UPDATE code_pushes SET state = 'submitted', batch_id = '' WHERE merchant_id = $1 AND list_id = $2 AND seq BETWEEN 101 AND 300`,
		m.ID, list); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE list_connections SET pushed = pushed - 200 WHERE merchant_id = $1 AND list_id = $2`, m.ID, list); err != nil {
		t.Fatal(err)
	}
	// ...and a crash during the discount's creation: the rerun adopts the discount that holds
	// the code it was created with instead of making a second one.
	// (The crash came after Shopify made the discount with the first code and before that was
	// recorded: no discount id, no record of the first code.)
	for _, q := range []string{
		`UPDATE list_connections SET remote_id = '', creating_seq = 1, creating_at = now(), pushed = pushed - 1 WHERE merchant_id = $1 AND list_id = $2`,
		`DELETE FROM code_pushes WHERE merchant_id = $1 AND list_id = $2 AND seq = 1`,
	} {
		if _, err := db.Exec(ctx, q, m.ID, list); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.App.ShopifyPusher.RunPush(ctx, ref.MerchantID, ref.ListID, ref.ConnectionID); err != nil {
		t.Fatal(err)
	}
	after := s.pushes(t, m, list)[0]
	if after.DiscountID != p.DiscountID || after.Pushed != 1000 || after.Failed != 0 || after.Pending != 0 {
		t.Fatalf("after the rerun: %+v (discount was %s)", after, p.DiscountID)
	}
	if got := s.fake.RedeemCodes(shop, p.DiscountID); len(got) != 1000 {
		t.Fatalf("after the rerun the shop holds %d codes", len(got))
	}

	// A code the shop has in another discount is recorded failed with Shopify's reason.
	importAndPushClash(t, s, m, list, "TH-CLASH", p.DiscountID, shop)

	// Codes that arrive without telling the push (written straight to the table here) are
	// found by the sweeper.
	importByHand(t, s.Harness, m, list, "test", "TH-SWEPT-1", "TH-SWEPT-2")
	s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 1002 })
	if got := s.fake.RedeemCodes(shop, p.DiscountID); !slices.Contains(got, "TH-SWEPT-2") {
		t.Fatal("the swept code is not in the shop")
	}
}

// importAndPushClash adds a code to the shop under another discount first, then to the list,
// and checks the push records it failed with the shop's reason.
func importAndPushClash(t *testing.T, s shopifyStack, m apptest.Merchant, list, code, ours, shop string) {
	t.Helper()
	s.fake.AddDiscount(shop, "Someone else's", code)
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "clash.txt", code)).ID)
	p := s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Failed == 1 })
	if p.Pushed != 1000 {
		t.Fatalf("push after a clash: %+v", p)
	}
	detail := get(t, s.Harness, m, codePath(list, code))
	if !strings.Contains(string(detail.Body), `"type":"push_failed"`) || !strings.Contains(string(detail.Body), "unique") {
		t.Fatalf("the clashing code's timeline: %s", detail.Body)
	}
	if slices.Contains(s.fake.RedeemCodes(shop, ours), code) {
		t.Fatal("the clashing code landed in our discount")
	}
}

// TestShopifyMerchantJourney is the issue's "done when", over HTTP only: a merchant installs
// the app through OAuth, the embedded app (with session tokens) creates a list, imports codes
// and pushes them into the shop, and a paid Shopify order that used a pushed code redeems it.
func TestShopifyMerchantJourney(t *testing.T) {
	t.Parallel()
	fake := shopifyfake.New(t, shopifyfake.Config{ClientID: testShopifyKey, ClientSecret: testShopifySecret})
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) { shopifyConfig(c, fake) }})
	shop := testShop("journey")
	cookie, q := oauthStart(t, h, shop, "")
	if r := callback(t, h, q, cookie); r.Status != http.StatusFound {
		t.Fatalf("callback: %d %s", r.Status, r.Body)
	}
	as := func(method, path string, body any) apptest.Response {
		t.Helper()
		return h.Do(t, apptest.Request{Method: method, Path: path, JSON: body, APIKey: fake.SessionToken(shop, time.Minute)})
	}
	var conns struct {
		Items []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"items"`
	}
	as(http.MethodGet, "/api/v1/connections", nil).JSON(t, &conns)
	if len(conns.Items) != 1 || conns.Items[0].State != core.ConnectionActive {
		t.Fatalf("connections after install: %+v", conns.Items)
	}
	var list struct {
		ID string `json:"id"`
	}
	as(http.MethodPost, "/api/v1/lists", map[string]any{"name": "Journey"}).JSON(t, &list)
	codes := numbered("JOURNEY-", 30)
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list.ID + "/imports", Body: strings.NewReader(strings.Join(codes, "\n")),
		ContentType: "text/plain", APIKey: fake.SessionToken(shop, time.Minute)})
	if r.Status != http.StatusAccepted {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	if r := as(http.MethodPost, "/api/v1/lists/"+list.ID+"/connections", map[string]any{"connection_id": conns.Items[0].ID,
		"discount": map[string]any{"title": "Journey 15", "value_type": "percentage", "value": 15}}); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	var push pushState
	apptest.Eventually(t, 30*time.Second, "every code in the shop", func() bool {
		var page struct {
			Items []pushState `json:"items"`
		}
		as(http.MethodGet, "/api/v1/lists/"+list.ID+"/connections", nil).JSON(t, &page)
		if len(page.Items) == 1 {
			push = page.Items[0]
		}
		return push.State == core.PushActive && push.Pushed == 30
	})
	if got := fake.RedeemCodes(shop, push.DiscountID); !slices.Equal(got, sorted(codes)) {
		t.Fatalf("the shop holds %v", got)
	}

	// The customer checks out with a pushed code; Shopify sends the order as created, then paid.
	code := codes[11]
	for _, step := range []struct{ topic, status string }{{"orders/create", "pending"}, {"orders/paid", "paid"}} {
		req := shopifyWebhook(testShopifySecret, step.topic, shop, uuid.NewString(), orderWebhook(9001, step.status, code))
		if r := h.Do(t, req); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "accepted") {
			t.Fatalf("%s: %d %s", step.topic, r.Status, r.Body)
		}
	}
	var detail struct {
		State    string `json:"state"`
		Uses     int    `json:"uses"`
		Timeline []struct {
			Type  string `json:"type"`
			Actor string `json:"actor"`
		} `json:"timeline"`
	}
	apptest.Eventually(t, 10*time.Second, "the paid order to redeem the code", func() bool {
		as(http.MethodGet, codePath(list.ID, code), nil).JSON(t, &detail)
		return detail.Uses == 1
	})
	var types []string
	for _, e := range detail.Timeline {
		types = append(types, e.Type)
	}
	if !slices.Contains(types, "pushed") || !slices.Contains(types, "order_pending") || !slices.Contains(types, "redeemed") {
		t.Fatalf("the code's timeline: %v", types)
	}
}

// TestShopifyRevokedAccessAndReinstall: when the shop revokes the app's token, the connection
// turns error and its push stops; installing again and asking for the push again resumes it
// where it stopped, into the same discount.
func TestShopifyRevokedAccessAndReinstall(t *testing.T) {
	t.Parallel()
	s := startShopifyStack(t, shopifyfake.Config{BulkDelay: 10 * time.Millisecond})
	ctx := context.Background()
	m := s.NewMerchant(t, "Revoked Shop")
	const shop = "revoked.myshopify.com"
	list := s.CreateList(t, m, map[string]any{"name": "Revoked"})
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "a.txt", strings.Join(numbered("RV-", 20), "\n"))).ID)
	token := s.fake.IssueToken(shop)
	conn := s.install(t, m, shop, shopify.Grant{Credentials: core.Credentials{AccessToken: token}, Scope: "write_discounts,read_orders,read_discounts"})
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", pushBody(conn)); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	first := s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 20 })

	s.fake.RevokeToken(token)
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "b.txt", strings.Join(numbered("RV-LATE-", 5), "\n"))).ID)
	stopped := s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushStopped })
	if !strings.Contains(stopped.Error, "install the app again") {
		t.Fatalf("stopped push: %+v", stopped)
	}
	r := get(t, s.Harness, m, "/api/v1/connections")
	if !strings.Contains(string(r.Body), `"state":"error"`) {
		t.Fatalf("connection after the revoke: %s", r.Body)
	}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/connections/"+conn.String()+"/reconcile", nil); r.Status != http.StatusConflict {
		t.Fatalf("reconcile of a connection in error: %d %s", r.Status, r.Body)
	}

	if _, _, err := s.App.Gateway.ShopifyInstaller.Install(ctx, shop, shopify.Grant{Credentials: core.Credentials{AccessToken: s.fake.IssueToken(shop)},
		Scope: "write_discounts,read_orders,read_discounts"}); err != nil {
		t.Fatal(err)
	}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", pushBody(conn)); r.Status != http.StatusOK {
		t.Fatalf("push after reinstall: %d %s", r.Status, r.Body)
	}
	again := s.waitPush(t, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 25 })

	// Shopify retries an app/uninstalled from before the reinstall: it changes nothing.
	late := shopifyWebhook(s.fake.Config().ClientSecret, "app/uninstalled", shop, uuid.NewString(), []byte(`{"domain": "`+shop+`", "myshopify_domain": "`+shop+`"}`))
	late.Header.Set("X-Shopify-Triggered-At", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano))
	if r := s.Do(t, late); r.Status != http.StatusOK {
		t.Fatalf("late uninstall: %d %s", r.Status, r.Body)
	}
	waitDeliveries(t, s.Harness, m.ID)
	if r := get(t, s.Harness, m, "/api/v1/connections"); !strings.Contains(string(r.Body), `"state":"active"`) {
		t.Fatalf("a stale uninstall undid the reinstall: %s", r.Body)
	}
	if again.DiscountID != first.DiscountID || len(s.fake.RedeemCodes(shop, first.DiscountID)) != 25 {
		t.Fatalf("after reinstall: %+v, the shop holds %d codes", again, len(s.fake.RedeemCodes(shop, first.DiscountID)))
	}
}

// TestShopifyReinstallThenDisconnect: installing a shop again (its subscriptions are already
// there, so Shopify answers "already been taken") keeps the subscriptions' ids, so that
// disconnecting afterwards removes every subscription from the shop.
func TestShopifyReinstallThenDisconnect(t *testing.T) {
	t.Parallel()
	s := startShopifyStack(t, shopifyfake.Config{})
	ctx := context.Background()
	m := s.NewMerchant(t, "Reinstalled Shop")
	const shop = "reinstalled.myshopify.com"
	conn := s.install(t, m, shop, s.oauthGrant(t, shop))
	remote := func() []string {
		t.Helper()
		ids, err := s.App.DB.RemoteWebhooks(ctx, uuid.MustParse(m.ID), conn)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	subscribed := func() []string {
		var ids []string
		for _, w := range s.fake.WebhookSubscriptions(shop) {
			ids = append(ids, w.ID)
		}
		slices.Sort(ids)
		return ids
	}
	first := remote()
	if len(first) != len(shopify.WebhookTopics) || !slices.Equal(first, subscribed()) {
		t.Fatalf("after the install: recorded %q, the shop has %q", first, subscribed())
	}

	// The second OAuth install finds every topic taken: the ids recorded are still the shop's.
	if _, created, err := s.App.Gateway.ShopifyInstaller.Install(ctx, shop, s.oauthGrant(t, shop)); err != nil || created {
		t.Fatalf("second install: created %v, %v", created, err)
	}
	if again := remote(); !slices.Equal(again, first) || !slices.Equal(again, subscribed()) {
		t.Fatalf("after the second install: recorded %q, want %q (the shop has %q)", again, first, subscribed())
	}

	// Disconnecting removes them all.
	r := s.Admin(t, m, http.MethodDelete, "/api/v1/connections/"+conn.String(), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 10*time.Second, "the shop's webhook subscriptions to be removed", func() bool {
		return len(s.fake.WebhookSubscriptions(shop)) == 0
	})
}
