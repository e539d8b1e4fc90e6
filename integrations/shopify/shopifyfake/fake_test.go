package shopifyfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const testShop = "blue-bottle.myshopify.com"

func postForm(t *testing.T, f *Fake, shopDomain string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := f.Client().PostForm(f.ShopURL(shopDomain)+"/admin/oauth/access_token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// authorize follows the authorize redirect and returns the callback query.
func authorize(t *testing.T, f *Fake, scope string) url.Values {
	t.Helper()
	client := f.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	q := url.Values{"client_id": {f.Config().ClientID}, "redirect_uri": {"https://gate.example.com/shopify/callback"},
		"state": {"nonce-1"}}
	if scope != "" {
		q.Set("scope", scope)
	}
	resp, err := client.Get(f.ShopURL(testShop) + "/admin/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != "gate.example.com" || loc.Path != "/shopify/callback" {
		t.Fatalf("authorize redirected to %q", resp.Header.Get("Location"))
	}
	return loc.Query()
}

func graphqlStatus(t *testing.T, f *Fake, token, query string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, f.ShopURL(testShop)+"/admin/api/2025-01/graphql.json", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Shopify-Access-Token", token)
	}
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func TestOAuthCodeExchange(t *testing.T) {
	t.Parallel()
	f := New(t, Config{})
	cb := authorize(t, f, "write_discounts,read_orders,read_customers")
	if got := SignQuery(f.Config().ClientSecret, cb); got != cb.Get("hmac") {
		t.Fatalf("callback hmac %q, want %q", cb.Get("hmac"), got)
	}
	if cb.Get("state") != "nonce-1" || cb.Get("shop") != testShop || cb.Get("code") == "" || cb.Get("timestamp") == "" {
		t.Fatalf("callback query %v", cb)
	}
	reqs := f.AuthorizeRequests()
	if len(reqs) != 1 || reqs[0].Shop != testShop || reqs[0].Query.Get("state") != "nonce-1" {
		t.Fatalf("recorded authorize requests %+v", reqs)
	}

	base := url.Values{"client_id": {f.Config().ClientID}, "client_secret": {f.Config().ClientSecret}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		check      func(t *testing.T, body map[string]any)
	}{
		{"wrong secret", with("code", cb.Get("code"), "client_secret", "nope", "expiring", "1"), 400, nil},
		{"unknown code", with("code", "nope", "expiring", "1"), 400, nil},
		{"expiring offline token", with("code", cb.Get("code"), "expiring", "1"), 200, func(t *testing.T, b map[string]any) {
			if !strings.HasPrefix(str(b["access_token"]), "shpat_") || !strings.HasPrefix(str(b["refresh_token"]), "shprt_") ||
				b["expires_in"] != 3600.0 || b["refresh_token_expires_in"] != 7776000.0 || b["scope"] != "write_discounts,read_orders,read_customers" {
				t.Fatalf("token body %v", b)
			}
		}},
		{"code used twice", with("code", cb.Get("code"), "expiring", "1"), 400, nil},
	}
	// Not parallel: the cases use one fake in order ("code used twice" follows the exchange of that code).
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postForm(t, f, testShop, tc.form)
			if status != tc.wantStatus {
				t.Fatalf("status %d (%v), want %d", status, body, tc.wantStatus)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}

	t.Run("non-expiring without expiring=1", func(t *testing.T) {
		cb := authorize(t, f, "")
		status, body := postForm(t, f, testShop, with("code", cb.Get("code")))
		if status != 200 || body["refresh_token"] != nil || body["expires_in"] != nil || body["scope"] != f.Config().Scopes {
			t.Fatalf("status %d body %v", status, body)
		}
	})
	t.Run("code of another shop", func(t *testing.T) {
		cb := authorize(t, f, "")
		if status, _ := postForm(t, f, "other.myshopify.com", with("code", cb.Get("code"))); status != 400 {
			t.Fatalf("status %d, want 400", status)
		}
	})
}

func TestOAuthRefreshAndExchange(t *testing.T) {
	t.Parallel()
	f := New(t, Config{})
	creds := url.Values{"client_id": {f.Config().ClientID}, "client_secret": {f.Config().ClientSecret}}
	form := func(kv ...string) url.Values {
		v := url.Values{"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	cb := authorize(t, f, "")
	_, first := postForm(t, f, testShop, form("code", cb.Get("code"), "expiring", "1"))
	oldAccess, oldRefresh := str(first["access_token"]), str(first["refresh_token"])

	status, second := postForm(t, f, testShop, form("grant_type", "refresh_token", "refresh_token", oldRefresh))
	if status != 200 || second["access_token"] == oldAccess || second["refresh_token"] == oldRefresh || second["expires_in"] != 3600.0 {
		t.Fatalf("refresh: status %d body %v", status, second)
	}
	newAccess := str(second["access_token"])

	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
	}{
		{"old refresh token is rotated out", form("grant_type", "refresh_token", "refresh_token", oldRefresh), 400},
		{"unknown refresh token", form("grant_type", "refresh_token", "refresh_token", "shprt_nope"), 400},
		{"session token exchange", form("grant_type", GrantTokenExchange, "subject_token", f.SessionToken(testShop, time.Minute),
			"subject_token_type", TokenTypeIDToken, "requested_token_type", TokenTypeOfflineAccess, "expiring", "1"), 200},
		{"expired session token", form("grant_type", GrantTokenExchange, "subject_token", f.SessionToken(testShop, -time.Minute),
			"subject_token_type", TokenTypeIDToken, "requested_token_type", TokenTypeOfflineAccess), 400},
		{"session token of another shop", form("grant_type", GrantTokenExchange, "subject_token", f.SessionToken("other.myshopify.com", time.Minute),
			"subject_token_type", TokenTypeIDToken, "requested_token_type", TokenTypeOfflineAccess), 400},
		{"unknown grant", form("grant_type", "password"), 400},
	}
	// Not parallel: the cases share one fake, whose tokens are checked and expired after them.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postForm(t, f, testShop, tc.form)
			if status != tc.wantStatus {
				t.Fatalf("status %d (%v), want %d", status, body, tc.wantStatus)
			}
		})
	}

	// Both access tokens work until the old one expires; then only the new.
	for _, tok := range []string{oldAccess, newAccess} {
		if status, _ := graphqlStatus(t, f, tok, `{ job(id: "gid://shopify/Job/1") { done } }`); status != 200 {
			t.Fatalf("token before expiry: status %d", status)
		}
	}
	f.ExpireToken(oldAccess)
	if status, _ := graphqlStatus(t, f, oldAccess, `{ job(id: "gid://shopify/Job/1") { done } }`); status != 401 {
		t.Fatalf("expired token: status %d, want 401", status)
	}

	t.Run("migrating a non-expiring token", func(t *testing.T) {
		legacy := f.IssueToken(testShop)
		status, body := postForm(t, f, testShop, form("grant_type", GrantTokenExchange, "subject_token", legacy,
			"subject_token_type", TokenTypeOfflineAccess, "requested_token_type", TokenTypeOfflineAccess, "expiring", "1"))
		if status != 200 || body["refresh_token"] == nil {
			t.Fatalf("status %d body %v", status, body)
		}
		if status, _ := graphqlStatus(t, f, legacy, `{ job(id: "x") { done } }`); status != 401 {
			t.Fatalf("migrated token still works: %d", status)
		}
	})
}

func TestGraphQLEndpoint(t *testing.T) {
	t.Parallel()
	f := New(t, Config{BucketSize: 50, RestoreRate: 10})
	token := f.IssueToken(testShop)
	tests := []struct {
		name, token, query string
		wantStatus         int
		wantError          string // substring of errors[0].message, "" for none
		wantCost           float64
	}{
		{"no token", "", `{ job(id: "x") { done } }`, 401, "", 0},
		{"token of another shop", f.IssueToken("other.myshopify.com"), `{ job(id: "x") { done } }`, 401, "", 0},
		{"valid query", token, `{ job(id: "x") { id done } }`, 200, "", 1},
		{"connection sized by first", token, `{ orders(first: 10) { nodes { id } } }`, 200, "", 12},
		{"misspelled field", token, `{ job(id: "x") { dne } }`, 200, "dne", 0},
		{"unknown root field", token, `{ jobs(id: "x") { done } }`, 200, "jobs", 0},
		{"over the max single query cost", token, `{ orders(first: 250) { nodes { customer { email } lineItems(first: 5) { nodes { id } } } } }`, 200, "exceeds", 0},
	}
	// Not parallel: the cases draw on one fake's 50-point bucket; in parallel they could run it dry.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := graphqlStatus(t, f, tc.token, tc.query)
			if status != tc.wantStatus {
				t.Fatalf("status %d (%v), want %d", status, body, tc.wantStatus)
			}
			if status != 200 {
				return
			}
			errs, _ := body["errors"].([]any)
			if tc.wantError != "" {
				if len(errs) == 0 || !strings.Contains(str(errs[0].(map[string]any)["message"]), tc.wantError) {
					t.Fatalf("want error mentioning %q, got %v", tc.wantError, body)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("unexpected errors %v", errs)
			}
			cost, _ := body["extensions"].(map[string]any)["cost"].(map[string]any)
			if cost["requestedQueryCost"] != tc.wantCost || cost["actualQueryCost"] != tc.wantCost || cost["throttleStatus"] == nil {
				t.Fatalf("extensions.cost %v, want cost %v", cost, tc.wantCost)
			}
		})
	}
}

func TestFakeSettings(t *testing.T) {
	t.Parallel()
	f := New(t, Config{MaxCodesPerBulkAdd: 250, BulkDelay: -1})
	if f.Config().MaxCodesPerBulkAdd != 250 || f.Config().BulkDelay != 0 || f.Config().APIVersion != "2025-01" {
		t.Fatalf("config %+v", f.Config())
	}
	if !strings.HasPrefix(f.ShopURL(testShop), "http://127.0.0.1:") || !strings.HasSuffix(f.ShopURL(testShop), "/"+testShop) {
		t.Fatalf("shop URL %q", f.ShopURL(testShop))
	}
}

func TestWebhookSigning(t *testing.T) {
	t.Parallel()
	f := New(t, Config{ClientSecret: "hush"})
	var got *http.Request
	var gotBody []byte
	srv := newSink(t, func(r *http.Request, body []byte) { got, gotBody = r, body })
	body := []byte(`{"id":820982911946154508,"financial_status":"paid","discount_codes":[{"code":"SPRING-0001"}]}`)
	resp, wh, err := f.DeliverWebhook(context.Background(), nil, srv+"/webhooks/shopify", Webhook{Topic: "orders/paid", Shop: testShop, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := hmac.New(sha256.New, []byte("hush"))
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	tests := []struct{ header, want string }{
		{"X-Shopify-Hmac-Sha256", want},
		{"X-Shopify-Topic", "orders/paid"},
		{"X-Shopify-Shop-Domain", testShop},
		{"X-Shopify-Api-Version", "2025-01"},
		{"X-Shopify-Webhook-Id", wh.WebhookID},
		{"X-Shopify-Event-Id", wh.EventID},
		{"X-Shopify-Triggered-At", wh.TriggeredAt.UTC().Format(time.RFC3339Nano)},
	}
	for _, tc := range tests {
		if v := got.Header.Get(tc.header); v != tc.want || v == "" {
			t.Errorf("%s = %q, want %q", tc.header, v, tc.want)
		}
	}
	if !bytes.Equal(gotBody, body) {
		t.Fatalf("body changed in delivery")
	}
	if SignWebhook("other", body) == want {
		t.Fatal("signature does not depend on the secret")
	}
	// A replay keeps its IDs.
	_, again, err := f.DeliverWebhook(context.Background(), nil, srv+"/webhooks/shopify", wh)
	if err != nil || again.EventID != wh.EventID || got.Header.Get("X-Shopify-Event-Id") != wh.EventID {
		t.Fatalf("replay: %v, event id %q", err, got.Header.Get("X-Shopify-Event-Id"))
	}
}
