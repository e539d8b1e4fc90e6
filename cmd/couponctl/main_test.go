package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/store"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

// couponctl runs the command with args and decodes its --json output into a map.
func couponctl(t *testing.T, args ...string) (map[string]string, error) {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		return nil, err
	}
	var m map[string]string
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("couponctl %s: output is not JSON (%v): %s", strings.Join(args, " "), err, out.Bytes())
	}
	return m, nil
}

func TestKeysRotate(t *testing.T) {
	t.Parallel()
	useTestEnv(t)
	created, err := couponctl(t, "merchant", "create", "--name", "CLI Shop", "--json")
	if err != nil {
		t.Fatal(err)
	}
	other, err := couponctl(t, "merchant", "create", "--name", "CLI Other Shop", "--json")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	rotated, err := couponctl(t, "keys", "rotate", "--merchant", created["merchant_id"], "--kind", "admin", "--grace", "24h", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if rotated["kind"] != "admin" || rotated["merchant_id"] != created["merchant_id"] ||
		!strings.HasPrefix(rotated["key"], "cg_admin_") || rotated["key"] == created["api_key"] {
		t.Fatalf("keys rotate answered %v", rotated)
	}
	if rotated["previous_expires_at"] != rotated["previous_key_expires_at"] {
		t.Fatalf("previous_expires_at (the contract's name) %q differs from previous_key_expires_at %q",
			rotated["previous_expires_at"], rotated["previous_key_expires_at"])
	}
	expires, err := time.Parse(time.RFC3339Nano, rotated["previous_expires_at"])
	if err != nil || expires.Before(before.Add(24*time.Hour-time.Second)) || expires.After(time.Now().Add(24*time.Hour)) {
		t.Fatalf("previous_key_expires_at %q, want 24 hours from now", rotated["previous_key_expires_at"])
	}

	// Check the keys as the gateway does, on a clock that can be moved past the grace period.
	db, err := store.Open(context.Background(), env.DatabaseURL, 2, dbtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	merchants := core.NewMerchants(db)
	offset := time.Duration(0)
	merchants.SetClock(func() time.Time { return time.Now().Add(offset) })
	accepted := func(kind core.KeyKind, key string) bool {
		t.Helper()
		_, err := merchants.AuthenticateKey(context.Background(), kind, key)
		if err != nil && !core.IsKind(err, core.KindUnauthorized) {
			t.Fatal(err)
		}
		return err == nil
	}
	if !accepted(core.KeyAdmin, created["api_key"]) || !accepted(core.KeyAdmin, rotated["key"]) {
		t.Fatal("during the grace period both admin keys must work")
	}
	offset = 24*time.Hour + time.Second
	if accepted(core.KeyAdmin, created["api_key"]) {
		t.Fatal("the old admin key still works after the grace period")
	}
	if !accepted(core.KeyAdmin, rotated["key"]) || !accepted(core.KeyStorefront, created["storefront_key"]) {
		t.Fatal("the new admin key or the untouched storefront key is refused")
	}
	if !accepted(core.KeyAdmin, other["api_key"]) || !accepted(core.KeyStorefront, other["storefront_key"]) {
		t.Fatal("another merchant's keys changed")
	}

	// Without --grace the old key stops at once.
	sf, err := couponctl(t, "keys", "rotate", "--merchant", created["merchant_id"], "--kind", "storefront", "--json")
	if err != nil {
		t.Fatal(err)
	}
	offset = 0
	if accepted(core.KeyStorefront, created["storefront_key"]) || !accepted(core.KeyStorefront, sf["key"]) {
		t.Fatal("a rotation without grace must stop the old storefront key at once and start the new one")
	}
}

func TestKeysRotateRefusals(t *testing.T) {
	t.Parallel()
	useTestEnv(t)
	id := uuid.NewString()
	tests := []struct {
		name  string
		args  []string
		usage bool
		code  string
	}{
		{"no merchant", []string{"--kind", "admin"}, true, ""},
		{"another kind", []string{"--merchant", id, "--kind", "webhook"}, true, ""},
		{"grace over 30 days", []string{"--merchant", id, "--kind", "admin", "--grace", "721h"}, true, ""},
		{"negative grace", []string{"--merchant", id, "--kind", "admin", "--grace", "-1s"}, true, ""},
		{"unknown merchant", []string{"--merchant", id, "--kind", "admin"}, false, "merchant_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := couponctl(t, append([]string{"keys", "rotate", "--json"}, tc.args...)...)
			var ue usageError
			var ce *core.Error
			switch {
			case err == nil:
				t.Fatal("accepted")
			case tc.usage && !errors.As(err, &ue):
				t.Fatalf("want a usage error, got %v", err)
			case tc.code != "" && (!errors.As(err, &ce) || ce.Code != tc.code):
				t.Fatalf("want %s, got %v", tc.code, err)
			}
		})
	}
}
