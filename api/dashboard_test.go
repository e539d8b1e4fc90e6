package api_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/web"
)

// dashFixture is a gateway with a merchant whose shop is connected, an owner and a staff member
// signed in with cookies.
type dashFixture struct {
	h        *apptest.Harness
	merchant apptest.Merchant
	shop     string
	owner    core.SignedIn
	staff    core.SignedIn
}

const dashPassword = "a long enough password"

func newDashFixture(t *testing.T, configure func(*config.Config)) *dashFixture {
	t.Helper()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.ShopifyAPIKey, c.ShopifyAPISecret = testShopifyKey, testShopifySecret
		c.AppBridgeURL = "https://cdn.shopify.test/app-bridge.js"
		if configure != nil {
			configure(c)
		}
	}})
	f := &dashFixture{h: h, merchant: h.NewMerchant(t, "Dashboard Shop"), shop: testShop("dash")}
	connectShop(t, h, f.merchant.ID, f.shop)
	f.owner = f.member(t, "owner", core.RoleOwner)
	f.staff = f.member(t, "staff", core.RoleStaff)
	return f
}

// member invites and signs in a person of the fixture's merchant.
func (f *dashFixture) member(t *testing.T, name string, role core.Role) core.SignedIn {
	t.Helper()
	ctx := context.Background()
	email := name + "-" + uuid.NewString()[:8] + "@example.com"
	_, token, err := f.h.App.Users.Invite(ctx, uuid.MustParse(f.merchant.ID), core.InviteInput{Email: email, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.h.App.Users.AcceptInvite(ctx, token, dashPassword, dashPassword)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenTTL is how long the ID tokens a test signs before its parallel subtests stay valid:
// Shopify's last a minute, but a subtest can wait minutes for a parallel slot on a busy machine
// (TestDashboardWhoIsSignedIn's good tokens had expired when their subtests ran, in CI).
const tokenTTL = time.Hour

// idToken is an ID token for shop, signed as Shopify signs it (ttl may be negative: expired).
func idToken(shop string, ttl time.Duration, secret string) string {
	now := time.Now()
	return shopify.SignSessionToken(shopify.SessionClaims{Shop: shop, Audience: testShopifyKey, Sub: "42",
		Exp: now.Add(ttl), Nbf: now.Add(-time.Second), Iat: now, Jti: uuid.NewString()}, secret)
}

// dashRequest is one request to the dashboard.
type dashRequest struct {
	method  string
	path    string
	form    url.Values
	header  map[string]string
	cookies []*http.Cookie
}

func (f *dashFixture) do(t *testing.T, r dashRequest) apptest.Response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequest(r.method, f.h.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	for _, c := range r.cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func sessionOf(s core.SignedIn) []*http.Cookie {
	return []*http.Cookie{{Name: "cg_session", Value: s.Token}}
}

// cookieNamed returns the Set-Cookie of that name in r, or nil.
func cookieNamed(r apptest.Response, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestDashboardWhoIsSignedIn: each way in (none, a cookie session, Shopify's ID token on a document
// load or as a bearer token) gets the answer its case calls for, with the page headers.
func TestDashboardWhoIsSignedIn(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	other := testShop("not-connected")
	host := "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGFzaA"
	embeddedQuery := func(extra ...string) string {
		q := url.Values{"embedded": {"1"}, "shop": {f.shop}, "host": {host}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		return q.Encode()
	}
	good := idToken(f.shop, tokenTTL, testShopifySecret)
	embeddedCSP := "frame-ancestors https://" + f.shop + " https://admin.shopify.com;"
	const noneCSP = "frame-ancestors 'none';"
	tests := []struct {
		name     string
		req      dashRequest
		status   int
		location string // a prefix of Location
		csp      string // a prefix of Content-Security-Policy
		body     string
		retry    bool
	}{
		{name: "nobody", req: dashRequest{path: "/app"}, status: http.StatusSeeOther, location: "/app/sign-in", csp: noneCSP},
		{name: "nobody, a deeper page", req: dashRequest{path: "/app/settings/team"}, status: http.StatusSeeOther,
			location: "/app/sign-in?next=%2Fapp%2Fsettings%2Fteam", csp: noneCSP},
		{name: "a made-up cookie", req: dashRequest{path: "/app", cookies: []*http.Cookie{{Name: "cg_session", Value: f.merchant.ID + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}},
			status: http.StatusSeeOther, location: "/app/sign-in", csp: noneCSP},
		{name: "the owner's session", req: dashRequest{path: "/app", cookies: sessionOf(f.owner)}, status: http.StatusOK, csp: noneCSP, body: "<h1>Lists</h1>"},
		{name: "staff at home go to Find a code", req: dashRequest{path: "/app", cookies: sessionOf(f.staff)}, status: http.StatusSeeOther, location: "/app/codes", csp: noneCSP},
		{name: "staff on the team page", req: dashRequest{path: "/app/settings/team", cookies: sessionOf(f.staff)}, status: http.StatusForbidden, csp: noneCSP,
			body: "Only an owner of the team can open this page"},
		{name: "staff on the lists page", req: dashRequest{path: "/app/lists", cookies: sessionOf(f.staff)}, status: http.StatusForbidden, csp: noneCSP},
		{name: "embedded, no id_token: the bounce page", req: dashRequest{path: "/app?" + embeddedQuery()}, status: http.StatusFound,
			location: "/auth/session-token?" + url.Values{"host": {host}, "shop": {f.shop}, "shopify-reload": {"/app?" + embeddedQuery()}}.Encode(), csp: embeddedCSP},
		{name: "embedded with a good id_token", req: dashRequest{path: "/app?" + embeddedQuery("id_token", good)}, status: http.StatusOK, csp: embeddedCSP,
			body: `<meta name="shopify-api-key" content="` + testShopifyKey + `">`},
		{name: "embedded with an expired id_token: the bounce page", req: dashRequest{path: "/app/lists?" + embeddedQuery("id_token", idToken(f.shop, -time.Minute, testShopifySecret))},
			status: http.StatusFound, location: "/auth/session-token?", csp: embeddedCSP},
		{name: "embedded with another shop's id_token", req: dashRequest{path: "/app?" + embeddedQuery("id_token", idToken(other, tokenTTL, testShopifySecret))},
			status: http.StatusUnauthorized, csp: embeddedCSP},
		{name: "embedded with a forged id_token", req: dashRequest{path: "/app?" + embeddedQuery("id_token", idToken(f.shop, tokenTTL, "not-the-secret"))},
			status: http.StatusUnauthorized, csp: embeddedCSP},
		{name: "embedded with a shop that is not a shop", req: dashRequest{path: "/app?embedded=1&shop=evil.example.com"}, status: http.StatusBadRequest, csp: noneCSP},
		{name: "a good bearer token", req: dashRequest{path: "/app/lists", header: map[string]string{"Authorization": "Bearer " + good}}, status: http.StatusOK, csp: embeddedCSP, body: "<h1>Lists</h1>"},
		{name: "a forged bearer token", req: dashRequest{path: "/app/lists", header: map[string]string{"Authorization": "Bearer " + idToken(f.shop, tokenTTL, "not-the-secret")}},
			status: http.StatusUnauthorized, csp: noneCSP, retry: true},
		{name: "an expired bearer token", req: dashRequest{path: "/app/lists", header: map[string]string{"Authorization": "Bearer " + idToken(f.shop, -time.Minute, testShopifySecret)}},
			status: http.StatusUnauthorized, csp: noneCSP, retry: true},
		{name: "a bearer token of a shop not connected", req: dashRequest{path: "/app/lists", header: map[string]string{"Authorization": "Bearer " + idToken(other, tokenTTL, testShopifySecret)}},
			status: http.StatusNotFound, csp: noneCSP, body: "install the app first"},
		{name: "a bearer token beats a cookie", req: dashRequest{path: "/app/lists", cookies: sessionOf(f.owner),
			header: map[string]string{"Authorization": "Bearer garbage"}}, status: http.StatusUnauthorized, csp: noneCSP, retry: true},
		{name: "an unknown dashboard page", req: dashRequest{path: "/app/no-such-page"}, status: http.StatusNotFound, csp: noneCSP, body: "This page does not exist"},
		{name: "the bounce page", req: dashRequest{path: "/auth/session-token?shop=" + f.shop + "&host=" + host + "&shopify-reload=" + url.QueryEscape("/app/lists?embedded=1&shop="+f.shop)},
			status: http.StatusOK, csp: embeddedCSP, body: `data-bounce="/app/lists?embedded=1&amp;shop=` + f.shop + `"`},
		{name: "the bounce page never reloads elsewhere", req: dashRequest{path: "/auth/session-token?shop=" + f.shop + "&shopify-reload=" + url.QueryEscape("//evil.example/app")},
			status: http.StatusOK, csp: embeddedCSP, body: `data-bounce="/app?embedded=1&amp;host=&amp;shop=` + f.shop + `"`},
		{name: "the bounce page of a shop that is not a shop", req: dashRequest{path: "/auth/session-token?shop=evil.example.com"}, status: http.StatusBadRequest, csp: noneCSP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := f.do(t, tt.req)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, tt.location) || (tt.location == "" && loc != "") {
				t.Errorf("Location %q, want %q…", loc, tt.location)
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, tt.csp) ||
				!strings.Contains(csp, "default-src 'self'; script-src 'self'") || !strings.Contains(csp, "base-uri 'none'") {
				t.Errorf("Content-Security-Policy %q, want %q…", csp, tt.csp)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Referrer-Policy") != "same-origin" || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("page headers: %v", r.Header)
			}
			if got := r.Header.Get("X-Shopify-Retry-Invalid-Session-Request"); (got == "1") != tt.retry {
				t.Errorf("X-Shopify-Retry-Invalid-Session-Request %q, want it: %v", got, tt.retry)
			}
			if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
				if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q: errors under /app are pages, not JSON", ct)
				}
			}
			if !strings.Contains(string(r.Body), tt.body) {
				t.Errorf("the page lacks %q:\n%s", tt.body, r.Body)
			}
		})
	}
}

// TestDashboardFragments: app.js's requests get only the page's main block and its title.
func TestDashboardFragments(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	r := f.do(t, dashRequest{path: "/app/lists", header: map[string]string{
		"Authorization": "Bearer " + idToken(f.shop, time.Minute, testShopifySecret), "X-Coupongate-Fragment": "1"}})
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), "<html") || !strings.Contains(string(r.Body), "<h1>Lists</h1>") ||
		r.Header.Get("X-Coupongate-Title") != "Lists" {
		t.Fatalf("fragment: %d %q %s", r.Status, r.Header.Get("X-Coupongate-Title"), r.Body)
	}
	// An error is a fragment too.
	r = f.do(t, dashRequest{path: "/app/lists", cookies: sessionOf(f.staff), header: map[string]string{"X-Coupongate-Fragment": "1"}})
	if r.Status != http.StatusForbidden || strings.Contains(string(r.Body), "<html") || !strings.Contains(string(r.Body), "You cannot open this page") {
		t.Fatalf("error fragment: %d %s", r.Status, r.Body)
	}
	// The JSON API keeps its JSON errors.
	if r := f.do(t, dashRequest{path: "/api/v1/nope"}); r.Status != http.StatusNotFound || r.ErrorCode() != "route_not_found" {
		t.Fatalf("an unknown API path: %d %s", r.Status, r.Body)
	}
}

// TestDashboardCSRF: a state-changing request of a cookie session needs the session's token, and
// no other site may send one.
func TestDashboardCSRF(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	tests := []struct {
		name   string
		form   url.Values
		header map[string]string
		status int
	}{
		{"no token", url.Values{}, nil, http.StatusForbidden},
		{"a wrong token", url.Values{"csrf_token": {"wrong"}}, nil, http.StatusForbidden},
		{"another session's token", url.Values{"csrf_token": {f.staff.Session.CSRFToken}}, nil, http.StatusForbidden},
		{"the right token from another site", url.Values{"csrf_token": {f.owner.Session.CSRFToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"the right token in the header", url.Values{}, map[string]string{"X-CSRF-Token": f.owner.Session.CSRFToken}, http.StatusOK},
		{"the right token", url.Values{"csrf_token": {f.owner.Session.CSRFToken}}, map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			form := url.Values{"email": {"csrf-" + uuid.NewString()[:8] + "@example.com"}, "role": {"staff"}}
			for k, v := range tt.form {
				form[k] = v
			}
			r := f.do(t, dashRequest{method: http.MethodPost, path: "/app/settings/team", form: form, header: tt.header, cookies: sessionOf(f.owner)})
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			team, _ := f.h.App.Users.Team(context.Background(), uuid.MustParse(f.merchant.ID))
			invited := false
			for _, u := range team {
				invited = invited || u.Email == form.Get("email")
			}
			if invited != (tt.status == http.StatusOK) {
				t.Fatalf("invited: %v", invited)
			}
		})
	}
	// Bearer requests need no CSRF token: the header cannot be sent by another site.
	r := f.do(t, dashRequest{method: http.MethodPost, path: "/app/settings/team", form: url.Values{"email": {"bearer-" + uuid.NewString()[:8] + "@example.com"}, "role": {"staff"}},
		header: map[string]string{"Authorization": "Bearer " + idToken(f.shop, time.Minute, testShopifySecret)}})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "/app/invite/") {
		t.Fatalf("an invite from inside the admin: %d %s", r.Status, r.Body)
	}
}

// TestDashboardSignIn: the sign-in form's double-submit token, one answer for every refusal, a new
// session with the right cookie, and only dashboard pages as the place to go next.
func TestDashboardSignIn(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	page := f.do(t, dashRequest{path: "/app/sign-in"})
	csrf := cookieNamed(page, "cg_csrf")
	if page.Status != http.StatusOK || csrf == nil || !strings.Contains(string(page.Body), `name="csrf_token" value="`+csrf.Value+`"`) {
		t.Fatalf("sign-in page: %d %v %s", page.Status, csrf, page.Body)
	}
	signIn := func(email, password, next string, token string) apptest.Response {
		return f.do(t, dashRequest{method: http.MethodPost, path: "/app/sign-in", cookies: []*http.Cookie{csrf},
			form: url.Values{"email": {email}, "password": {password}, "next": {next}, "csrf_token": {token}}})
	}
	if r := signIn(f.owner.User.Email, dashPassword, "", "wrong"); r.Status != http.StatusForbidden {
		t.Fatalf("without the form's token: %d", r.Status)
	}
	wrong := signIn(f.owner.User.Email, "not the password", "", csrf.Value)
	unknown := signIn("nobody-"+uuid.NewString()[:6]+"@example.com", dashPassword, "", csrf.Value)
	for _, r := range []apptest.Response{wrong, unknown} {
		if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "The email address or the password is not right.") || cookieNamed(r, "cg_session") != nil {
			t.Fatalf("a refused sign-in: %d %s", r.Status, r.Body)
		}
	}
	tests := []struct{ next, want string }{
		{"", "/app"},
		{"/app/settings/team", "/app/settings/team"},
		{"//evil.example/app", "/app"},
		{"https://evil.example/app", "/app"},
		{"/api/v1/lists", "/app"},
	}
	for _, tt := range tests {
		r := signIn(strings.ToUpper(f.owner.User.Email), dashPassword, tt.next, csrf.Value)
		c := cookieNamed(r, "cg_session")
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != tt.want || c == nil {
			t.Fatalf("sign in, next %q: %d %q", tt.next, r.Status, r.Header.Get("Location"))
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/app" || c.Secure || c.Value == f.owner.Token {
			t.Fatalf("session cookie %+v", c)
		}
		if got := f.do(t, dashRequest{path: "/app", cookies: []*http.Cookie{c}}); got.Status != http.StatusOK {
			t.Fatalf("the new session: %d", got.Status)
		}
	}
	// Signing in ends the session the browser had before (a new id at every sign-in).
	before := f.member(t, "before", core.RoleStaff)
	r := f.do(t, dashRequest{method: http.MethodPost, path: "/app/sign-in", cookies: []*http.Cookie{csrf, sessionOf(before)[0]},
		form: url.Values{"email": {f.owner.User.Email}, "password": {dashPassword}, "csrf_token": {csrf.Value}}})
	if r.Status != http.StatusSeeOther || cookieNamed(r, "cg_session") == nil {
		t.Fatalf("sign in over a session: %d", r.Status)
	}
	if _, err := f.h.App.Users.Session(context.Background(), before.Token); err == nil {
		t.Fatal("the browser's previous session still works after a new sign-in")
	}
	// Signed in already, the sign-in page moves on.
	if r := f.do(t, dashRequest{path: "/app/sign-in", cookies: sessionOf(f.owner)}); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/app" {
		t.Fatalf("sign-in page when signed in: %d %q", r.Status, r.Header.Get("Location"))
	}
	// Signing out ends the session on the server.
	s := f.member(t, "leaver", core.RoleOwner)
	r = f.do(t, dashRequest{method: http.MethodPost, path: "/app/sign-out", cookies: sessionOf(s), form: url.Values{"csrf_token": {s.Session.CSRFToken}}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/app/sign-in" || cookieNamed(r, "cg_session").MaxAge >= 0 {
		t.Fatalf("sign out: %d %v", r.Status, r.Header)
	}
	if r := f.do(t, dashRequest{path: "/app", cookies: sessionOf(s)}); r.Status != http.StatusSeeOther {
		t.Fatalf("the signed-out session still works: %d", r.Status)
	}
}

// TestDashboardSignInThrottled: after ten failures from one address, sign-ins from it answer 429
// with Retry-After, even with the right password; another address is not held up.
func TestDashboardSignInThrottled(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} })
	page := f.do(t, dashRequest{path: "/app/sign-in"})
	csrf := cookieNamed(page, "cg_csrf")
	signIn := func(from, email, password string) apptest.Response {
		return f.do(t, dashRequest{method: http.MethodPost, path: "/app/sign-in", cookies: []*http.Cookie{csrf},
			header: map[string]string{"X-Forwarded-For": from},
			form:   url.Values{"email": {email}, "password": {password}, "csrf_token": {csrf.Value}}})
	}
	// An address of this run alone: the failures are counted in Redis for a while, past this test.
	from := fmt.Sprintf("2001:db8::%x", rand.Uint32())
	for i := range core.SignInFailures {
		if r := signIn(from, "guess-"+uuid.NewString()[:6]+"@example.com", "guess"); r.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.Status)
		}
	}
	r := signIn(from, f.owner.User.Email, dashPassword)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), "Too many failed sign-ins") {
		t.Fatalf("the eleventh sign-in: %d %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if r := signIn("203.0.113.8", f.owner.User.Email, dashPassword); r.Status != http.StatusSeeOther {
		t.Fatalf("another address: %d", r.Status)
	}
}

// TestDashboardSecureCookies: with APP_URL on https the session cookie is Secure.
func TestDashboardSecureCookies(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, func(c *config.Config) { c.AppURL = "https://coupons.example.com" })
	page := f.do(t, dashRequest{path: "/app/sign-in"})
	csrf := cookieNamed(page, "cg_csrf")
	if csrf == nil || !csrf.Secure {
		t.Fatalf("form cookie %+v", csrf)
	}
	r := f.do(t, dashRequest{method: http.MethodPost, path: "/app/sign-in", cookies: []*http.Cookie{csrf},
		form: url.Values{"email": {f.owner.User.Email}, "password": {dashPassword}, "csrf_token": {csrf.Value}}})
	if c := cookieNamed(r, "cg_session"); r.Status != http.StatusSeeOther || c == nil || !c.Secure || !c.HttpOnly {
		t.Fatalf("sign in over https: %d %+v", r.Status, c)
	}
}

// TestDashboardInvite: an invite link asks for a password twice, works once, and signs the person
// in; the team page's invite shows the link once and the last owner cannot be removed.
func TestDashboardInvite(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	invited := f.do(t, dashRequest{method: http.MethodPost, path: "/app/settings/team", cookies: sessionOf(f.owner),
		form: url.Values{"email": {"new-" + uuid.NewString()[:8] + "@example.com"}, "role": {"owner"}, "csrf_token": {f.owner.Session.CSRFToken}}})
	i := strings.Index(string(invited.Body), f.h.URL+"/app/invite/")
	if invited.Status != http.StatusOK || i < 0 {
		t.Fatalf("invite: %d %s", invited.Status, invited.Body)
	}
	link := string(invited.Body[i:])
	link = link[:strings.IndexByte(link, '<')]
	path := strings.TrimPrefix(link, f.h.URL)

	form := f.do(t, dashRequest{path: path})
	csrf := cookieNamed(form, "cg_csrf")
	if form.Status != http.StatusOK || csrf == nil || !strings.Contains(string(form.Body), `id="password_confirm"`) {
		t.Fatalf("invite page: %d %s", form.Status, form.Body)
	}
	accept := func(pw, confirm string) apptest.Response {
		return f.do(t, dashRequest{method: http.MethodPost, path: path, cookies: []*http.Cookie{csrf},
			form: url.Values{"password": {pw}, "password_confirm": {confirm}, "csrf_token": {csrf.Value}}})
	}
	if r := accept("short", "short"); r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "Choose a password of at least 12 characters.") {
		t.Fatalf("a short password: %d %s", r.Status, r.Body)
	}
	if r := accept(dashPassword, dashPassword+"!"); r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "The two passwords are not the same.") {
		t.Fatalf("two passwords: %d %s", r.Status, r.Body)
	}
	r := accept(dashPassword, dashPassword)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/app" || cookieNamed(r, "cg_session") == nil {
		t.Fatalf("accept: %d %v", r.Status, r.Header)
	}
	for _, again := range []apptest.Response{f.do(t, dashRequest{path: path}), accept(dashPassword, dashPassword)} {
		if again.Status != http.StatusNotFound || !strings.Contains(string(again.Body), "This invite link does not work") {
			t.Fatalf("the used link: %d %s", again.Status, again.Body)
		}
	}

	// A team of one owner: that owner cannot be removed.
	g := newDashFixture(t, nil)
	remove := func(who core.SignedIn, as core.SignedIn) apptest.Response {
		return g.do(t, dashRequest{method: http.MethodPost, path: "/app/settings/team/" + who.User.ID.String() + "/remove", cookies: sessionOf(as),
			form: url.Values{"csrf_token": {as.Session.CSRFToken}}})
	}
	if r := remove(g.owner, g.owner); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "last owner") {
		t.Fatalf("removing the last owner: %d %s", r.Status, r.Body)
	}
	if r := remove(g.staff, g.owner); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/app/settings/team" {
		t.Fatalf("removing staff: %d", r.Status)
	}
	if r := g.do(t, dashRequest{path: "/app", cookies: sessionOf(g.staff)}); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/app/sign-in") {
		t.Fatalf("the removed person's session: %d", r.Status)
	}
}

// TestDashboardStatic: static files carry their content hash; the current version is cached for a
// year, any other revalidated by ETag.
func TestDashboardStatic(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	_, _, hash, _ := web.Asset("app.css")
	// (as it is: a gzipped answer has a weak ETag, see TestDashboardStaticGzip)
	r := f.do(t, dashRequest{path: web.StaticURL("app.css"), header: map[string]string{"Accept-Encoding": "identity"}})
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "text/css; charset=utf-8" ||
		r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || r.Header.Get("ETag") != `"`+hash+`"` {
		t.Fatalf("app.css: %d %v", r.Status, r.Header)
	}
	if r := f.do(t, dashRequest{path: "/app/static/app.css"}); r.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.css without its version: %v", r.Header)
	}
	if r := f.do(t, dashRequest{path: "/app/static/app.css", header: map[string]string{"If-None-Match": `"` + hash + `"`}}); r.Status != http.StatusNotModified || len(r.Body) != 0 {
		t.Fatalf("revalidation: %d", r.Status)
	}
	if r := f.do(t, dashRequest{path: "/app/static/nope.js"}); r.Status != http.StatusNotFound {
		t.Fatalf("unknown file: %d", r.Status)
	}
}
