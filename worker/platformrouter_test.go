package worker

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// connections is a ConnectionGetter over a map.
type connections map[uuid.UUID]core.Connection

func (c connections) GetConnection(_ context.Context, _ uuid.UUID, id uuid.UUID) (core.Connection, error) {
	conn, ok := c[id]
	if !ok {
		return core.Connection{}, core.ErrConnectionNotFound
	}
	return conn, nil
}

// platformWork records which connections a platform was asked to work on.
type platformWork struct{ pushed, reconciled, disconnected []uuid.UUID }

func (w *platformWork) RunPush(_ context.Context, _, _, conn uuid.UUID) error {
	w.pushed = append(w.pushed, conn)
	return nil
}
func (w *platformWork) Reconcile(_ context.Context, _, conn uuid.UUID) error {
	w.reconciled = append(w.reconciled, conn)
	return nil
}
func (w *platformWork) ReconcileAll(context.Context) error { return nil }
func (w *platformWork) Disconnect(_ context.Context, _, conn uuid.UUID) error {
	w.disconnected = append(w.disconnected, conn)
	return nil
}

// TestPlatformRouterSendsWorkToTheConnectionsPlatform: each connection's work reaches its own
// platform; a connection that is gone is nothing to do; a platform nobody serves is an error.
func TestPlatformRouterSendsWorkToTheConnectionsPlatform(t *testing.T) {
	t.Parallel()
	merchant, list := uuid.New(), uuid.New()
	shop, store, odd, gone := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	var shopify, woo platformWork
	r := PlatformRouter{
		Connections: connections{
			shop:  {ID: shop, Platform: "shopify"},
			store: {ID: store, Platform: "woocommerce"},
			odd:   {ID: odd, Platform: "bigcommerce"},
		},
		Pushers:       map[string]PushRunner{"shopify": &shopify, "woocommerce": &woo},
		Reconcilers:   map[string]Reconciler{"shopify": &shopify, "woocommerce": &woo},
		Disconnectors: map[string]Disconnector{"shopify": &shopify, "woocommerce": &woo},
	}
	ctx := context.Background()
	for _, conn := range []uuid.UUID{shop, store, gone} {
		if err := r.RunPush(ctx, merchant, list, conn); err != nil {
			t.Fatalf("push %v: %v", conn, err)
		}
		if err := r.Reconcile(ctx, merchant, conn); err != nil {
			t.Fatalf("reconcile %v: %v", conn, err)
		}
		if err := r.Disconnect(ctx, merchant, conn); err != nil {
			t.Fatalf("disconnect %v: %v", conn, err)
		}
	}
	for name, w := range map[string]struct {
		work *platformWork
		want uuid.UUID
	}{"shopify": {&shopify, shop}, "woocommerce": {&woo, store}} {
		for what, got := range map[string][]uuid.UUID{"pushed": w.work.pushed, "reconciled": w.work.reconciled, "disconnected": w.work.disconnected} {
			if len(got) != 1 || got[0] != w.want {
				t.Errorf("%s %s %v, want only its own connection %v", name, what, got, w.want)
			}
		}
	}
	if err := r.RunPush(ctx, merchant, list, odd); err == nil {
		t.Error("a push for a platform nobody serves did not fail")
	}
}
