package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

func TestListCreateValidation(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Validation Shop")
	tests := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"defaults", map[string]any{"name": "Spring"}, 201, "", ""},
		{"fixed list", map[string]any{"name": "Flyer", "kind": "fixed", "fixed_code": "WELCOME10", "max_assignments": 100}, 201, "", ""},
		{"no name", map[string]any{"description": "x"}, 422, "invalid_field", "name"},
		{"unknown kind", map[string]any{"name": "a", "kind": "weird"}, 422, "invalid_field", "kind"},
		{"fixed without code", map[string]any{"name": "a", "kind": "fixed"}, 422, "invalid_field", "fixed_code"},
		{"fixed code with space", map[string]any{"name": "a", "kind": "fixed", "fixed_code": "A B"}, 422, "invalid_field", "fixed_code"},
		{"require_issued with uses", map[string]any{"name": "a", "require_issued": true, "uses_per_code": 2}, 422, "invalid_field", "require_issued"},
		{"zero uses", map[string]any{"name": "a", "uses_per_code": 0}, 422, "invalid_field", "uses_per_code"},
		{"expiry before start", map[string]any{"name": "a", "starts_at": "2030-01-02T00:00:00Z", "expires_at": "2030-01-01T00:00:00Z"}, 422, "invalid_field", "expires_at"},
		{"negative window", map[string]any{"name": "a", "reassign_window": -1}, 422, "invalid_field", "reassign_window"},
		{"string for number", map[string]any{"name": "a", "uses_per_code": "2"}, 422, "invalid_field", "uses_per_code"},
		{"bad date", map[string]any{"name": "a", "expires_at": "tomorrow"}, 400, "malformed_request", ""},
		{"not an object", []int{1, 2}, 422, "invalid_field", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.Admin(t, m, http.MethodPost, "/api/v1/lists", tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.code != "" && r.ErrorCode() != tc.code {
				t.Fatalf("error code %q, want %q: %s", r.ErrorCode(), tc.code, r.Body)
			}
			if tc.name == "bad date" && !strings.Contains(string(r.Body), "RFC 3339") {
				t.Fatalf("the message does not say what a time looks like: %s", r.Body)
			}
			if tc.name == "string for number" && !strings.Contains(string(r.Body), "must be a whole number") {
				t.Fatalf("the message does not say what the field takes: %s", r.Body)
			}
			if tc.field != "" {
				var e struct {
					Error struct {
						Details []struct{ Field string } `json:"details"`
					} `json:"error"`
				}
				r.JSON(t, &e)
				if len(e.Error.Details) == 0 || e.Error.Details[0].Field != tc.field {
					t.Fatalf("details %s do not name field %q", r.Body, tc.field)
				}
			}
		})
	}
}

func TestListDefaultsAndStatus(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Status Shop")
	r := h.Admin(t, m, http.MethodPost, "/api/v1/lists", map[string]any{"name": "Spring"})
	l := r.Map(t)
	if l["kind"] != "unique" || l["uses_per_code"] != 1.0 || l["reassign_window"] != 86400.0 || l["case_insensitive"] != false {
		t.Fatalf("defaults wrong: %s", r.Body)
	}
	// An empty unique list has not run out: it is active with nothing available yet.
	if l["status"] != "active" {
		t.Fatalf("empty list status %v, want active", l["status"])
	}
	fixed := h.Admin(t, m, http.MethodPost, "/api/v1/lists", map[string]any{"name": "F", "kind": "fixed", "fixed_code": "SAVE5"}).Map(t)
	if fixed["status"] != "active" || fixed["counts"].(map[string]any)["total"] != 1.0 || fixed["fixed_code"] != "SAVE5" {
		t.Fatalf("fixed list: %v", fixed)
	}
	id := fixed["id"].(string)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	r = h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+id, map[string]any{"expires_at": past})
	if r.Status != 200 || r.Map(t)["status"] != "expired" {
		t.Fatalf("expired list: %d %s", r.Status, r.Body)
	}
	r = h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+id, map[string]any{"archived": true})
	if r.Map(t)["status"] != "archived" {
		t.Fatalf("archived list: %s", r.Body)
	}
	r = h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+id, map[string]any{"archived": false, "expires_at": nil})
	if got := r.Map(t); got["status"] != "active" || got["expires_at"] != nil {
		t.Fatalf("unarchived, unexpired list: %s", r.Body)
	}
}

func TestListUpdate(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Update Shop")
	id := h.CreateList(t, m, map[string]any{"name": "Spring", "case_insensitive": true})
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"rename", map[string]any{"name": "Summer", "description": "new"}, 200, ""},
		{"kind is immutable", map[string]any{"kind": "fixed"}, 422, "immutable_field"},
		{"case_insensitive is immutable", map[string]any{"case_insensitive": false}, 422, "immutable_field"},
		{"same value is fine", map[string]any{"case_insensitive": true, "kind": "unique"}, 200, ""},
		{"threshold", map[string]any{"low_stock_threshold": 10, "reassign_window": 60}, 200, ""},
		{"empty name", map[string]any{"name": " "}, 422, "invalid_field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+id, tc.body)
			if r.Status != tc.status || (tc.code != "" && r.ErrorCode() != tc.code) {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
	got := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+id, nil).Map(t)
	if got["name"] != "Summer" || got["description"] != "new" || got["low_stock_threshold"] != 10.0 || got["reassign_window"] != 60.0 {
		t.Fatalf("updates not kept: %v", got)
	}
}

func TestListsAreScopedToTheMerchant(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	alice := h.NewMerchant(t, "Alice")
	bob := h.NewMerchant(t, "Bob")
	id := h.CreateList(t, alice, map[string]any{"name": "Alice's"})
	for _, tc := range []struct {
		method string
		body   any
	}{{http.MethodGet, nil}, {http.MethodPatch, map[string]any{"name": "stolen"}}, {http.MethodDelete, nil}} {
		r := h.Admin(t, bob, tc.method, "/api/v1/lists/"+id, tc.body)
		if r.Status != http.StatusNotFound || r.ErrorCode() != "list_not_found" {
			t.Fatalf("%s by another merchant: %d %s", tc.method, r.Status, r.Body)
		}
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	h.Admin(t, bob, http.MethodGet, "/api/v1/lists", nil).JSON(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("bob sees %d lists", len(page.Items))
	}
	if r := h.Admin(t, alice, http.MethodGet, "/api/v1/lists/"+id, nil); r.Status != 200 {
		t.Fatalf("alice lost her list: %d", r.Status)
	}
	if r := h.Admin(t, alice, http.MethodGet, "/api/v1/lists/not-a-uuid", nil); r.Status != 404 {
		t.Fatalf("bad id: %d", r.Status)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Auth Shop")
	forged := m.APIKey[:len(m.APIKey)-4] + "0000"
	for name, key := range map[string]string{
		"missing": "", "garbage": "hello", "storefront key": m.StorefrontKey, "forged secret": forged,
		"unknown merchant": "cg_admin_00000000000000000000000000000000_" + m.APIKey[len(m.APIKey)-64:],
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: key})
			if r.Status != http.StatusUnauthorized || r.ErrorCode() != "unauthorized" {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
		})
	}
	// Keys are kept only as hashes.
	var stored int
	err := h.App.DB.Pool().QueryRow(context.Background(),
		"SELECT count(*) FROM merchants WHERE position($1::bytea IN api_key_hash) > 0 OR position($2::bytea IN storefront_key_hash) > 0",
		[]byte(m.APIKey[len(m.APIKey)-64:]), []byte(m.StorefrontKey[len(m.StorefrontKey)-64:])).Scan(&stored)
	if err != nil || stored != 0 {
		t.Fatalf("key stored in clear? %d %v", stored, err)
	}
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Paging Shop")
	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		want[h.CreateList(t, m, map[string]any{"name": fmt.Sprintf("list %d", i)})] = true
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		r := h.Admin(t, m, http.MethodGet, "/api/v1/lists?limit=3&cursor="+cursor, nil)
		r.JSON(t, &page)
		if len(page.Items) > 3 {
			t.Fatalf("page of %d", len(page.Items))
		}
		for _, it := range page.Items {
			if seen[it["id"].(string)] {
				t.Fatalf("list %s twice", it["id"])
			}
			seen[it["id"].(string)] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != len(want) {
		t.Fatalf("saw %d lists, want %d", len(seen), len(want))
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "cursor=bm90LWEtY3Vyc29y"} {
		if r := h.Admin(t, m, http.MethodGet, "/api/v1/lists?"+q, nil); r.Status != 422 && r.Status != 400 {
			t.Fatalf("%s: %d", q, r.Status)
		}
	}
}

func TestListDelete(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Delete Shop")
	ctx := context.Background()
	pool := h.App.DB.Pool()

	plain := h.CreateList(t, m, map[string]any{"name": "plain"})
	if r := h.Admin(t, m, http.MethodDelete, "/api/v1/lists/"+plain, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+plain, nil); r.Status != 404 {
		t.Fatalf("deleted list still there: %d", r.Status)
	}

	// Connected to a shop and holding a code: 409. Connected but empty: deletable.
	connected := h.CreateList(t, m, map[string]any{"name": "connected", "kind": "fixed", "fixed_code": "SHOP10"})
	if _, err := pool.Exec(ctx, `INSERT INTO list_connections (merchant_id, list_id, connection_id) VALUES ($1, $2, gen_random_uuid())`, m.ID, connected); err != nil {
		t.Fatal(err)
	}
	if r := h.Admin(t, m, http.MethodDelete, "/api/v1/lists/"+connected, nil); r.Status != http.StatusConflict || r.ErrorCode() != "list_connected" {
		t.Fatalf("connected list: %d %s", r.Status, r.Body)
	}
	empty := h.CreateList(t, m, map[string]any{"name": "connected but empty"})
	if _, err := pool.Exec(ctx, `INSERT INTO templates (merchant_id, id, list_id, channel) VALUES ($1, gen_random_uuid(), $2, 'email')`, m.ID, empty); err != nil {
		t.Fatal(err)
	}
	if r := h.Admin(t, m, http.MethodDelete, "/api/v1/lists/"+empty, nil); r.Status != http.StatusNoContent {
		t.Fatalf("empty connected list: %d %s", r.Status, r.Body)
	}

	// A used list leaves nothing behind: no code, hold, order record, redemption or template.
	used := h.CreateList(t, m, map[string]any{"name": "used"})
	seedCodes(t, h, m, used, "GONE", 2)
	allocate(t, h, m, used, "a@x.io", "")
	validate(t, h, m, map[string]any{"code": "GONE-2", "reserve": true, "customer": map[string]any{"email": "b@x.io"}})
	order(t, h, m, "gone-1", "pending", "GONE-1")
	order(t, h, m, "gone-1", "paid", "GONE-1")
	if r := h.Admin(t, m, http.MethodDelete, "/api/v1/lists/"+used, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete used list: %d %s", r.Status, r.Body)
	}
	for _, table := range []string{"codes", "allocations", "code_events", "reservations", "order_codes", "redemptions", "templates", "list_counters"} {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE merchant_id = $1 AND list_id = $2`, m.ID, used).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d rows of the deleted list left in %s", n, table)
		}
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/healthz"})
	if got := r.Map(t); r.Status != 200 || got["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Fatal("no request id on the response")
	}
}

func TestHealthzNamesTheDependencyThatIsDown(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *configT) { c.RedisURL = "redis://127.0.0.1:1/0" }})
	r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/healthz"})
	got := r.Map(t)
	if r.Status != http.StatusServiceUnavailable || got["checks"].(map[string]any)["redis"] != "down" || got["checks"].(map[string]any)["postgres"] != "ok" {
		t.Fatalf("healthz with redis down: %d %s", r.Status, r.Body)
	}
}

type configT = config.Config

// TestEmptyListIsActiveUntilItRunsOut: a new unique list reads active with 0 available, in the
// list and in the listing; it reads exhausted once it had codes and handed out the last one, and
// active again when codes are added.
func TestEmptyListIsActiveUntilItRunsOut(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Empty Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Empty"})
	status := func(t *testing.T, want string, available float64) {
		t.Helper()
		one := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID, nil).Map(t)
		if one["status"] != want || one["counts"].(map[string]any)["available"] != available {
			t.Fatalf("GET list: status %v, counts %v; want %s with %v available", one["status"], one["counts"], want, available)
		}
		var page struct {
			Items []map[string]any `json:"items"`
		}
		h.Admin(t, m, http.MethodGet, "/api/v1/lists", nil).JSON(t, &page)
		if len(page.Items) != 1 || page.Items[0]["status"] != want {
			t.Fatalf("GET lists: %v; want the one list %s", page.Items, want)
		}
	}
	status(t, "active", 0)
	importByHand(t, h, m, listID, "test", "LAST-ONE")
	status(t, "active", 1)
	if r := allocate(t, h, m, listID, "ann@example.com", ""); r.Status != http.StatusCreated {
		t.Fatalf("allocate: %d %s", r.Status, r.Body)
	}
	status(t, "exhausted", 0)
	importByHand(t, h, m, listID, "test", "NEXT-ONE")
	status(t, "active", 1)
}
