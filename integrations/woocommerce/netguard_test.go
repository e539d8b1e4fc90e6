package woocommerce_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/netguard"
)

// TestStoreDialsThroughTheGuard: REST calls to a store whose host name resolves to a loopback
// address are refused at dial time when the client dials through netguard: the error says why,
// is not retryable, and AddressRefused gives the reason to record. Allowed, the same calls work.
func TestStoreDialsThroughTheGuard(t *testing.T) {
	t.Parallel()
	fake := woofake.New(t, woofake.Config{})
	u, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	site := "http://localhost:" + u.Port()
	ctx := context.Background()
	store := woocommerce.Store{SiteURL: site, ConsumerKey: woofake.DefaultConsumerKey, ConsumerSecret: woofake.DefaultConsumerSecret,
		HTTP: netguard.Guard{}.Client(10 * time.Second)}

	calls := map[string]func() error{
		"system status": func() error { return store.SystemStatus(ctx) },
		"orders":        func() error { _, _, err := store.Orders(ctx, time.Now().Add(-time.Hour), 1, 10); return err },
		"coupon batch": func() error {
			_, err := store.BatchCoupons(ctx, woocommerce.CouponBatch{Create: []woocommerce.CouponInput{{Code: "save10", DiscountType: "percent", Amount: "10"}}})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		var apiErr *woocommerce.APIError
		if !errors.As(err, &apiErr) || apiErr.Retryable() || !errors.Is(err, netguard.ErrForbidden) {
			t.Fatalf("%s: %v, want a refusal that is not retried", name, err)
		}
		reason, ok := woocommerce.AddressRefused(err)
		if !ok || !strings.Contains(reason, "127.0.0.1") || !strings.Contains(reason, "connect the store again") {
			t.Fatalf("%s: AddressRefused = %q, %v", name, reason, ok)
		}
	}
	if n := fake.Requests(); n != 0 {
		t.Fatalf("the store was reached %d times", n)
	}

	store.HTTP = netguard.Guard{AllowPrivate: true}.Client(10 * time.Second)
	if err := store.SystemStatus(ctx); err != nil {
		t.Fatalf("with private networks allowed: %v", err)
	}
	if _, ok := woocommerce.AddressRefused(errors.New("connection reset")); ok {
		t.Fatal("AddressRefused took another error for a refusal")
	}
}
