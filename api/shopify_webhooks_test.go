package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

const testShopifySecret = "shpss_test_secret"

// TestShopifyWebhooks replays the real order fixtures through POST /webhooks/shopify, with the
// worker running: only a paid order redeems, once, whatever the retries.
func TestShopifyWebhooks(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.ShopifyAPISecret = testShopifySecret
	}})
	ctx := context.Background()
	db := h.App.DB.Pool()
	m := h.NewMerchant(t, "Webhook Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Shopify codes", "uses_per_code": 3})
	importByHand(t, h, m, list, "test", "TENOFF", "FAKE30")
	const shop = "test-shop.myshopify.com"
	conn := connectShop(t, h, m.ID, shop)

	deliver := func(req apptest.Request, wantStatus int, want string) apptest.Response {
		t.Helper()
		r := h.Do(t, req)
		if r.Status != wantStatus {
			t.Fatalf("webhook: %d, want %d: %s", r.Status, wantStatus, r.Body)
		}
		if want != "" {
			if got, _ := r.Map(t)["status"].(string); got != want {
				t.Fatalf("webhook answered %q, want %q: %s", got, want, r.Body)
			}
		}
		return r
	}
	uses := func(code string) int {
		t.Helper()
		waitDeliveries(t, h, m.ID)
		var n int
		if err := db.QueryRow(ctx, `SELECT uses FROM codes WHERE merchant_id = $1 AND code = $2`, m.ID, code).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	sign := func(topic, event string, body []byte) apptest.Request {
		return shopifyWebhook(testShopifySecret, topic, shop, event, body)
	}

	// Authorized, not paid: nothing counted.
	deliver(sign("orders/create", uuid.NewString(), shopifyOrderFor(t, "order-authorized-TENOFF.json", shop)), http.StatusOK, "accepted")
	if n := uses("TENOFF"); n != 0 {
		t.Fatalf("an authorized order redeemed TENOFF: uses %d", n)
	}

	// Paid (partially refunded): counted once; the same event again is a duplicate; another event
	// for the same order is stored but counts nothing more.
	paid := shopifyOrderFor(t, "order-partially-refunded-TENOFF.json", shop)
	event := uuid.NewString()
	deliver(sign("orders/updated", event, paid), http.StatusOK, "accepted")
	if n := uses("TENOFF"); n != 1 {
		t.Fatalf("the paid order: TENOFF uses %d, want 1", n)
	}
	deliver(sign("orders/updated", event, paid), http.StatusOK, "duplicate")
	deliver(sign("orders/paid", uuid.NewString(), paid), http.StatusOK, "accepted")
	if n := uses("TENOFF"); n != 1 {
		t.Fatalf("the paid order delivered again: TENOFF uses %d, want 1", n)
	}
	// Without an event id the webhook id is the duplicate key.
	noEvent := sign("orders/paid", "", paid)
	deliver(noEvent, http.StatusOK, "accepted")
	noEvent.Body = bytes.NewReader(paid)
	deliver(noEvent, http.StatusOK, "duplicate")

	// A refund names only its order: it is applied to the codes recorded for that order, and the
	// use stays counted. A second paid order with TENOFF counts it a second time first.
	var order map[string]any
	if err := json.Unmarshal(paid, &order); err != nil {
		t.Fatal(err)
	}
	order["id"], order["admin_graphql_api_id"], order["financial_status"] = 777001, "gid://shopify/Order/777001", "paid"
	second, _ := json.Marshal(order)
	deliver(sign("orders/paid", uuid.NewString(), second), http.StatusOK, "accepted")
	if n := uses("TENOFF"); n != 2 {
		t.Fatalf("a second paid order: TENOFF uses %d, want 2", n)
	}
	refund := []byte(`{"id": 509562969, "order_id": 777001, "note": "", "refund_line_items": []}`)
	deliver(sign("refunds/create", uuid.NewString(), refund), http.StatusOK, "accepted")
	if n := uses("TENOFF"); n != 2 {
		t.Fatalf("after the refund: TENOFF uses %d, want 2", n)
	}
	var refunded int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM code_events WHERE merchant_id = $1 AND type = 'refunded' AND actor = 'shopify:refunds/create'`, m.ID).Scan(&refunded); err != nil {
		t.Fatal(err)
	}
	if refunded != 1 {
		t.Fatalf("refund events from refunds/create: %d, want 1", refunded)
	}

	// A manual discount carrying FAKE30's text is not a redemption: it is recorded on FAKE30's
	// timeline, once whatever the retries and topics of the order.
	manual := shopifyOrderFor(t, "order-paid-manual-FAKE30.json", shop)
	deliver(sign("orders/paid", uuid.NewString(), manual), http.StatusOK, "accepted")
	if n := uses("FAKE30"); n != 0 {
		t.Fatalf("a manual discount redeemed FAKE30: uses %d", n)
	}
	deliver(sign("orders/paid", uuid.NewString(), manual), http.StatusOK, "accepted")
	deliver(sign("orders/updated", uuid.NewString(), manual), http.StatusOK, "accepted")
	if n := uses("FAKE30"); n != 0 {
		t.Fatalf("a manual discount delivered again redeemed FAKE30: uses %d", n)
	}
	manualEvents := func(code string) []map[string]any {
		t.Helper()
		r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: codePath(list, code), APIKey: m.APIKey})
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", code, r.Status, r.Body)
		}
		var got struct {
			Uses     int              `json:"uses"`
			Timeline []map[string]any `json:"timeline"`
		}
		r.JSON(t, &got)
		if got.Uses != 0 && code == "FAKE30" {
			t.Fatalf("FAKE30 has %d uses after a manual discount", got.Uses)
		}
		var out []map[string]any
		for _, e := range got.Timeline {
			if e["type"] == "manual_discount" {
				out = append(out, e)
			}
		}
		return out
	}
	evs := manualEvents("FAKE30")
	if len(evs) != 1 {
		t.Fatalf("FAKE30's timeline has %d manual_discount events, want 1: %v", len(evs), evs)
	}
	details, _ := evs[0]["details"].(map[string]any)
	if evs[0]["order"] != "shopify:"+shop+":1073459981" || evs[0]["actor"] != "shopify:orders/paid" ||
		details["order_id"] != "1073459981" || details["shop"] != shop || details["title"] != "FAKE30" {
		t.Fatalf("manual_discount event %v", evs[0])
	}
	if evs := manualEvents("TENOFF"); len(evs) != 0 {
		t.Fatalf("TENOFF's timeline has manual_discount events: %v", evs)
	}

	// Signatures: wrong secret, tampered body, missing header; compliance topics too.
	bad := shopifyWebhook("not-the-secret", "orders/paid", shop, uuid.NewString(), paid)
	if r := deliver(bad, http.StatusUnauthorized, ""); r.ErrorCode() != "invalid_signature" {
		t.Fatalf("bad signature: %s", r.Body)
	}
	tampered := sign("orders/paid", uuid.NewString(), paid)
	tampered.Body = bytes.NewReader(append(bytes.Clone(paid), ' '))
	deliver(tampered, http.StatusUnauthorized, "")
	unsigned := sign("orders/paid", uuid.NewString(), paid)
	unsigned.Header.Del("X-Shopify-Hmac-Sha256")
	deliver(unsigned, http.StatusUnauthorized, "")
	deliver(shopifyWebhook("not-the-secret", "customers/redact", shop, uuid.NewString(), []byte(`{"shop_domain":"test-shop.myshopify.com"}`)), http.StatusUnauthorized, "")

	// A compliance topic is stored and processed (TestShopifyCompliance covers what it does).
	deliver(sign("customers/redact", uuid.NewString(), []byte(`{"shop_domain":"test-shop.myshopify.com","customer":{"id":1}}`)), http.StatusOK, "accepted")
	waitDeliveries(t, h, m.ID)
	var status string
	if err := db.QueryRow(ctx, `SELECT status FROM webhook_deliveries WHERE merchant_id = $1 AND topic = 'customers/redact'`, m.ID).Scan(&status); err != nil || status != "processed" {
		t.Fatalf("compliance delivery status %q (%v)", status, err)
	}

	// Oversized, bad shop, no ids.
	big := append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	big = append(big, `"}`...)
	deliver(sign("orders/paid", uuid.NewString(), big), http.StatusRequestEntityTooLarge, "")
	deliver(shopifyWebhook(testShopifySecret, "orders/paid", "evil.example.com", uuid.NewString(), paid), http.StatusBadRequest, "")
	noIDs := sign("orders/paid", "", paid)
	noIDs.Header.Del("X-Shopify-Webhook-Id")
	deliver(noIDs, http.StatusBadRequest, "")

	// A shop that is not ours: 200, nothing stored.
	var before int
	_ = db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&before)
	deliver(shopifyWebhook(testShopifySecret, "orders/paid", "someone-else.myshopify.com", uuid.NewString(),
		shopifyOrderFor(t, "order-partially-refunded-TENOFF.json", "someone-else.myshopify.com")), http.StatusOK, "ignored")
	var after int
	_ = db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&after)
	if after != before {
		t.Fatalf("a delivery for an unknown shop was stored (%d → %d)", before, after)
	}

	// Every order delivery was processed, none failed.
	var failed int
	_ = db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status <> 'processed'`, m.ID).Scan(&failed)
	if failed != 0 {
		t.Fatalf("%d deliveries not processed", failed)
	}

	// A delivery stored but never queued (Redis lost the enqueue) is queued again by the sweeper.
	lost := uuid.New()
	if _, err := db.Exec(ctx, `INSERT INTO webhook_deliveries (merchant_id, id, platform, shop, topic, event_key, body, received_at)
		VALUES ($1, $2, 'shopify', $3, 'orders/paid', $4, $5, now() - interval '2 minutes')`, m.ID, lost, shop, uuid.NewString(), second); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, h, m.ID)

	// app/uninstalled revokes the connection and the route: later deliveries are ignored.
	deliver(sign("app/uninstalled", uuid.NewString(), []byte(`{"id": 1, "domain": "test-shop.myshopify.com", "myshopify_domain": "test-shop.myshopify.com"}`)), http.StatusOK, "accepted")
	waitDeliveries(t, h, m.ID)
	var state string
	if err := db.QueryRow(ctx, `SELECT state FROM connections WHERE merchant_id = $1 AND id = $2`, m.ID, conn).Scan(&state); err != nil || state != "uninstalled" {
		t.Fatalf("connection state %q (%v), want uninstalled", state, err)
	}
	deliver(sign("orders/paid", uuid.NewString(), paid), http.StatusOK, "ignored")
}
