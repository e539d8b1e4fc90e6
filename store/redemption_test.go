package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

// TestRedeemTransactionsNeverDeadlock: transactions of order events that name the same codes in
// opposite orders, run at once over and over, all commit (each locks its codes in one order,
// whatever the order of its events), and every use is counted.
func TestRedeemTransactionsNeverDeadlock(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	w := newWebhookShop(t, db, core.WebhookBatchSize)
	const nCodes, rounds = 8, 20
	uses := 1_000
	codes := make([]string, nCodes)
	for i := range codes {
		codes[i] = fmt.Sprintf("LOCKS-%d", i)
	}
	w.list(t, core.ListInput{Name: "locks", UsesPerCode: &uses}, codes...)
	fs, found, err := db.FindCodes(ctx, w.merchant, codes)
	if err != nil || slices.Contains(found, false) {
		t.Fatalf("codes not found: %v %v", found, err)
	}
	// apps are the events of one transaction: one paid order per code, in the order given.
	apps := func(tx string, order []int) []core.CodeApplication {
		out := make([]core.CodeApplication, len(order))
		for i, c := range order {
			ev := core.OrderEvent{Platform: shopify.Platform, Shop: w.shop, OrderID: fmt.Sprintf("%s-%d", tx, c), Status: core.OrderPaid}
			out[i] = core.CodeApplication{Event: ev, Code: fs[c]}
		}
		return out
	}
	forward, backward := make([]int, nCodes), make([]int, nCodes)
	for i := range nCodes {
		forward[i], backward[i] = i, nCodes-1-i
	}
	var wg sync.WaitGroup
	for g, order := range [][]int{forward, backward, forward, backward} {
		wg.Go(func() {
			for r := range rounds {
				if _, err := db.Redeem(ctx, w.merchant, apps(fmt.Sprintf("g%d-r%d", g, r), order), decideNow); err != nil {
					t.Errorf("transaction %d of client %d: %v", r, g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var total int
	if err := db.Pool().QueryRow(ctx, `SELECT coalesce(sum(uses), 0) FROM codes WHERE merchant_id = $1`, w.merchant).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if want := 4 * rounds * nCodes; total != want {
		t.Errorf("%d uses counted, want %d", total, want)
	}
}
