package shopify_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

func TestCheckDelivery(t *testing.T) {
	t.Parallel()
	const shop = "jsmith.myshopify.com"
	fx := readFixtures(t)
	for _, tc := range []struct {
		name, topic, body string
		ok                bool
	}{
		{"an order of the shop", "orders/paid", string(fx["order-paid-no-code.json"]), true},
		{"an order of another shop", "orders/paid", `{"id": 1, "order_status_url": "https://other.myshopify.com/1/orders/x/authenticate?key=y"}`, false},
		{"an order on a custom domain", "orders/updated", `{"id": 1, "order_status_url": "https://shop.example.com/1/orders/x/authenticate?key=y"}`, true},
		{"an order's host in upper case", "orders/create", `{"id": 1, "order_status_url": "https://JSmith.myshopify.com/1/orders/x"}`, true},
		{"a wrapped order", "orders/paid", `{"order": {"id": 1, "order_status_url": "https://other.myshopify.com/1"}}`, false},
		{"an order without an id", "orders/paid", `{"name": "#1001"}`, false},
		{"a customer as an order", "orders/paid", `{"id": 1, "admin_graphql_api_id": "gid://shopify/Customer/1"}`, false},
		{"a refund as an order", "orders/paid", `{"id": 1, "order_id": 2}`, false},
		{"a shop as an order", "orders/paid", `{"id": 1, "myshopify_domain": "` + shop + `"}`, false},
		{"a compliance request as an order", "orders/paid", `{"id": 1, "shop_domain": "` + shop + `"}`, false},
		{"a cancelled order", "orders/cancelled", `{"id": 1, "cancelled_at": "2025-01-01T00:00:00Z"}`, true},
		{"an order that is not cancelled as orders/cancelled", "orders/cancelled", `{"id": 1, "cancelled_at": null}`, false},
		{"a refund", "refunds/create", `{"id": 9, "order_id": 1, "admin_graphql_api_id": "gid://shopify/Refund/9"}`, true},
		{"a wrapped refund", "refunds/create", `{"refund": {"id": 9, "order_id": 1}}`, true},
		{"an order as a refund", "refunds/create", `{"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"}`, false},
		{"the shop's uninstall", "app/uninstalled", `{"id": 1, "myshopify_domain": "JSMITH.myshopify.com"}`, true},
		{"another shop's uninstall", "app/uninstalled", `{"id": 1, "myshopify_domain": "other.myshopify.com"}`, false},
		{"an uninstall naming no shop", "app/uninstalled", `{"id": 1, "domain": "` + shop + `"}`, false},
		{"an uninstall with a null shop", "app/uninstalled", `{"id": 1, "myshopify_domain": null}`, false},
		{"the shop's redaction", "shop/redact", `{"shop_id": 1, "shop_domain": "` + shop + `"}`, true},
		{"another shop's redaction", "shop/redact", `{"shop_id": 1, "shop_domain": "other.myshopify.com"}`, false},
		{"a customer's redaction as shop/redact", "shop/redact", `{"shop_domain": "` + shop + `", "customer": {"id": 1}, "orders_to_redact": []}`, false},
		{"a customer's redaction", "customers/redact", `{"shop_domain": "` + shop + `", "customer": {"id": 1}, "orders_to_redact": [2]}`, true},
		{"another shop's customer redaction", "customers/redact", `{"shop_domain": "other.myshopify.com", "customer": {"id": 1}}`, false},
		{"a data request as customers/redact", "customers/redact", `{"shop_domain": "` + shop + `", "customer": {"id": 1}, "data_request": {"id": 3}}`, false},
		{"a redaction naming no customer", "customers/redact", `{"shop_domain": "` + shop + `"}`, false},
		{"a data request", "customers/data_request", `{"shop_domain": "` + shop + `", "customer": {"id": 1}, "orders_requested": [], "data_request": {"id": 3}}`, true},
		{"a redaction as customers/data_request", "customers/data_request", `{"shop_domain": "` + shop + `", "customer": {"id": 1}, "orders_to_redact": [2]}`, false},
		{"not an object", "shop/redact", `"` + shop + `"`, false},
		{"not JSON", "orders/paid", `{"id": 1`, false},
		{"a topic Coupongate does not act on", "products/update", `not json`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := shopify.CheckWebhook(tc.topic, shop, []byte(tc.body))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, shopify.ErrInvalidPayload) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidPayload", err)
			}
		})
	}
}

// TestIntakeRefusesMismatch: a signed body under another shop's domain or another topic is
// refused with ErrWebhookMismatch, neither stored nor queued.
func TestIntakeRefusesMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &fakeIntakeStore{route: shopify.ShopRoute{MerchantID: uuid.New()}, known: true, deliveries: map[string]shopify.WebhookReceipt{}}
	q := &fakeWebhookQueue{}
	in := shopify.NewIntake(store, q, slog.New(slog.DiscardHandler), "secret")
	for _, tc := range []struct{ topic, body string }{
		{"app/uninstalled", `{"id": 1, "myshopify_domain": "other.myshopify.com"}`},
		{"shop/redact", `{"shop_domain": "other.myshopify.com"}`},
		{"app/uninstalled", `{"id": 1, "financial_status": "paid", "line_items": []}`},
	} {
		h := webhookHeader("secret", "test-shop.myshopify.com", uuid.NewString(), []byte(tc.body))
		h.Set(shopify.HeaderTopic, tc.topic)
		if _, err := in.Receive(ctx, h, []byte(tc.body)); !errors.Is(err, shopify.ErrWebhookMismatch) {
			t.Errorf("%s %s: %v, want ErrWebhookMismatch", tc.topic, tc.body, err)
		}
	}
	if len(store.deliveries) != 0 || len(q.queued) != 0 {
		t.Fatalf("refused deliveries stored %d, queued %d", len(store.deliveries), len(q.queued))
	}
}

// TestIntakeScrubsBody: a NUL in a signed body is dropped from the stored body, which still reads
// as the same order.
func TestIntakeScrubsBody(t *testing.T) {
	t.Parallel()
	store := &fakeIntakeStore{route: shopify.ShopRoute{MerchantID: uuid.New()}, known: true, deliveries: map[string]shopify.WebhookReceipt{}}
	in := shopify.NewIntake(store, &fakeWebhookQueue{}, slog.New(slog.DiscardHandler), "secret")
	body := []byte(`{"id": 7, "note": "gift\u0000wrap", "financial_status": "paid"}`)
	if got, err := in.Receive(context.Background(), webhookHeader("secret", "test-shop.myshopify.com", "ev-nul", body), body); err != nil || got != shopify.WebhookAccepted {
		t.Fatalf("%q, %v", got, err)
	}
	if stored := string(store.deliveries["ev-nul"].Body); stored != `{"id": 7, "note": "giftwrap", "financial_status": "paid"}` {
		t.Fatalf("stored body %s", stored)
	}
}

// TestManualDiscountEventScrubbed: a manual discount title or customer holding a NUL (from a
// reconciliation's GraphQL answer, which no intake scrubbed) is recorded without it.
func TestManualDiscountEventScrubbed(t *testing.T) {
	t.Parallel()
	w := shopify.OrderWebhook{Topic: "reconcile", OrderID: "1", ManualDiscountTitles: []string{"FAKE\x0030"},
		Customer: core.Recipient{Email: "bob\x00@example.com", ExternalID: "7\xff"}}
	ev, ok := w.ManualDiscountEvent("jsmith.myshopify.com")
	if !ok || ev.Titles[0] != "FAKE30" || ev.Customer.Email != "bob@example.com" || ev.Customer.ExternalID != "7" {
		t.Fatalf("%+v", ev)
	}
}
