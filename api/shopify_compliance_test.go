package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestShopifyCompliance delivers the three compliance topics signed, with the worker running:
// customers/data_request stores the customer's codes and timeline for the merchant,
// customers/redact erases the customer's identifiers and keeps the redemption, shop/redact
// deletes the shop's connection, route and deliveries. Each delivered again is harmless.
func TestShopifyCompliance(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.ShopifyAPISecret = testShopifySecret
	}})
	ctx := context.Background()
	db := h.App.DB.Pool()
	m := h.NewMerchant(t, "Compliance Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Shopify codes", "uses_per_code": 3})
	const shop = "compliance-shop.myshopify.com"
	const bob, alice = "bob.norman@mail.example.com", "alice@example.com"
	conn := connectShop(t, h, m.ID, shop)
	if _, err := db.Exec(ctx, `INSERT INTO list_connections (merchant_id, list_id, connection_id) VALUES ($1, $2, $3)`, m.ID, list, conn); err != nil {
		t.Fatal(err)
	}

	// Bob (the fixture order's customer) is handed TENOFF, Alice ALICE1; Bob's order redeems TENOFF.
	importByHand(t, h, m, list, "test", "TENOFF")
	if r := allocate(t, h, m, list, bob, ""); r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("allocate to bob: %d %s", r.Status, r.Body)
	} else if code := r.Map(t)["code"]; code != "TENOFF" {
		t.Fatalf("bob got %v", code)
	}
	importByHand(t, h, m, list, "test", "ALICE1")
	if code := allocate(t, h, m, list, alice, "").Map(t)["code"]; code != "ALICE1" {
		t.Fatalf("alice got %v", code)
	}
	sign := func(topic, event string, body string) apptest.Request {
		return shopifyWebhook(testShopifySecret, topic, shop, event, []byte(body))
	}
	deliver := func(req apptest.Request, want string) {
		t.Helper()
		r := h.Do(t, req)
		if r.Status != http.StatusOK {
			t.Fatalf("webhook: %d: %s", r.Status, r.Body)
		}
		if got, _ := r.Map(t)["status"].(string); got != want {
			t.Fatalf("webhook answered %q, want %q: %s", got, want, r.Body)
		}
		waitDeliveries(t, h, m.ID)
	}
	deliver(shopifyWebhook(testShopifySecret, "orders/paid", shop, uuid.NewString(), shopifyOrderFor(t, "order-partially-refunded-TENOFF.json", shop)), "accepted")
	type codeState struct {
		State string
		Uses  int
	}
	codeOf := func(code string) codeState {
		t.Helper()
		var c codeState
		if err := db.QueryRow(ctx, `SELECT state, uses FROM codes WHERE merchant_id = $1 AND code = $2`, m.ID, code).Scan(&c.State, &c.Uses); err != nil {
			t.Fatal(err)
		}
		return c
	}
	redeemed := codeOf("TENOFF")
	if redeemed.Uses != 1 {
		t.Fatalf("TENOFF after the paid order: %+v", redeemed)
	}
	countsBefore := counts(t, h, m, list)

	// customers/data_request: one export for the delivery, Bob's codes and timeline, not Alice's.
	request := `{"shop_id": 954889, "shop_domain": "` + shop + `", "orders_requested": [450789469],
		"customer": {"id": 207119551, "email": "` + bob + `", "phone": "+16136120707"}, "data_request": {"id": 9999}}`
	event := uuid.NewString()
	deliver(sign("customers/data_request", event, request), "accepted")
	deliver(sign("customers/data_request", event, request), "duplicate")
	// The merchant reads it over the API, to hand to the customer.
	waitDeliveries(t, h, m.ID)
	var exports struct {
		Items []struct {
			ID          string `json:"id"`
			CustomerRef string `json:"customer_ref"`
			RequestID   string `json:"data_request_id"`
			Shop        string `json:"shop"`
		} `json:"items"`
	}
	get(t, h, m, "/api/v1/compliance-exports").JSON(t, &exports)
	if len(exports.Items) != 1 || exports.Items[0].CustomerRef != "207119551" || exports.Items[0].RequestID != "9999" || exports.Items[0].Shop != shop {
		t.Fatalf("compliance exports: %+v", exports.Items)
	}
	var one struct {
		Document json.RawMessage `json:"document"`
	}
	get(t, h, m, "/api/v1/compliance-exports/"+exports.Items[0].ID).JSON(t, &one)
	doc := []byte(one.Document)
	if r := get(t, h, h.NewMerchant(t, "Another"), "/api/v1/compliance-exports/"+exports.Items[0].ID); r.Status != http.StatusNotFound {
		t.Fatalf("another merchant reads the export: %d", r.Status)
	}
	var export struct {
		Shop  string `json:"shop"`
		Codes []struct {
			Code       string           `json:"code"`
			Uses       int              `json:"uses"`
			Deliveries []map[string]any `json:"deliveries"`
			Events     []struct {
				Type     string `json:"type"`
				OrderRef string `json:"order_ref"`
			} `json:"events"`
		} `json:"codes"`
	}
	if err := json.Unmarshal(doc, &export); err != nil {
		t.Fatal(err)
	}
	if export.Shop != shop || len(export.Codes) != 1 || export.Codes[0].Code != "TENOFF" || export.Codes[0].Uses != 1 || len(export.Codes[0].Deliveries) != 1 {
		t.Fatalf("export: %s", doc)
	}
	var redeemedEvent bool
	for _, e := range export.Codes[0].Events {
		redeemedEvent = redeemedEvent || e.Type == "redeemed" && strings.HasSuffix(e.OrderRef, ":450789469")
	}
	if !redeemedEvent || strings.Contains(string(doc), alice) || strings.Contains(string(doc), "ALICE1") {
		t.Fatalf("export without Bob's redemption or with Alice's data: %s", doc)
	}

	// customers/redact: Bob's identifiers are gone from codes, allocations, events and exports;
	// TENOFF stays redeemed with its use, the counts do not move, Alice is untouched.
	redact := `{"shop_id": 954889, "shop_domain": "` + shop + `", "customer": {"id": 207119551, "email": "` + bob + `",
		"phone": "+16136120707"}, "orders_to_redact": [450789469]}`
	bobRows := func() int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM codes WHERE merchant_id = $1 AND lower(recipient_email) = $2)
			+ (SELECT count(*) FROM allocations WHERE merchant_id = $1 AND (lower(recipient_email) = $2 OR recipient_key = 'email:' || $2))
			+ (SELECT count(*) FROM code_events WHERE merchant_id = $1 AND recipient::text ILIKE '%' || $2 || '%')
			+ (SELECT count(*) FROM compliance_exports WHERE merchant_id = $1)`, m.ID, bob).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	bobBodies := func() int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1
			AND (position(convert_to($2, 'UTF8') IN body) > 0 OR position(convert_to('+16136120707', 'UTF8') IN body) > 0)`, m.ID, bob).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := bobRows(); n < 4 { // his code, his allocation, the redeemed event, the export
		t.Fatalf("%d rows hold Bob's data before customers/redact, want at least 4", n)
	}
	if n := bobBodies(); n == 0 {
		t.Fatal("no stored delivery body holds Bob's email before customers/redact")
	}
	deliver(sign("customers/redact", uuid.NewString(), redact), "accepted")
	if n := bobRows(); n != 0 {
		t.Fatalf("%d rows still hold Bob's data after customers/redact", n)
	}
	// The raw bodies too: the order's delivery keeps what applying it needs (the same order, status
	// and codes), and nothing of Bob's; the compliance deliveries keep his customer id only.
	if n := bobBodies(); n != 0 {
		t.Fatalf("%d stored webhook delivery bodies still hold Bob's email or phone after customers/redact", n)
	}
	var orderBody []byte
	if err := db.QueryRow(ctx, `SELECT body FROM webhook_deliveries WHERE merchant_id = $1 AND topic = 'orders/paid'`, m.ID).Scan(&orderBody); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"customer"`, `"billing_address"`, `"shipping_address"`, `"phone"`, `"email"`, `"contact_email"`, `"note"`, `"browser_ip"`} {
		if strings.Contains(string(orderBody), field) {
			t.Errorf("the redacted order body still has %s: %s", field, orderBody)
		}
	}
	before, err := shopify.OrderEventFromWebhook("orders/paid", shopifyFixture(t, "order-partially-refunded-TENOFF.json"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := shopify.OrderEventFromWebhook("orders/paid", orderBody)
	if err != nil || after.OrderID != before.OrderID || !slices.Equal(after.Statuses, before.Statuses) || !slices.Equal(after.Codes, before.Codes) ||
		!after.Customer.IsZero() {
		t.Fatalf("the redacted order body applies %+v (%v), want %+v without the customer", after, err, before)
	}
	var redactedKey string
	if err := db.QueryRow(ctx, `SELECT a.recipient_key FROM allocations a JOIN codes c USING (merchant_id, list_id, seq)
		WHERE a.merchant_id = $1 AND c.code = 'TENOFF'`, m.ID).Scan(&redactedKey); err != nil || !strings.HasPrefix(redactedKey, "redacted:") {
		t.Fatalf("Bob's allocation key %q (%v)", redactedKey, err)
	}
	if c := codeOf("TENOFF"); c != redeemed {
		t.Fatalf("TENOFF after redaction %+v, want %+v", c, redeemed)
	}
	var aliceRows int
	_ = db.QueryRow(ctx, `SELECT count(*) FROM allocations WHERE merchant_id = $1 AND recipient_email = $2`, m.ID, alice).Scan(&aliceRows)
	if aliceRows != 1 {
		t.Fatalf("Alice's allocations after Bob's redaction: %d", aliceRows)
	}
	deliver(sign("customers/redact", uuid.NewString(), redact), "accepted")
	if c := codeOf("TENOFF"); c != redeemed || bobRows() != 0 {
		t.Fatalf("redaction delivered again: TENOFF %+v", c)
	}
	countsAfter := counts(t, h, m, list)
	for k, v := range countsBefore {
		if countsAfter[k] != v {
			t.Fatalf("counts moved with the redaction: %v → %v", countsBefore, countsAfter)
		}
	}
	var processed int
	_ = db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status = 'processed' AND error = ''`, m.ID).Scan(&processed)
	if processed != 4 {
		t.Fatalf("%d deliveries processed without a note, want 4", processed)
	}

	// The merchant uninstalls the app; 48 hours later shop/redact comes for the shop, which is no
	// longer routed: it is still taken. The connection, its list link, the route and the
	// deliveries of the shop go; the list and its codes stay; later deliveries are ignored.
	deliver(sign("app/uninstalled", uuid.NewString(), `{"id": 954889, "domain": "`+shop+`", "myshopify_domain": "`+shop+`"}`), "accepted")
	waitDeliveries(t, h, m.ID)
	deliver(sign("orders/paid", uuid.NewString(), string(shopifyOrderFor(t, "order-partially-refunded-TENOFF.json", shop))), "ignored")
	deliver(sign("shop/redact", uuid.NewString(), `{"shop_id": 954889, "shop_domain": "`+shop+`"}`), "accepted")
	var left int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM connections WHERE merchant_id = $1)
		+ (SELECT count(*) FROM list_connections WHERE merchant_id = $1)
		+ (SELECT count(*) FROM shop_routes WHERE shop = $2)
		+ (SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND shop = $2)`, m.ID, shop).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d rows of the shop left after shop/redact", left)
	}
	if c := codeOf("TENOFF"); c != redeemed {
		t.Fatalf("TENOFF after shop/redact %+v", c)
	}
	deliver(sign("shop/redact", uuid.NewString(), `{"shop_id": 954889, "shop_domain": "`+shop+`"}`), "ignored")
	deliver(shopifyWebhook(testShopifySecret, "orders/paid", shop, uuid.NewString(), shopifyOrderFor(t, "order-partially-refunded-TENOFF.json", shop)), "ignored")
}
