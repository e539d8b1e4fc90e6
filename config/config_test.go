package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDefaultsWorkOnADeveloperMachine(t *testing.T) {
	c, err := load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://postgres@127.0.0.1:5432/coupons?sslmode=disable" || c.RedisURL != "redis://127.0.0.1:6379/0" ||
		c.HTTPAddr != ":8080" || c.AppURL != "http://localhost:8080" || c.HoldDuration != 15*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadRefusesBadSettings(t *testing.T) {
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
	}
	for _, tc := range tests {
		_, err := load(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}

func TestFieldsMaskSecrets(t *testing.T) {
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
