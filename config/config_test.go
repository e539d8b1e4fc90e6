package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDefaultsWorkOnADeveloperMachine(t *testing.T) {
	t.Parallel()
	c, err := load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://postgres@127.0.0.1:5432/coupons?sslmode=disable" || c.RedisURL != "redis://127.0.0.1:6379/0" ||
		c.HTTPAddr != ":8080" || c.AppURL != "http://localhost:8080" || c.HoldDuration != 15*time.Minute ||
		c.AppBridgeURL != "https://cdn.shopify.com/shopifycloud/app-bridge.js" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestAppURLFollowsHTTPAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		httpAddr, appURL, want string
	}{
		{":9090", "", "http://localhost:9090"},
		{"0.0.0.0:9090", "", "http://localhost:9090"},
		{"[::]:9090", "", "http://localhost:9090"},
		{"127.0.0.1:9091", "", "http://127.0.0.1:9091"},
		{"[::1]:9092", "", "http://[::1]:9092"},
		{"gateway.internal:80", "", "http://gateway.internal:80"},
		{":9090", "https://coupons.example.com/", "https://coupons.example.com"},
	}
	for _, tc := range tests {
		c, err := load(func(k string) string {
			return map[string]string{"HTTP_ADDR": tc.httpAddr, "APP_URL": tc.appURL}[k]
		})
		if err != nil {
			t.Fatalf("HTTP_ADDR=%q APP_URL=%q: %v", tc.httpAddr, tc.appURL, err)
		}
		if c.AppURL != tc.want {
			t.Errorf("HTTP_ADDR=%q APP_URL=%q: app URL %q, want %q", tc.httpAddr, tc.appURL, c.AppURL, tc.want)
		}
	}
}

func TestLoadRefusesBadSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "not a url"}, "DATABASE_URL"},
		{map[string]string{"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"},
		{map[string]string{"MAX_UPLOAD_BYTES": "0"}, "MAX_UPLOAD_BYTES must be positive"},
		{map[string]string{"HOLD_DURATION": "15"}, "HOLD_DURATION"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"APP_SECRET": "short"}, "APP_SECRET"},
		{map[string]string{"SHOPIFY_ADMIN_URL": "https://example.com"}, "SHOPIFY_ADMIN_URL"},
		{map[string]string{"APP_BRIDGE_URL": "app-bridge.js"}, "APP_BRIDGE_URL"},
		{map[string]string{"QUEUE_PREFIX": "{staging}"}, "QUEUE_PREFIX"},
		{map[string]string{"QUEUE_PREFIX": "staging:"}, "QUEUE_PREFIX"},
		{map[string]string{"QUEUE_PREFIX": strings.Repeat("s", 33)}, "QUEUE_PREFIX"},
	}
	for _, tc := range tests {
		_, err := load(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}

func TestFieldsMaskSecrets(t *testing.T) {
	t.Parallel()
	c, err := load(func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://app:hunter2@db:5432/coupons", "APP_SECRET": strings.Repeat("s", 40),
			"SHOPIFY_API_SECRET": "shpss_secret"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range c.Fields() {
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmtAny(f), "\n", " ")) + " ")
	}
	logged := b.String()
	for _, secret := range []string{"hunter2", strings.Repeat("s", 40), "shpss_secret"} {
		if strings.Contains(logged, secret) {
			t.Fatalf("a secret is in the start-up fields: %s", logged)
		}
	}
	if !strings.Contains(logged, "postgres://app:xxxxx@db:5432/coupons") {
		t.Fatalf("the masked database URL is missing: %s", logged)
	}
}

func fmtAny(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return strings.Join(x, ",")
	}
	return ""
}
