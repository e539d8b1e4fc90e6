package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

// fixtureShop is the shop the Shopify order fixtures were captured from (their order_status_url).
const fixtureShop = "jsmith.myshopify.com"

// shopifyOrderFor is an order fixture as shop's own: its order_status_url moved to shop.
func shopifyOrderFor(t testing.TB, name, shop string) []byte {
	t.Helper()
	return bytes.ReplaceAll(shopifyFixture(t, name), []byte(fixtureShop), []byte(shop))
}

// TestShopifyWebhookHeadersBoundToBody replays correctly signed bodies with another shop or topic
// in the headers, which Shopify's signature does not cover: each is refused (401
// webhook_mismatch), nothing is stored, and the other shop keeps its connection, its deliveries and
// its customer's data. The same bodies with their own headers are taken.
func TestShopifyWebhookHeadersBoundToBody(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.ShopifyAPISecret = testShopifySecret
	}})
	ctx := context.Background()
	db := h.App.DB.Pool()
	const shopA, shopB = "bound-a.myshopify.com", "bound-b.myshopify.com"
	const bob = "bob@bound-b.example.com"
	a, b := h.NewMerchant(t, "Bound A"), h.NewMerchant(t, "Bound B")
	connA, connB := connectShop(t, h, a.ID, shopA), connectShop(t, h, b.ID, shopB)
	list := h.CreateList(t, b, map[string]any{"name": "B codes"})
	importByHand(t, h, b, list, "test", "BOBCODE")
	if r := allocate(t, h, b, list, bob, ""); r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("allocate to bob: %d %s", r.Status, r.Body)
	}
	// B has one stored delivery of its own, which shop/redact would delete.
	bOrder := shopifyOrderFor(t, "order-paid-no-code.json", shopB)
	if r := h.Do(t, shopifyWebhook(testShopifySecret, "orders/paid", shopB, uuid.NewString(), bOrder)); r.Status != http.StatusOK {
		t.Fatalf("B's own order: %d %s", r.Status, r.Body)
	}
	waitDeliveries(t, h, b.ID)

	uninstallA := `{"id": 548380009, "name": "Bound A", "domain": "shop.bound-a.example", "myshopify_domain": "` + shopA + `"}`
	redactShopA := `{"shop_id": 548380009, "shop_domain": "` + shopA + `"}`
	redactBobAtA := `{"shop_id": 548380009, "shop_domain": "` + shopA + `", "customer": {"id": 1, "email": "` + bob + `"}, "orders_to_redact": []}`
	redactBobAtB := `{"shop_id": 7, "shop_domain": "` + shopB + `", "customer": {"id": 1, "email": "` + bob + `"}, "orders_to_redact": []}`
	requestBobAtB := `{"shop_id": 7, "shop_domain": "` + shopB + `", "customer": {"id": 1, "email": "` + bob + `"}, "orders_requested": [], "data_request": {"id": 5}}`
	for _, tc := range []struct {
		name, topic, shop, body string
	}{
		{"A's app/uninstalled under B's domain", "app/uninstalled", shopB, uninstallA},
		{"A's app/uninstalled under B's domain in upper case", "app/uninstalled", "BOUND-B.myshopify.com", uninstallA},
		{"B's order as app/uninstalled", "app/uninstalled", shopB, string(bOrder)},
		{"A's shop/redact under B's domain", "shop/redact", shopB, redactShopA},
		{"B's customers/redact as shop/redact", "shop/redact", shopB, redactBobAtB},
		{"A's customers/redact under B's domain", "customers/redact", shopB, redactBobAtA},
		{"B's customers/data_request as customers/redact", "customers/redact", shopB, requestBobAtB},
		{"B's shop body as customers/redact", "customers/redact", shopB, `{"id": 7, "myshopify_domain": "` + shopB + `"}`},
		{"B's order under A's domain", "orders/paid", shopA, string(bOrder)},
		{"B's paid order as orders/cancelled", "orders/cancelled", shopB, string(bOrder)},
		{"a refund as an order", "orders/paid", shopB, `{"id": 509562969, "order_id": 450789469, "admin_graphql_api_id": "gid://shopify/Refund/509562969"}`},
		{"A's shop body as an order", "orders/paid", shopB, uninstallA},
		{"an order as a refund", "refunds/create", shopB, string(bOrder)},
		{"not an object", "customers/redact", shopB, `["` + shopB + `"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before int
			_ = db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&before)
			r := h.Do(t, shopifyWebhook(testShopifySecret, tc.topic, tc.shop, uuid.NewString(), []byte(tc.body)))
			if r.Status != http.StatusUnauthorized || r.ErrorCode() != "webhook_mismatch" {
				t.Fatalf("%s under %s: %d %s, want 401 webhook_mismatch", tc.topic, tc.shop, r.Status, r.Body)
			}
			var after int
			_ = db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&after)
			if after != before {
				t.Fatalf("a refused delivery was stored (%d → %d)", before, after)
			}
		})
	}

	// B is untouched: connected, routed, its delivery kept, Bob's allocation still his.
	var state string
	var routes, deliveries, bobRows int
	if err := db.QueryRow(ctx, `SELECT (SELECT state FROM connections WHERE merchant_id = $1 AND id = $2),
			(SELECT count(*) FROM shop_routes WHERE shop = $3 AND merchant_id = $1),
			(SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1),
			(SELECT count(*) FROM allocations WHERE merchant_id = $1 AND recipient_email = $4)`,
		b.ID, connB, shopB, bob).Scan(&state, &routes, &deliveries, &bobRows); err != nil {
		t.Fatal(err)
	}
	if state == "uninstalled" || routes != 1 || deliveries != 1 || bobRows != 1 {
		t.Fatalf("shop B after the replays: state %q, %d routes, %d deliveries, %d allocations of Bob", state, routes, deliveries, bobRows)
	}

	// The bodies under their own headers are taken and acted on.
	for _, d := range []struct{ topic, shop, body string }{
		{"customers/redact", shopB, redactBobAtB},
		{"app/uninstalled", shopA, uninstallA},
	} {
		if r := h.Do(t, shopifyWebhook(testShopifySecret, d.topic, d.shop, uuid.NewString(), []byte(d.body))); r.Status != http.StatusOK {
			t.Fatalf("%s of %s: %d %s", d.topic, d.shop, r.Status, r.Body)
		}
	}
	waitDeliveries(t, h, a.ID)
	waitDeliveries(t, h, b.ID)
	if err := db.QueryRow(ctx, `SELECT state FROM connections WHERE merchant_id = $1 AND id = $2`, a.ID, connA).Scan(&state); err != nil || state != "uninstalled" {
		t.Fatalf("shop A after its own app/uninstalled: %q (%v)", state, err)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM allocations WHERE merchant_id = $1 AND recipient_email = $2`, b.ID, bob).Scan(&bobRows); err != nil || bobRows != 0 {
		t.Fatalf("Bob's allocations after B's own customers/redact: %d (%v)", bobRows, err)
	}
}
