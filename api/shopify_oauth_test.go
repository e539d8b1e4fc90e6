package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// testShopifyKey is the app's API key (client id) in the install tests; the secret is
// testShopifySecret.
const testShopifyKey = "coupongate-test-key"

// shopifyInstallApp starts a fake Shopify and a gateway configured for it. fakeScopes are what the
// fake grants on token exchange ("" for its default).
func shopifyInstallApp(t *testing.T, fakeScopes string, configure func(*config.Config)) (*apptest.Harness, *shopifyfake.Fake) {
	t.Helper()
	fake := shopifyfake.New(t, shopifyfake.Config{ClientID: testShopifyKey, ClientSecret: testShopifySecret, Scopes: fakeScopes})
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		shopifyConfig(c, fake)
		if configure != nil {
			configure(c)
		}
	}})
	return h, fake
}

// shopifyConfig points the gateway's Shopify app at fake.
func shopifyConfig(c *config.Config, fake *shopifyfake.Fake) {
	c.ShopifyAPIKey = testShopifyKey
	c.ShopifyAPISecret = testShopifySecret
	c.ShopifyAdminURL = fake.URL() + "/{shop}"
	c.ShopifyScopes = "read_orders,write_discounts,read_discounts"
}

// testShop is a shop domain of its own for each call, so that tests sharing the database do not
// meet each other's shops.
func testShop(name string) string {
	return name + "-" + uuid.NewString()[:8] + ".myshopify.com"
}

// signedQuery is the query Shopify would send: params plus a current timestamp (unless given) and
// the hmac under secret.
func signedQuery(secret string, params map[string]string) string {
	v := url.Values{}
	for k, val := range params {
		v.Set(k, val)
	}
	if _, ok := params["timestamp"]; !ok {
		v.Set("timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	}
	v.Set("hmac", shopify.SignQuery(v, secret))
	return v.Encode()
}

// noRedirects is a client that reports redirects instead of following them.
var noRedirects = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// browserGet fetches rawURL as a browser would, without following redirects, sending cookies; an
// exchange with the gateway's /shopify/ pages is shown to apptest.Recorder (the OpenAPI conformance test).
func browserGet(t testing.TB, rawURL string, cookies ...*http.Cookie) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if apptest.Recorder != nil && strings.HasPrefix(req.URL.Path, "/shopify/") {
		apptest.Recorder(req, resp, body)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// stateCookie returns the OAuth state cookie an install answer set.
func stateCookie(t testing.TB, r apptest.Response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "coupongate_shopify_state" {
			return c
		}
	}
	t.Fatalf("no state cookie in %v", r.Header.Values("Set-Cookie"))
	return nil
}

// oauthStart is the first half of an install: GET /shopify/install, then the merchant approving
// on the fake's authorize page. It returns the state cookie and the callback query the fake sent
// back. editScope, when not empty, replaces the scope of the authorize URL (a merchant editing it).
func oauthStart(t testing.TB, h *apptest.Harness, shop, editScope string) (*http.Cookie, url.Values) {
	t.Helper()
	r := browserGet(t, h.URL+"/shopify/install?"+signedQuery(testShopifySecret, map[string]string{"shop": shop}))
	if r.Status != http.StatusFound {
		t.Fatalf("install: %d, want 302: %s", r.Status, r.Body)
	}
	cookie := stateCookie(t, r)
	authorize, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if editScope != "" {
		q := authorize.Query()
		q.Set("scope", editScope)
		authorize.RawQuery = q.Encode()
	}
	back := browserGet(t, authorize.String())
	if back.Status != http.StatusFound {
		t.Fatalf("authorize on the fake: %d: %s", back.Status, back.Body)
	}
	cb, err := url.Parse(back.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if cb.Path != "/shopify/callback" {
		t.Fatalf("the fake sent the merchant to %s", cb)
	}
	return cookie, cb.Query()
}

// callback sends the callback query to the gateway.
func callback(t testing.TB, h *apptest.Harness, q url.Values, cookies ...*http.Cookie) apptest.Response {
	t.Helper()
	return browserGet(t, h.URL+"/shopify/callback?"+q.Encode(), cookies...)
}

// resign replaces params of a signed query and signs it again, as Shopify would have.
func resign(q url.Values, params map[string]string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	for k, v := range params {
		out.Set(k, v)
	}
	out.Del("hmac")
	out.Set("hmac", shopify.SignQuery(out, testShopifySecret))
	return out
}

// withParam returns q with one parameter replaced and the hmac left as it was.
func withParam(q url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	out.Set(key, value)
	return out
}

// installedShop is what the database says about an installed shop.
type installedShop struct {
	route    shopify.ShopRoute
	merchant string // the merchant's name
	state    string
	scopes   string
}

func lookupShop(t testing.TB, h *apptest.Harness, shop string) (installedShop, bool) {
	t.Helper()
	ctx := context.Background()
	route, found, err := h.App.DB.ShopRoute(ctx, shopify.Platform, shop)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return installedShop{}, false
	}
	s := installedShop{route: route}
	if err := h.App.DB.Pool().QueryRow(ctx, `SELECT m.name, c.state, c.scopes FROM merchants m
		JOIN connections c ON c.merchant_id = m.id WHERE m.id = $1 AND c.id = $2`, route.MerchantID, route.ConnectionID).
		Scan(&s.merchant, &s.state, &s.scopes); err != nil {
		t.Fatal(err)
	}
	return s, true
}

// merchantsNamed counts the merchants with this name (install names a shop's merchant after it).
func merchantsNamed(t testing.TB, h *apptest.Harness, name string) int {
	t.Helper()
	var n int
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM merchants WHERE name = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShopifyOAuthInstall runs the whole install: install entry, authorize on the fake, callback
// with the state cookie; then checks what was stored and subscribed, and that a second install of
// the shop keeps its merchant.
func TestShopifyOAuthInstall(t *testing.T) {
	t.Parallel()
	h, fake := shopifyInstallApp(t, "", nil)
	ctx := context.Background()
	shop := testShop("oauth")

	// The install answer: a redirect to the shop's authorize page and a state cookie.
	install := browserGet(t, h.URL+"/shopify/install?"+signedQuery(testShopifySecret, map[string]string{"shop": shop}))
	if install.Status != http.StatusFound {
		t.Fatalf("install: %d: %s", install.Status, install.Body)
	}
	loc, err := url.Parse(install.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fake.ShopURL(shop) + "/admin/oauth/authorize"; loc.Scheme+"://"+loc.Host+loc.Path != want {
		t.Fatalf("install redirects to %s, want %s", loc, want)
	}
	aq := loc.Query()
	cookie := stateCookie(t, install)
	if aq.Get("client_id") != testShopifyKey || aq.Get("scope") != "read_orders,write_discounts,read_discounts" ||
		aq.Get("redirect_uri") != h.App.Config.AppURL+"/shopify/callback" || len(aq.Get("state")) != 32 || aq.Has("grant_options[]") {
		t.Fatalf("authorize query: %v", aq)
	}
	if !cookie.HttpOnly || cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/shopify" ||
		cookie.MaxAge <= 0 || cookie.MaxAge > 600 || strings.Contains(cookie.Value, aq.Get("state")) {
		t.Fatalf("state cookie: %+v", cookie)
	}
	if install.Header.Get("Cache-Control") != "no-store" || len(install.Body) != 0 {
		t.Fatalf("install answer headers %v, body %q", install.Header, install.Body)
	}

	// Approve on the fake, come back with the cookie.
	back := browserGet(t, loc.String())
	cb, err := url.Parse(back.Header.Get("Location"))
	if err != nil || back.Status != http.StatusFound {
		t.Fatalf("authorize: %d %v", back.Status, err)
	}
	done := callback(t, h, cb.Query(), cookie)
	if done.Status != http.StatusFound {
		t.Fatalf("callback: %d: %s", done.Status, done.Body)
	}
	if want := "https://" + shop + "/admin/apps/" + testShopifyKey; done.Header.Get("Location") != want {
		t.Fatalf("callback redirects to %q, want %q", done.Header.Get("Location"), want)
	}
	if cleared := stateCookie(t, done); cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Fatalf("the callback did not clear the state cookie: %+v", cleared)
	}

	// The merchant, connection and route exist; the token is sealed; the webhooks are subscribed.
	got, ok := lookupShop(t, h, shop)
	if !ok {
		t.Fatal("no shop route after install")
	}
	if got.merchant != shop || got.state != "active" || got.scopes != "read_orders,write_discounts,read_discounts" {
		t.Fatalf("installed shop: %+v", got)
	}
	creds, _, err := h.App.DB.Credentials(ctx, got.route.MerchantID, got.route.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessToken, "shpat_") || !strings.HasPrefix(creds.RefreshToken, "shprt_") || creds.ExpiresAt == nil {
		t.Fatalf("stored credentials: access %q…, refresh set %v, expires %v", creds.AccessToken[:min(6, len(creds.AccessToken))], creds.RefreshToken != "", creds.ExpiresAt)
	}
	var sealed []byte
	if err := h.App.DB.Pool().QueryRow(ctx, `SELECT credentials FROM connections WHERE merchant_id = $1 AND id = $2`,
		got.route.MerchantID, got.route.ConnectionID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(creds.AccessToken)) || bytes.Contains(sealed, []byte(creds.RefreshToken)) ||
		bytes.Contains(sealed, []byte("shpat_")) {
		t.Fatal("connections.credentials holds the token in clear")
	}
	subs := fake.WebhookSubscriptions(shop)
	topics := map[string]bool{}
	for _, s := range subs {
		topics[s.Topic] = true
		if s.CallbackURL != h.App.Config.AppURL+"/webhooks/shopify" {
			t.Fatalf("webhook subscribed to %s", s.CallbackURL)
		}
	}
	if len(subs) != len(shopify.WebhookTopics) || len(topics) != len(shopify.WebhookTopics) {
		t.Fatalf("webhook subscriptions: %+v", subs)
	}

	// The same callback again (same code, old cookie): Shopify refuses the used code.
	if r := callback(t, h, cb.Query(), cookie); r.Status != http.StatusBadRequest || r.ErrorCode() != "grant_refused" {
		t.Fatalf("replayed callback: %d %s", r.Status, r.Body)
	}

	// A second install keeps the merchant and connection and adds no webhook twice.
	cookie2, q2 := oauthStart(t, h, shop, "")
	if r := callback(t, h, q2, cookie2); r.Status != http.StatusFound {
		t.Fatalf("second install: %d %s", r.Status, r.Body)
	}
	again, _ := lookupShop(t, h, shop)
	if again.route != got.route || merchantsNamed(t, h, shop) != 1 {
		t.Fatalf("second install moved the shop: %+v then %+v (%d merchants)", got, again, merchantsNamed(t, h, shop))
	}
	if n := len(fake.WebhookSubscriptions(shop)); n != len(shopify.WebhookTopics) {
		t.Fatalf("%d webhook subscriptions after the second install", n)
	}
	creds2, _, err := h.App.DB.Credentials(ctx, got.route.MerchantID, got.route.ConnectionID)
	if err != nil || creds2.AccessToken == creds.AccessToken {
		t.Fatalf("the second install did not store the new token (err %v)", err)
	}
}

// TestShopifyInstallRefusals: the install entry refuses a query Shopify did not sign, an old one,
// and a shop that is not a myshopify.com domain, and answers 503 while Shopify is not configured.
func TestShopifyInstallRefusals(t *testing.T) {
	t.Parallel()
	h, fake := shopifyInstallApp(t, "", nil)
	shop := testShop("refused")
	now := time.Now()
	signed := func(params map[string]string) string { return signedQuery(testShopifySecret, params) }
	tests := []struct {
		name   string
		query  string
		status int
		code   string
	}{
		{"no hmac", url.Values{"shop": {shop}, "timestamp": {strconv.FormatInt(now.Unix(), 10)}}.Encode(), http.StatusUnauthorized, "invalid_signature"},
		{"wrong secret", signedQuery("not-the-secret", map[string]string{"shop": shop}), http.StatusUnauthorized, "invalid_signature"},
		{"altered after signing", signed(map[string]string{"shop": shop}) + "&extra=1", http.StatusUnauthorized, "invalid_signature"},
		{"hmac not hex", url.Values{"shop": {shop}, "timestamp": {strconv.FormatInt(now.Unix(), 10)}, "hmac": {"zz"}}.Encode(), http.StatusUnauthorized, "invalid_signature"},
		{"stale timestamp", signed(map[string]string{"shop": shop, "timestamp": strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)}), http.StatusUnauthorized, "request_expired"},
		{"future timestamp", signed(map[string]string{"shop": shop, "timestamp": strconv.FormatInt(now.Add(5*time.Minute).Unix(), 10)}), http.StatusUnauthorized, "request_expired"},
		{"no timestamp", signed(map[string]string{"shop": shop, "timestamp": ""}), http.StatusUnauthorized, "request_expired"},
		{"not myshopify", signed(map[string]string{"shop": "evil.example.com"}), http.StatusBadRequest, "invalid_shop"},
		{"admin URL as shop", signed(map[string]string{"shop": "admin.shopify.com/store/x"}), http.StatusBadRequest, "invalid_shop"},
		{"shop with path", signed(map[string]string{"shop": shop + "/admin"}), http.StatusBadRequest, "invalid_shop"},
		{"no shop", signed(map[string]string{}), http.StatusBadRequest, "invalid_shop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := browserGet(t, h.URL+"/shopify/install?"+tt.query)
			if r.Status != tt.status || r.ErrorCode() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
			if r.Header.Get("Location") != "" || len(r.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("a refused install redirected or set a cookie: %v", r.Header)
			}
		})
	}
	if n := len(fake.AuthorizeRequests()); n != 0 {
		t.Fatalf("%d authorize requests", n)
	}

	t.Run("not configured", func(t *testing.T) {
		bare := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
			c.ShopifyAPIKey, c.ShopifyAPISecret = "", ""
		}})
		for _, path := range []string{"/shopify/install", "/shopify/callback", "/shopify/app"} {
			r := browserGet(t, bare.URL+path+"?"+signed(map[string]string{"shop": shop}))
			if r.Status != http.StatusServiceUnavailable || r.ErrorCode() != "shopify_not_configured" {
				t.Fatalf("%s without Shopify settings: %d %s", path, r.Status, r.Body)
			}
		}
	})

	t.Run("secure cookie over https", func(t *testing.T) {
		tls := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
			shopifyConfig(c, fake)
			c.AppURL = "https://coupons.example.com"
		}})
		r := browserGet(t, tls.URL+"/shopify/install?"+signed(map[string]string{"shop": shop}))
		if r.Status != http.StatusFound || !stateCookie(t, r).Secure {
			t.Fatalf("install behind https: %d, cookie %v", r.Status, r.Header.Values("Set-Cookie"))
		}
		if u, _ := url.Parse(r.Header.Get("Location")); u.Query().Get("redirect_uri") != "https://coupons.example.com/shopify/callback" {
			t.Fatalf("redirect_uri of %s", u)
		}
	})
}

// TestShopifyCallbackState: a callback is only honoured for the browser that started the install,
// with the state it was given, for the same shop; no refused callback spends the code.
func TestShopifyCallbackState(t *testing.T) {
	t.Parallel()
	h, fake := shopifyInstallApp(t, "", nil)
	shop := testShop("state")
	other := testShop("other")
	cookie, q := oauthStart(t, h, shop, "")
	otherCookie, _ := oauthStart(t, h, other, "")
	tampered := *cookie
	tampered.Value = strings.ToUpper(cookie.Value[:1]) + cookie.Value[1:]
	if tampered.Value == cookie.Value {
		tampered.Value = "x" + cookie.Value[1:]
	}
	forged := *cookie
	forged.Value = base64.RawURLEncoding.EncodeToString([]byte(q.Get("state")+"|"+shop+"|9999999999")) + ".AAAA"

	tests := []struct {
		name    string
		query   url.Values
		cookies []*http.Cookie
		status  int
		code    string
	}{
		{"no cookie", q, nil, http.StatusUnauthorized, "invalid_state"},
		{"state mismatch", resign(q, map[string]string{"state": strings.Repeat("0", 32)}), []*http.Cookie{cookie}, http.StatusUnauthorized, "invalid_state"},
		{"no state", resign(q, map[string]string{"state": ""}), []*http.Cookie{cookie}, http.StatusUnauthorized, "invalid_state"},
		{"cookie of another shop", q, []*http.Cookie{{Name: otherCookie.Name, Value: otherCookie.Value}}, http.StatusUnauthorized, "invalid_state"},
		{"tampered cookie", q, []*http.Cookie{&tampered}, http.StatusUnauthorized, "invalid_state"},
		{"forged cookie", q, []*http.Cookie{&forged}, http.StatusUnauthorized, "invalid_state"},
		{"bad hmac", withParam(q, "hmac", strings.Repeat("0", 64)), []*http.Cookie{cookie}, http.StatusUnauthorized, "invalid_signature"},
		{"stale callback", resign(q, map[string]string{"timestamp": strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)}), []*http.Cookie{cookie}, http.StatusUnauthorized, "request_expired"},
		{"bad shop", resign(q, map[string]string{"shop": "nope.example.com"}), []*http.Cookie{cookie}, http.StatusBadRequest, "invalid_shop"},
		{"other shop in query", resign(q, map[string]string{"shop": other}), []*http.Cookie{cookie}, http.StatusUnauthorized, "invalid_state"},
		{"no code", resign(q, map[string]string{"code": ""}), []*http.Cookie{cookie}, http.StatusBadRequest, "missing_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := callback(t, h, tt.query, tt.cookies...)
			if r.Status != tt.status || r.ErrorCode() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
		})
	}
	if _, ok := lookupShop(t, h, shop); ok {
		t.Fatal("a refused callback installed the shop")
	}
	// The code was never exchanged: the genuine callback still works.
	if r := callback(t, h, q, cookie); r.Status != http.StatusFound {
		t.Fatalf("genuine callback after the refusals: %d %s", r.Status, r.Body)
	}
	if _, ok := lookupShop(t, h, shop); !ok || len(fake.WebhookSubscriptions(shop)) == 0 {
		t.Fatal("the genuine callback did not install the shop")
	}
}

// TestShopifyCallbackHost: the callback lands on the app's page in the admin the host parameter
// names, and never anywhere else.
func TestShopifyCallbackHost(t *testing.T) {
	t.Parallel()
	h, _ := shopifyInstallApp(t, "", nil)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name string
		host func(shop string) string
		want func(shop string) string
	}{
		{"shop admin", func(s string) string { return b64(s + "/admin") }, func(s string) string { return "https://" + s + "/admin/apps/" + testShopifyKey }},
		{"unified admin", func(string) string { return b64("admin.shopify.com/store/my-store") }, func(string) string {
			return "https://admin.shopify.com/store/my-store/apps/" + testShopifyKey
		}},
		{"standard base64 with padding", func(string) string {
			return base64.StdEncoding.EncodeToString([]byte("admin.shopify.com/store/ab"))
		}, func(string) string { return "https://admin.shopify.com/store/ab/apps/" + testShopifyKey }},
		{"another host", func(string) string { return b64("evil.example.com/admin") }, func(s string) string { return "https://" + s + "/admin/apps/" + testShopifyKey }},
		{"another shop", func(string) string { return b64("someone-else.myshopify.com/admin") }, func(s string) string { return "https://" + s + "/admin/apps/" + testShopifyKey }},
		{"bad store handle", func(string) string { return b64("admin.shopify.com/store/x/../../evil") }, func(s string) string { return "https://" + s + "/admin/apps/" + testShopifyKey }},
		{"not base64", func(string) string { return "%%%" }, func(s string) string { return "https://" + s + "/admin/apps/" + testShopifyKey }},
		{"no host", func(string) string { return "" }, func(s string) string { return "https://" + s + "/admin/apps/" + testShopifyKey }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shop := testShop("host")
			cookie, q := oauthStart(t, h, shop, "")
			r := callback(t, h, resign(q, map[string]string{"host": tt.host(shop)}), cookie)
			if r.Status != http.StatusFound || r.Header.Get("Location") != tt.want(shop) {
				t.Fatalf("%d to %q, want %q: %s", r.Status, r.Header.Get("Location"), tt.want(shop), r.Body)
			}
		})
	}
}

// TestShopifyInstallMissingScopes: a grant that does not cover the app's scopes is refused with
// 409 and connects nothing, by OAuth (the merchant edited the authorize URL) and by token exchange.
func TestShopifyInstallMissingScopes(t *testing.T) {
	t.Parallel()
	h, fake := shopifyInstallApp(t, "read_orders", nil)

	shop := testShop("scopes")
	cookie, q := oauthStart(t, h, shop, "read_orders,read_discounts")
	r := callback(t, h, q, cookie)
	if r.Status != http.StatusConflict || r.ErrorCode() != "scopes_missing" || !strings.Contains(string(r.Body), "write_discounts") {
		t.Fatalf("callback with fewer scopes: %d %s", r.Status, r.Body)
	}

	embedded := testShop("scopes-embedded")
	r = browserGet(t, h.URL+"/shopify/install?"+signedQuery(testShopifySecret, map[string]string{
		"shop": embedded, "embedded": "1", "id_token": fake.SessionToken(embedded, time.Minute)}))
	if r.Status != http.StatusConflict || r.ErrorCode() != "scopes_missing" {
		t.Fatalf("token exchange with fewer scopes: %d %s", r.Status, r.Body)
	}
	for _, s := range []string{shop, embedded} {
		if _, ok := lookupShop(t, h, s); ok || merchantsNamed(t, h, s) != 0 || len(fake.WebhookSubscriptions(s)) != 0 {
			t.Fatalf("%s was connected with missing scopes", s)
		}
	}
}

// TestShopifyEmbeddedInstall: an embedded load with a session token (Shopify-managed install)
// connects the shop by token exchange and shows the app page; later loads only show the page.
func TestShopifyEmbeddedInstall(t *testing.T) {
	t.Parallel()
	h, fake := shopifyInstallApp(t, "", nil)
	shop := testShop("embedded")
	load := func(path, idToken string, extra map[string]string) apptest.Response {
		t.Helper()
		p := map[string]string{"shop": shop, "embedded": "1", "host": base64.RawURLEncoding.EncodeToString([]byte(shop + "/admin")),
			"id_token": idToken, "locale": "en", "session": "abc"}
		for k, v := range extra {
			p[k] = v
		}
		return browserGet(t, h.URL+path+"?"+signedQuery(testShopifySecret, p))
	}

	// Refused tokens connect nothing.
	otherShop := testShop("elsewhere")
	for name, tok := range map[string]string{
		"token of another shop": fake.SessionToken(otherShop, time.Minute),
		"expired token":         fake.SessionToken(shop, -time.Minute),
		"wrong audience": shopify.SignSessionToken(shopify.SessionClaims{Shop: shop, Audience: "another-app",
			Exp: time.Now().Add(time.Minute)}, testShopifySecret),
		"wrong secret": shopify.SignSessionToken(shopify.SessionClaims{Shop: shop, Audience: testShopifyKey,
			Exp: time.Now().Add(time.Minute)}, "not-the-secret"),
		"garbage": "a.b.c",
	} {
		if r := load("/shopify/install", tok, nil); r.Status != http.StatusUnauthorized || r.ErrorCode() != "invalid_session_token" {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	if _, ok := lookupShop(t, h, shop); ok {
		t.Fatal("a refused token connected the shop")
	}

	r := load("/shopify/install", fake.SessionToken(shop, time.Minute), nil)
	if r.Status != http.StatusFound {
		t.Fatalf("embedded install: %d %s", r.Status, r.Body)
	}
	got, ok := lookupShop(t, h, shop)
	if !ok || got.state != "active" || got.merchant != shop {
		t.Fatalf("after the embedded install: %+v %v", got, ok)
	}
	if n := len(fake.WebhookSubscriptions(shop)); n != len(shopify.WebhookTopics) {
		t.Fatalf("%d webhook subscriptions", n)
	}
	checkSentToDashboard(t, h, r, shop)
	creds, _, err := h.App.DB.Credentials(context.Background(), got.route.MerchantID, got.route.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}

	// A later load goes to the dashboard without a new token exchange.
	if r := load("/shopify/install", fake.SessionToken(shop, time.Minute), nil); r.Status != http.StatusFound {
		t.Fatalf("second load: %d %s", r.Status, r.Body)
	}
	creds2, _, _ := h.App.DB.Credentials(context.Background(), got.route.MerchantID, got.route.ConnectionID)
	if creds2.AccessToken != creds.AccessToken || merchantsNamed(t, h, shop) != 1 {
		t.Fatal("a load of a connected shop exchanged its token again")
	}

	// GET /shopify/app sends a connected shop to the dashboard and never installs.
	if r := load("/shopify/app", fake.SessionToken(shop, time.Minute), nil); r.Status != http.StatusFound {
		t.Fatalf("app page: %d %s", r.Status, r.Body)
	} else {
		checkSentToDashboard(t, h, r, shop)
	}
	// Loaded outside the admin, it goes into the shop's admin.
	if r := browserGet(t, h.URL+"/shopify/app?"+signedQuery(testShopifySecret, map[string]string{"shop": shop})); r.Status != http.StatusFound ||
		r.Header.Get("Location") != "https://"+shop+"/admin/apps/"+testShopifyKey {
		t.Fatalf("app page outside the admin: %d %s", r.Status, r.Header.Get("Location"))
	}
	stranger := testShop("stranger")
	if r := browserGet(t, h.URL+"/shopify/app?"+signedQuery(testShopifySecret, map[string]string{"shop": stranger})); r.Status != http.StatusNotFound || r.ErrorCode() != "shop_not_connected" {
		t.Fatalf("app page of an unknown shop: %d %s", r.Status, r.Body)
	}
	if r := browserGet(t, h.URL+"/shopify/app?"+signedQuery(testShopifySecret, map[string]string{"shop": stranger,
		"id_token": fake.SessionToken(stranger, time.Minute)})); r.Status != http.StatusNotFound {
		t.Fatalf("app page of an unknown shop with a token: %d %s", r.Status, r.Body)
	}
	if r := load("/shopify/app", fake.SessionToken(otherShop, time.Minute), nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("app page with another shop's token: %d %s", r.Status, r.Body)
	}
	if r := browserGet(t, h.URL+"/shopify/app?shop="+shop); r.Status != http.StatusUnauthorized {
		t.Fatalf("unsigned app page: %d %s", r.Status, r.Body)
	}
}

// checkSentToDashboard checks that an embedded load was sent to the dashboard with its query, and
// that the dashboard shows the shop's merchant its lists inside the admin: App Bridge with the API
// key, and a CSP that lets only the shop's admin frame it.
func checkSentToDashboard(t testing.TB, h *apptest.Harness, r apptest.Response, shop string) {
	t.Helper()
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || loc.Path != "/app" || loc.Query().Get("shop") != shop || loc.Query().Get("embedded") != "1" || loc.Query().Get("id_token") == "" {
		t.Fatalf("sent to %q, want /app with the load's query", r.Header.Get("Location"))
	}
	page := browserGet(t, h.URL+loc.String())
	body := string(page.Body)
	for _, want := range []string{
		`<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>`,
		`<meta name="shopify-api-key" content="` + testShopifyKey + `">`,
		`<h1>Lists</h1>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the dashboard lacks %q:\n%s", want, body)
		}
	}
	if page.Status != http.StatusOK || page.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("dashboard: %d %q", page.Status, page.Header.Get("Content-Type"))
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "frame-ancestors https://"+shop+" https://admin.shopify.com;") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// TestShopifySessionTokenAuth: the admin API accepts a session token from the embedded app and
// acts for the merchant of the shop in its dest claim; anything else is 401.
func TestShopifySessionTokenAuth(t *testing.T) {
	t.Parallel()
	h, fake := shopifyInstallApp(t, "", nil)
	shop := testShop("session")
	if r := browserGet(t, h.URL+"/shopify/install?"+signedQuery(testShopifySecret, map[string]string{
		"shop": shop, "embedded": "1", "id_token": fake.SessionToken(shop, time.Minute)})); r.Status != http.StatusFound {
		t.Fatalf("embedded install: %d %s", r.Status, r.Body)
	}
	installed, _ := lookupShop(t, h, shop)
	// Another merchant's list must stay invisible.
	stranger := h.NewMerchant(t, "Session Stranger")
	h.CreateList(t, stranger, map[string]any{"name": "Not the shop's"})

	token := fake.SessionToken(shop, time.Minute)
	created := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists", JSON: map[string]any{"name": "From the embedded app"}, APIKey: token})
	if created.Status != http.StatusCreated {
		t.Fatalf("create a list with a session token: %d %s", created.Status, created.Body)
	}
	var owner uuid.UUID
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT merchant_id FROM code_lists WHERE id = $1`, created.Map(t)["id"]).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner != installed.route.MerchantID {
		t.Fatalf("the list went to merchant %s, not the shop's %s", owner, installed.route.MerchantID)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: token})
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/lists with a session token: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0]["name"] != "From the embedded app" {
		t.Fatalf("the shop's lists: %+v", page.Items)
	}

	unknown := testShop("unknown")
	tests := []struct {
		name  string
		token string
	}{
		{"expired", fake.SessionToken(shop, -time.Minute)},
		{"wrong audience", shopify.SignSessionToken(shopify.SessionClaims{Shop: shop, Audience: "another-app", Exp: time.Now().Add(time.Minute)}, testShopifySecret)},
		{"wrong secret", shopify.SignSessionToken(shopify.SessionClaims{Shop: shop, Audience: testShopifyKey, Exp: time.Now().Add(time.Minute)}, "not-the-secret")},
		{"not yet valid", shopify.SignSessionToken(shopify.SessionClaims{Shop: shop, Audience: testShopifyKey, Nbf: time.Now().Add(time.Hour), Exp: time.Now().Add(2 * time.Hour)}, testShopifySecret)},
		{"unknown shop", fake.SessionToken(unknown, time.Minute)},
		{"not a shop", shopify.SignSessionToken(shopify.SessionClaims{Shop: "evil.example.com", Audience: testShopifyKey, Exp: time.Now().Add(time.Minute)}, testShopifySecret)},
		{"garbage", "a.b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: tt.token})
			if r.Status != http.StatusUnauthorized || r.ErrorCode() != "unauthorized" {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
	}

	// A disconnected shop's tokens stop working at once.
	if _, err := h.App.DB.Pool().Exec(context.Background(), `DELETE FROM shop_routes WHERE platform = 'shopify' AND shop = $1`, shop); err != nil {
		t.Fatal(err)
	}
	if r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: fake.SessionToken(shop, time.Minute)}); r.Status != http.StatusUnauthorized {
		t.Fatalf("session token of a shop no longer routed: %d %s", r.Status, r.Body)
	}
}
