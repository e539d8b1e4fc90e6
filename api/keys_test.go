package api_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/internal/apptest"
)

// keyClock moves the merchant service's clock, the one that ends grace periods, without waiting.
type keyClock struct{ offset atomic.Int64 }

func (k *keyClock) now() time.Time          { return time.Now().Add(time.Duration(k.offset.Load())) }
func (k *keyClock) advance(d time.Duration) { k.offset.Add(int64(d)) }
func startWithKeyClock(t *testing.T) (*apptest.Harness, *keyClock) {
	t.Helper()
	h := apptest.Start(t, env, apptest.Options{})
	clock := &keyClock{}
	h.App.Merchants.SetClock(clock.now)
	return h, clock
}

type rotated struct {
	Kind                 string    `json:"kind"`
	Key                  string    `json:"key"`
	PreviousKeyExpiresAt time.Time `json:"previous_key_expires_at"`
}

// rotate rotates a key with the admin key apiKey and returns the new one.
func rotate(t *testing.T, h *apptest.Harness, apiKey, kind string, grace int) rotated {
	t.Helper()
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/keys/" + kind + "/rotate",
		APIKey: apiKey, JSON: map[string]any{"grace_seconds": grace}})
	if r.Status != http.StatusCreated {
		t.Fatalf("rotate %s: status %d: %s", kind, r.Status, r.Body)
	}
	var out rotated
	r.JSON(t, &out)
	if out.Kind != kind || !strings.HasPrefix(out.Key, map[string]string{"admin": "cg_admin_", "storefront": "cg_store_"}[kind]) {
		t.Fatalf("rotate %s answered %+v", kind, out)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the new key may be cached on the way: Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	return out
}

// adminStatus is the status of an admin read made with key.
func adminStatus(t *testing.T, h *apptest.Harness, key string) int {
	t.Helper()
	return h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: key}).Status
}

// storefrontStatus is the status of a storefront call made with key: 404 (no such reservation)
// once the key is accepted, 401 when it is not.
func storefrontStatus(t *testing.T, h *apptest.Harness, key string) int {
	t.Helper()
	return h.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/storefront/v1/reservations/" + uuid.NewString(), Storefront: key}).Status
}

func TestRotateAdminKeyWithGrace(t *testing.T) {
	t.Parallel()
	h, clock := startWithKeyClock(t)
	m := h.NewMerchant(t, "Rotating Shop")
	before := time.Now()

	// The admin key rotates itself; both keys work during the grace period.
	first := rotate(t, h, m.APIKey, "admin", 3600)
	if first.Key == m.APIKey {
		t.Fatal("the rotation answered the old key")
	}
	if got := first.PreviousKeyExpiresAt; got.Before(before.Add(time.Hour-time.Second)) || got.After(time.Now().Add(time.Hour+time.Second)) {
		t.Fatalf("previous_key_expires_at %s, want an hour from now", got)
	}
	for name, key := range map[string]string{"old": m.APIKey, "new": first.Key} {
		if s := adminStatus(t, h, key); s != http.StatusOK {
			t.Fatalf("%s key during the grace period: status %d", name, s)
		}
	}
	// The storefront key is another key: it is untouched.
	if s := storefrontStatus(t, h, m.StorefrontKey); s != http.StatusNotFound {
		t.Fatalf("storefront key after an admin rotation: status %d", s)
	}

	// Past the grace period the old key is refused, even though it was just accepted (and cached).
	clock.advance(time.Hour + time.Second)
	if s := adminStatus(t, h, m.APIKey); s != http.StatusUnauthorized {
		t.Fatalf("old key after the grace period: status %d, want 401", s)
	}
	if s := adminStatus(t, h, first.Key); s != http.StatusOK {
		t.Fatalf("new key after the grace period: status %d", s)
	}

	// Rotating during a grace period: the key being replaced becomes the previous one, and the
	// older previous key stops at once.
	second := rotate(t, h, first.Key, "admin", 600)
	third := rotate(t, h, second.Key, "admin", 10)
	if s := adminStatus(t, h, first.Key); s != http.StatusUnauthorized {
		t.Fatalf("the key two rotations back: status %d, want 401", s)
	}
	for name, key := range map[string]string{"previous": second.Key, "current": third.Key} {
		if s := adminStatus(t, h, key); s != http.StatusOK {
			t.Fatalf("%s key: status %d", name, s)
		}
	}
	// A grace period shorter than the key cache's life still ends on time: the previous key was
	// just accepted (and cached), and is refused 11 seconds later.
	clock.advance(11 * time.Second)
	if s := adminStatus(t, h, second.Key); s != http.StatusUnauthorized {
		t.Fatalf("previous key 11 s into a 10 s grace period: status %d, want 401", s)
	}
	if s := adminStatus(t, h, third.Key); s != http.StatusOK {
		t.Fatalf("current key: status %d", s)
	}
}

func TestRotateWithoutGraceStopsTheOldKeyAtOnce(t *testing.T) {
	t.Parallel()
	h, _ := startWithKeyClock(t)
	m := h.NewMerchant(t, "Leaked Key Shop")
	// Both keys were used, so this process has them cached.
	if adminStatus(t, h, m.APIKey) != http.StatusOK || storefrontStatus(t, h, m.StorefrontKey) != http.StatusNotFound {
		t.Fatal("fresh keys refused")
	}

	// An empty body is a rotation without grace.
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/keys/admin/rotate", APIKey: m.APIKey})
	if r.Status != http.StatusCreated {
		t.Fatalf("rotate without a body: status %d: %s", r.Status, r.Body)
	}
	var admin rotated
	r.JSON(t, &admin)
	if s := adminStatus(t, h, m.APIKey); s != http.StatusUnauthorized {
		t.Fatalf("old admin key right after a rotation without grace: status %d, want 401", s)
	}
	if s := adminStatus(t, h, admin.Key); s != http.StatusOK {
		t.Fatalf("new admin key: status %d", s)
	}

	store := rotate(t, h, admin.Key, "storefront", 0)
	if s := storefrontStatus(t, h, m.StorefrontKey); s != http.StatusUnauthorized {
		t.Fatalf("old storefront key right after a rotation without grace: status %d, want 401", s)
	}
	if s := storefrontStatus(t, h, store.Key); s != http.StatusNotFound {
		t.Fatalf("new storefront key: status %d", s)
	}
}

func TestRotateStorefrontKeyWithGrace(t *testing.T) {
	t.Parallel()
	h, clock := startWithKeyClock(t)
	m := h.NewMerchant(t, "Storefront Shop")
	if storefrontStatus(t, h, m.StorefrontKey) != http.StatusNotFound {
		t.Fatal("fresh storefront key refused")
	}
	k := rotate(t, h, m.APIKey, "storefront", 86400)
	for name, key := range map[string]string{"old": m.StorefrontKey, "new": k.Key} {
		if s := storefrontStatus(t, h, key); s != http.StatusNotFound {
			t.Fatalf("%s storefront key during the grace period: status %d", name, s)
		}
	}
	if s := adminStatus(t, h, m.APIKey); s != http.StatusOK {
		t.Fatalf("admin key after a storefront rotation: status %d", s)
	}
	clock.advance(24*time.Hour + time.Second)
	if s := storefrontStatus(t, h, m.StorefrontKey); s != http.StatusUnauthorized {
		t.Fatalf("old storefront key after the grace period: status %d, want 401", s)
	}
	if s := storefrontStatus(t, h, k.Key); s != http.StatusNotFound {
		t.Fatalf("new storefront key after the grace period: status %d", s)
	}
}

func TestRotateKeyIsolatesTenants(t *testing.T) {
	t.Parallel()
	h, clock := startWithKeyClock(t)
	a := h.NewMerchant(t, "Tenant A")
	b := h.NewMerchant(t, "Tenant B")
	listB := h.CreateList(t, b, map[string]any{"name": "B's list"})

	newA := rotate(t, h, a.APIKey, "admin", 0)
	rotate(t, h, newA.Key, "storefront", 0)
	clock.advance(31 * 24 * time.Hour)

	// B's keys are untouched by A's rotations.
	if s := adminStatus(t, h, b.APIKey); s != http.StatusOK {
		t.Fatalf("B's admin key after A rotated: status %d", s)
	}
	if s := storefrontStatus(t, h, b.StorefrontKey); s != http.StatusNotFound {
		t.Fatalf("B's storefront key after A rotated: status %d", s)
	}
	// A's new key is A's: it does not reach B's list.
	if r := h.Admin(t, apptest.Merchant{APIKey: newA.Key}, http.MethodGet, "/api/v1/lists/"+listB, nil); r.Status != http.StatusNotFound {
		t.Fatalf("A's new key reading B's list: status %d: %s", r.Status, r.Body)
	}
}

func TestRotateKeyRefusals(t *testing.T) {
	t.Parallel()
	h, _ := startWithKeyClock(t)
	m := h.NewMerchant(t, "Refusing Shop")
	tests := []struct {
		name   string
		kind   string
		body   any
		status int
		code   string
	}{
		{"another kind of key", "webhook", map[string]any{"grace_seconds": 0}, 404, "key_kind_not_found"},
		{"negative grace", "admin", map[string]any{"grace_seconds": -1}, 422, "invalid_field"},
		{"grace over 30 days", "admin", map[string]any{"grace_seconds": 2592001}, 422, "invalid_field"},
		{"grace not a number", "storefront", map[string]any{"grace_seconds": "1h"}, 422, "invalid_field"},
		{"grace that overflows", "admin", map[string]any{"grace_seconds": int64(1) << 62}, 422, "invalid_field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/keys/" + tc.kind + "/rotate", APIKey: m.APIKey, JSON: tc.body})
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("status %d code %q, want %d %q: %s", r.Status, r.ErrorCode(), tc.status, tc.code, r.Body)
			}
		})
	}
	// Nothing was rotated by a refused call.
	if adminStatus(t, h, m.APIKey) != http.StatusOK || storefrontStatus(t, h, m.StorefrontKey) != http.StatusNotFound {
		t.Fatal("a refused rotation changed a key")
	}
	// A storefront key cannot rotate anything.
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/keys/storefront/rotate", APIKey: m.StorefrontKey})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("rotation with the storefront key: status %d", r.Status)
	}
}
