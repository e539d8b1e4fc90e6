package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// orderAppliedDespiteNUL waits for the merchant's deliveries, then checks that every one was
// processed, that none of the stored bodies holds a NUL (escaped or raw), that code has one use
// and that its redemption names the buyer by wantEmail, the NUL dropped.
func orderAppliedDespiteNUL(t *testing.T, h *apptest.Harness, merchantID, code, wantEmail string) {
	t.Helper()
	ctx := context.Background()
	db := h.App.DB.Pool()
	waitDeliveries(t, h, merchantID)
	rows, err := db.Query(ctx, `SELECT status, error, body FROM webhook_deliveries WHERE merchant_id = $1`, merchantID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var status, note string
		var body []byte
		if err := rows.Scan(&status, &note, &body); err != nil {
			t.Fatal(err)
		}
		n++
		if status != "processed" {
			t.Errorf("delivery %s: %s", status, note)
		}
		if bytes.Contains(body, []byte(`\u0000`)) || bytes.IndexByte(body, 0) >= 0 {
			t.Errorf("a stored body holds a NUL: %s", body)
		}
	}
	if err := rows.Err(); err != nil || n == 0 {
		t.Fatalf("%d deliveries (%v)", n, err)
	}
	var uses int
	var email string
	if err := db.QueryRow(ctx, `SELECT c.uses, e.recipient->>'email' FROM codes c
		JOIN code_events e ON e.merchant_id = c.merchant_id AND e.list_id = c.list_id AND e.seq = c.seq AND e.type = 'redeemed'
		WHERE c.merchant_id = $1 AND c.code = $2`, merchantID, code).Scan(&uses, &email); err != nil {
		t.Fatalf("%s's redemption: %v", code, err)
	}
	if uses != 1 || email != wantEmail {
		t.Fatalf("%s: %d uses, redeemed by %q; want 1 use by %q", code, uses, email, wantEmail)
	}
}

// TestShopifyOrderWithNUL: a paid order whose note, customer name and email hold \u0000 is
// applied (not retried for ever): its code is redeemed once, the NUL dropped from the stored body
// and the recorded customer.
func TestShopifyOrderWithNUL(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.ShopifyAPISecret = testShopifySecret
	}})
	m := h.NewMerchant(t, "NUL Shop")
	list := h.CreateList(t, m, map[string]any{"name": "NUL codes"})
	importByHand(t, h, m, list, "test", "NULCODE")
	const shop = "nul-shop.myshopify.com"
	connectShop(t, h, m.ID, shop)
	body := []byte(`{"id": 820982911946154500, "name": "#9999", "financial_status": "paid", "email": "bob\u0000@example.com",
		"note": "leave at the door\u0000", "customer": {"id": 115310627314723950, "first_name": "Bo\u0000b", "email": "bob@example.com"},
		"order_status_url": "https://` + shop + `/1/orders/x/authenticate?key=y", "line_items": [{"id": 1, "title": "Gift\u0000card"}],
		"discount_codes": [{"code": "NULCODE", "amount": "5.00", "type": "fixed_amount"}],
		"discount_applications": [{"type": "discount_code", "code": "NULCODE", "value": "5.0", "value_type": "fixed_amount"}]}`)
	for range 2 { // delivered twice: counted once
		if r := h.Do(t, shopifyWebhook(testShopifySecret, "orders/paid", shop, uuid.NewString(), body)); r.Status != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.Status, r.Body)
		}
	}
	orderAppliedDespiteNUL(t, h, m.ID, "NULCODE", "bob@example.com")
}

// TestWooCommerceOrderWithNUL: a paid WooCommerce order whose customer note, billing name and
// email and coupon code hold \u0000 is applied: its code is redeemed once, the NUL dropped.
func TestWooCommerceOrderWithNUL(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{TLS: true})
	m := s.NewMerchant(t, "Woo NUL")
	var conn struct {
		ID string `json:"id"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)
	secret := s.fake.Webhooks()[0].Secret
	list := s.CreateList(t, m, map[string]any{"name": "Woo NUL codes"})
	importByHand(t, s.Harness, m, list, "test", "WOONUL")
	order := wooOrder(4242, "processing", "woo\x00nul")
	order["customer_note"] = "ring twice\x00"
	order["billing"] = map[string]any{"first_name": "A\x00da", "email": "ada\x00@example.com"}
	body, err := json.Marshal(order) // encodes each NUL as \u0000
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(`\u0000`)) {
		t.Fatalf("the order holds no NUL: %s", body)
	}
	for _, topic := range []string{"order.created", "order.updated"} { // two deliveries: counted once
		h := http.Header{}
		h.Set(woocommerce.HeaderTopic, topic)
		h.Set(woocommerce.HeaderSignature, woocommerce.SignWebhook(body, secret))
		h.Set(woocommerce.HeaderWebhookID, "1")
		r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/webhooks/woocommerce/" + conn.ID, Body: bytes.NewReader(body),
			ContentType: "application/json", Header: h})
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", topic, r.Status, r.Body)
		}
	}
	orderAppliedDespiteNUL(t, s.Harness, m.ID, "WOONUL", "ada@example.com")
}
