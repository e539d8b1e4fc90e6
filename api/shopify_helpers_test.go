package api_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// shopifyFixtureDir holds real Shopify order bodies, the Shopify adapter's test data.
const shopifyFixtureDir = "../integrations/shopify/testdata/orders"

// shopifyFixture reads one fixture body.
func shopifyFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shopifyFixtureDir, name))
	if err != nil {
		t.Fatalf("Shopify fixture: %v", err)
	}
	return b
}

// shopifyWebhook builds a delivery of body as Shopify sends it, signed with secret. An empty
// eventID sends no X-Shopify-Event-Id.
func shopifyWebhook(secret, topic, shop, eventID string, body []byte) apptest.Request {
	h := http.Header{}
	h.Set("X-Shopify-Topic", topic)
	h.Set("X-Shopify-Hmac-Sha256", shopifyfake.SignWebhook(secret, body))
	h.Set("X-Shopify-Shop-Domain", shop)
	h.Set("X-Shopify-Webhook-Id", uuid.NewString())
	if eventID != "" {
		h.Set("X-Shopify-Event-Id", eventID)
	}
	h.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	h.Set("X-Shopify-API-Version", "2025-01")
	return apptest.Request{Method: http.MethodPost, Path: "/webhooks/shopify", Body: bytes.NewReader(body),
		ContentType: "application/json", Header: h}
}

// connectShop records a Shopify connection and its route for the merchant, as install will; the
// route moves to this merchant when another had the shop.
func connectShop(t testing.TB, h *apptest.Harness, merchantID, shop string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	conn := uuid.New()
	if _, err := h.App.DB.Pool().Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, 'shopify', $3)`,
		merchantID, conn, shop); err != nil {
		t.Fatal(err)
	}
	if _, err := h.App.DB.Pool().Exec(ctx, `INSERT INTO shop_routes (platform, shop, merchant_id, connection_id) VALUES ('shopify', $1, $2, $3)
		ON CONFLICT (platform, shop) DO UPDATE SET merchant_id = excluded.merchant_id, connection_id = excluded.connection_id`,
		shop, merchantID, conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitDeliveries waits until the worker has finished every stored delivery of the merchant.
func waitDeliveries(t testing.TB, h *apptest.Harness, merchantID string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pending int
		if err := h.App.DB.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status = 'received'`, merchantID).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d webhook deliveries still unprocessed", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
