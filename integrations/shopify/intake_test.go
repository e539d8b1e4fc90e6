package shopify_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

type fakeIntakeStore struct {
	route      shopify.ShopRoute
	known      bool
	deliveries map[string]shopify.WebhookReceipt
}

func (s *fakeIntakeStore) StoreWebhookReceipt(_ context.Context, d *shopify.WebhookReceipt) (bool, bool, error) {
	if !s.known || d.Shop != "test-shop.myshopify.com" {
		return false, false, nil
	}
	d.MerchantID = s.route.MerchantID
	if _, ok := s.deliveries[d.EventKey]; ok {
		return true, false, nil
	}
	s.deliveries[d.EventKey] = *d
	return true, true, nil
}

type fakeWebhookQueue struct {
	err    error
	queued []uuid.UUID // merchants whose deliveries were queued
}

func (q *fakeWebhookQueue) EnqueueWebhookBatch(_ context.Context, merchantID uuid.UUID) error {
	q.queued = append(q.queued, merchantID)
	return q.err
}

func webhookHeader(secret, shop, event string, body []byte) http.Header {
	h := http.Header{}
	h.Set(shopify.HeaderHmac, shopify.SignWebhook(body, secret))
	h.Set(shopify.HeaderTopic, "orders/paid")
	h.Set(shopify.HeaderShopDomain, shop)
	h.Set(shopify.HeaderWebhookID, "wh-1")
	if event != "" {
		h.Set(shopify.HeaderEventID, event)
	}
	return h
}

func TestIntakeReceive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	body := []byte(`{"id": 1}`)
	store := &fakeIntakeStore{route: shopify.ShopRoute{MerchantID: uuid.New()}, known: true, deliveries: map[string]shopify.WebhookReceipt{}}
	q := &fakeWebhookQueue{}
	in := shopify.NewIntake(store, q, log, "", "secret")

	if got, err := in.Receive(ctx, webhookHeader("secret", "Test-Shop.myshopify.com", "ev-1", body), body); err != nil || got != shopify.WebhookAccepted {
		t.Fatalf("first delivery: %q, %v", got, err)
	}
	d := store.deliveries["ev-1"]
	if d.Shop != "test-shop.myshopify.com" || d.Topic != "orders/paid" || d.WebhookID != "wh-1" || len(q.queued) != 1 || q.queued[0] != d.MerchantID {
		t.Fatalf("stored %+v, queued %v", d, q.queued)
	}
	if got, _ := in.Receive(ctx, webhookHeader("secret", "test-shop.myshopify.com", "ev-1", body), body); got != shopify.WebhookDuplicate || len(q.queued) != 1 {
		t.Fatalf("duplicate: %q, queued %d", got, len(q.queued))
	}
	// The webhook id is the key without an event id.
	if got, _ := in.Receive(ctx, webhookHeader("secret", "test-shop.myshopify.com", "", body), body); got != shopify.WebhookAccepted || store.deliveries["wh-1"].ID == uuid.Nil {
		t.Fatalf("no event id: %q", got)
	}
	if got, _ := in.Receive(ctx, webhookHeader("secret", "other.myshopify.com", "ev-2", body), body); got != shopify.WebhookIgnored {
		t.Fatalf("unknown shop: %q", got)
	}
	// A failed enqueue after the insert still accepts: the delivery is stored.
	q.err = errors.New("redis down")
	if got, err := in.Receive(ctx, webhookHeader("secret", "test-shop.myshopify.com", "ev-3", body), body); err != nil || got != shopify.WebhookAccepted {
		t.Fatalf("enqueue failure: %q, %v", got, err)
	}

	for name, tc := range map[string]struct {
		in     *shopify.Intake
		header http.Header
		want   error
	}{
		"wrong secret": {in, webhookHeader("nope", "test-shop.myshopify.com", "ev-9", body), shopify.ErrWebhookSignature},
		"no secret":    {shopify.NewIntake(store, q, log, ""), webhookHeader("", "test-shop.myshopify.com", "ev-9", body), shopify.ErrWebhookSignature},
		"bad shop":     {in, webhookHeader("secret", "evil.example.com", "ev-9", body), shopify.ErrWebhookShop},
	} {
		if _, err := tc.in.Receive(ctx, tc.header, body); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	var ce *core.Error
	if _, err := in.Receive(ctx, webhookHeader("nope", "test-shop.myshopify.com", "ev-9", body), body); !errors.As(err, &ce) || ce.Kind != core.KindUnauthorized || ce.Code != "invalid_signature" {
		t.Fatalf("signature error %v", err)
	}
}
