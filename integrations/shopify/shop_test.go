package shopify_test

import (
	"strings"
	"testing"

	"github.com/coupongate/coupongate/integrations/shopify"
)

func TestValidShopDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		shop string
		want string // canonical form; "" when refused
	}{
		{"some-shop.myshopify.com", "some-shop.myshopify.com"},
		{"a.myshopify.com", "a.myshopify.com"},
		{"0shop.myshopify.com", "0shop.myshopify.com"},
		{"shop-1-2.myshopify.com", "shop-1-2.myshopify.com"},
		{"Some-Shop.MyShopify.COM", "some-shop.myshopify.com"},
		{strings.Repeat("a", 63) + ".myshopify.com", strings.Repeat("a", 63) + ".myshopify.com"},

		{"", ""},
		{".myshopify.com", ""},
		{"myshopify.com", ""},
		{"-shop.myshopify.com", ""},
		{"shop_1.myshopify.com", ""},
		{"shop.example.com", ""},
		{"shop.myshopify.com.evil.com", ""},
		{"evil.com/shop.myshopify.com", ""},
		{"shop.myshopify.com/admin", ""},
		{"shop.myshopify.com:443", ""},
		{"user@shop.myshopify.com", ""},
		{"https://shop.myshopify.com", ""},
		{"shop.myshopify.com.", ""},
		{" shop.myshopify.com", ""},
		{"shop.myshopify.com\n", ""},
		{"sub.shop.myshopify.com", ""},
		{"shop.myshopify.io", ""},
		{"admin.shopify.com/store/shop", ""},
		{"shop.myshopifyxcom", ""},
		{"\u212Aelvin.myshopify.com", ""}, // KELVIN SIGN lower-cases to 'k' under Unicode rules
		{"shöp.myshopify.com", ""},
		{strings.Repeat("a", 64) + ".myshopify.com", ""},
	}
	for _, tt := range tests {
		got, ok := shopify.CanonicalShop(tt.shop)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("CanonicalShop(%q) = %q, %v; want %q", tt.shop, got, ok, tt.want)
		}
		if v := shopify.ValidShopDomain(tt.shop); v != (tt.want != "") {
			t.Errorf("ValidShopDomain(%q) = %v", tt.shop, v)
		}
	}
}
