package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

// appliedLog records what a WebhookObserver is told.
type appliedLog struct {
	mu       sync.Mutex
	times    map[uuid.UUID]int
	received map[uuid.UUID]time.Time
	paid     int
	redeemed int
}

func (l *appliedLog) WebhookApplied(d core.WebhookReceipt, batched, redeemed []core.OrderEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.times[d.ID]++
	l.received[d.ID] = d.ReceivedAt
	for _, ev := range batched {
		if ev.Status == core.OrderPaid {
			l.paid++
		}
	}
	l.redeemed += len(redeemed)
}

// TestWebhookObserverToldOfEachAppliedDelivery: whether a merchant's deliveries are applied in
// one transaction, in parallel parts, or one at a time, the observer (the operators' metrics) is
// told of every delivery once, with the time it was received and the uses its batch counted (one
// per redeemed event on the timelines); the backlog read beforehand counts them among the
// received deliveries, its oldest no younger than they are.
func TestWebhookObserverToldOfEachAppliedDelivery(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		size, parallel int
	}{
		{"batches of 7", 7, 1},
		{"batches of 100 in 3 parts", 100, 3},
		{"default batches", core.WebhookBatchSize, core.WebhookBatchParallel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWebhookShop(t, db, 1)
			log := &appliedLog{times: map[uuid.UUID]int{}, received: map[uuid.UUID]time.Time{}}
			w.batches.WithBatchSize(tc.size, tc.parallel).Observe(log)
			webhookScript(t, w)
			ready, err := db.ReadyWebhookReceipts(ctx, w.merchant, 10000, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(ready) == 0 {
				t.Fatal("the script stored no delivery")
			}
			backlogs, err := db.WebhookBacklogs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var shopifyBacklog *struct {
				count  int64
				oldest time.Duration
			}
			for _, b := range backlogs {
				if b.Platform == shopify.Platform {
					shopifyBacklog = &struct {
						count  int64
						oldest time.Duration
					}{b.Count, b.Oldest}
				}
			}
			youngest := time.Since(ready[len(ready)-1].ReceivedAt)
			if shopifyBacklog == nil || shopifyBacklog.count < int64(len(ready)) || shopifyBacklog.oldest < youngest {
				t.Fatalf("backlog %+v, want at least %d received, the oldest at least %v old", shopifyBacklog, len(ready), youngest)
			}
			before := time.Now()
			if err := w.batches.Run(ctx, w.merchant); err != nil {
				t.Fatal(err)
			}
			var processedOrIgnored int
			if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status <> 'received'`,
				w.merchant).Scan(&processedOrIgnored); err != nil {
				t.Fatal(err)
			}
			if len(log.times) != processedOrIgnored || processedOrIgnored != len(ready) {
				t.Errorf("observer told of %d deliveries; %d applied of %d received", len(log.times), processedOrIgnored, len(ready))
			}
			for _, d := range ready {
				if n := log.times[d.ID]; n != 1 {
					t.Errorf("delivery %s (%s) observed %d times, want once", d.ID, d.Topic, n)
				}
				if got := log.received[d.ID]; got.IsZero() || !got.Equal(d.ReceivedAt) || got.After(before) {
					t.Errorf("delivery %s observed as received at %v, stored at %v", d.ID, got, d.ReceivedAt)
				}
			}
			if log.paid == 0 {
				t.Error("no paid order event observed in the batches")
			}
			var redeemed int
			if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM code_events WHERE merchant_id = $1 AND type = 'redeemed'`,
				w.merchant).Scan(&redeemed); err != nil {
				t.Fatal(err)
			}
			if log.redeemed != redeemed || redeemed == 0 {
				t.Errorf("observer told of %d uses counted; the timelines hold %d", log.redeemed, redeemed)
			}
		})
	}
}
