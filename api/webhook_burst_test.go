package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestShopifyWebhookBurstIsApplied: a burst of paid orders from many clients at once, in waves,
// each delivered twice, is applied by the worker's batches as it comes, every code counted
// once, each order's events (pending, then paid) in the order they arrived; none waits for the
// sweeper (waitDeliveries gives up long before core.StallAfter).
func TestShopifyWebhookBurstIsApplied(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.ShopifyAPISecret = testShopifySecret
	}})
	ctx := context.Background()
	m := h.NewMerchant(t, "Burst Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Burst codes"})
	const clients, waves, perWave = 16, 4, 48
	codes := make([]string, waves*perWave)
	for i := range codes {
		codes[i] = fmt.Sprintf("BURST-%04d", i)
	}
	importByHand(t, h, m, list, "test", codes...)
	const shop = "burst-shop.myshopify.com"
	connectShop(t, h, m.ID, shop)

	order := func(i int, financial string) []byte {
		b, _ := json.Marshal(map[string]any{"id": 7_000 + i, "name": fmt.Sprintf("#%d", i), "email": fmt.Sprintf("b%d@example.com", i),
			"financial_status": financial, "discount_applications": []any{map[string]any{"type": "discount_code", "code": codes[i],
				"value": "10.0", "value_type": "percentage"}}})
		return b
	}
	send := func(topic, event string, body []byte, want string) {
		r := h.Do(t, shopifyWebhook(testShopifySecret, topic, shop, event, body))
		if got, _ := r.Map(t)["status"].(string); r.Status != http.StatusOK || got != want {
			t.Errorf("delivery %s: %d %s, want %s", event, r.Status, r.Body, want)
		}
	}
	for wave := range waves {
		var wg sync.WaitGroup
		next := make(chan int)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					send("orders/create", fmt.Sprintf("create-%d", i), order(i, "pending"), "accepted")
					paid := fmt.Sprintf("paid-%d", i)
					send("orders/paid", paid, order(i, "paid"), "accepted")
					send("orders/paid", paid, order(i, "paid"), "duplicate")
				}
			}()
		}
		for i := wave * perWave; i < (wave+1)*perWave; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		waitDeliveries(t, h, m.ID) // a quiet moment: the wave is applied, the batch holding the merchant ends
	}

	var once, uses, stored int
	if err := h.App.DB.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE uses = 1), coalesce(sum(uses), 0),
			(SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status = 'processed')
		FROM codes WHERE merchant_id = $1`, m.ID).Scan(&once, &uses, &stored); err != nil {
		t.Fatal(err)
	}
	if once != len(codes) || uses != len(codes) || stored != 2*len(codes) {
		t.Fatalf("%d codes used once, %d uses, %d deliveries processed; want %d, %d, %d", once, uses, stored, len(codes), len(codes), 2*len(codes))
	}
	var outOfOrder int
	if err := h.App.DB.Pool().QueryRow(ctx, `SELECT count(*) FROM codes k
		WHERE k.merchant_id = $1 AND (SELECT array_agg(e.type ORDER BY e.at, e.id) FROM code_events e
			WHERE e.merchant_id = k.merchant_id AND e.list_id = k.list_id AND e.seq = k.seq) <> ARRAY['order_pending', 'redeemed']`,
		m.ID).Scan(&outOfOrder); err != nil {
		t.Fatal(err)
	}
	if outOfOrder != 0 {
		t.Fatalf("%d codes' timelines are not pending then redeemed", outOfOrder)
	}
}
