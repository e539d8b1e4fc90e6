package woocommerce_test

import (
	"testing"

	"github.com/coupongate/coupongate/integrations/woocommerce"
)

func TestCanonicalSiteURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{"https://Shop.Example.com/", "https://shop.example.com"},
		{"  https://shop.example.com  ", "https://shop.example.com"},
		{"https://shop.example.com:443", "https://shop.example.com"},
		{"http://shop.example.com:80/", "http://shop.example.com"},
		{"https://shop.example.com:8443", "https://shop.example.com:8443"},
		{"https://example.com/shop/?utm=1#top", "https://example.com/shop"},
		{"HTTPS://[::1]:443/", "https://[::1]"},
		{"ftp://shop.example.com", ""},
		{"shop.example.com", ""},
		{"https://user:pass@shop.example.com", ""},
		{"https://", ""},
		{"", ""},
	} {
		got, ok := woocommerce.CanonicalSiteURL(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("CanonicalSiteURL(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}
