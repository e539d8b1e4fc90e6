package woofake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/woocommerce"
)

type authMode int

const (
	authNone authMode = iota
	authBasic
	authQuery
	authOAuth
)

type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
	list   []map[string]any
}

func (a answer) code() string { s, _ := a.body["code"].(string); return s }

func (a answer) message() string { s, _ := a.body["message"].(string); return s }

// doCall sends one REST request to the fake with the given credentials and fails the test when
// it cannot.
func doCall(t *testing.T, f *Fake, mode authMode, key, secret, method, path string, query url.Values, body any) answer {
	t.Helper()
	a, err := tryCall(f, mode, key, secret, method, path, query, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryCall is doCall returning its error instead of failing the test, for a request sent from a
// goroutine other than the test's.
func tryCall(f *Fake, mode authMode, key, secret, method, path string, query url.Values, body any) (answer, error) {
	endpoint := f.URL() + "/wp-json/wc/v3" + path
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	switch mode {
	case authQuery:
		q.Set("consumer_key", key)
		q.Set("consumer_secret", secret)
	case authOAuth:
		var err error
		if q, err = woocommerce.SignOAuth1(method, endpoint, q, key, secret, f.cfg.Now(), ""); err != nil {
			return answer{}, err
		}
	}
	target := endpoint
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if mode == authBasic {
		req.SetBasicAuth(key, secret)
	}
	resp, err := f.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	a.raw, _ = io.ReadAll(resp.Body)
	if json.Unmarshal(a.raw, &a.body) != nil {
		_ = json.Unmarshal(a.raw, &a.list)
	}
	return a, nil
}

// admin calls with the default key: Basic over TLS, OAuth over plain HTTP.
func admin(t *testing.T, f *Fake, method, path string, query url.Values, body any) answer {
	t.Helper()
	mode := authOAuth
	if f.cfg.TLS {
		mode = authBasic
	}
	return doCall(t, f, mode, f.cfg.ConsumerKey, f.cfg.ConsumerSecret, method, path, query, body)
}

// sink is a receiver that records requests and answers status.
type sink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	bodies [][]byte
	status int
}

func newSink(t *testing.T, status int) *sink {
	s := &sink{status: status}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.bodies = append(s.bodies, b)
		st := s.status
		s.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) setStatus(n int) { s.mu.Lock(); s.status = n; s.mu.Unlock() }

func (s *sink) got() ([]*http.Request, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...), append([][]byte(nil), s.bodies...)
}

func TestAuthRules(t *testing.T) {
	t.Parallel()
	tlsFake := New(t, Config{TLS: true})
	plain := New(t, Config{})
	for _, f := range []*Fake{tlsFake, plain} {
		f.AddKey("ck_read", "cs_read", "read")
		f.AddKey("ck_write", "cs_write", "write")
	}
	ck, cs := DefaultConsumerKey, DefaultConsumerSecret
	tests := []struct {
		name        string
		f           *Fake
		mode        authMode
		key, secret string
		method      string
		path        string
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{"tls basic", tlsFake, authBasic, ck, cs, "GET", "/system_status", 200, "", ""},
		{"tls query keys", tlsFake, authQuery, ck, cs, "GET", "/system_status", 200, "", ""},
		{"tls oauth", tlsFake, authOAuth, ck, cs, "GET", "/coupons", 200, "", ""},
		{"tls wrong secret", tlsFake, authBasic, ck, "cs_nope", "GET", "/system_status", 401, "woocommerce_rest_authentication_error", "Consumer secret is invalid."},
		{"tls unknown key", tlsFake, authBasic, "ck_nope", cs, "GET", "/coupons", 401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."},
		{"tls no auth", tlsFake, authNone, "", "", "POST", "/webhooks", 401, "woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."},
		{"tls no auth batch", tlsFake, authNone, "", "", "POST", "/coupons/batch", 401, "woocommerce_rest_cannot_batch", ""},
		{"read key reads", tlsFake, authBasic, "ck_read", "cs_read", "GET", "/coupons", 200, "", ""},
		{"read key cannot write", tlsFake, authBasic, "ck_read", "cs_read", "POST", "/coupons", 401, "woocommerce_rest_authentication_error", "The API key provided does not have write permissions."},
		{"write key cannot read", tlsFake, authBasic, "ck_write", "cs_write", "GET", "/coupons", 401, "woocommerce_rest_authentication_error", "The API key provided does not have read permissions."},
		{"unknown route", tlsFake, authBasic, ck, cs, "GET", "/products/x", 404, "rest_no_route", ""},
		{"wrong method", tlsFake, authBasic, ck, cs, "DELETE", "/coupons", 404, "rest_no_route", ""},
		{"plain oauth", plain, authOAuth, ck, cs, "GET", "/system_status", 200, "", ""},
		{"plain basic refused", plain, authBasic, ck, cs, "GET", "/system_status", 401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."},
		{"plain query keys refused", plain, authQuery, ck, cs, "GET", "/coupons", 401, "woocommerce_rest_cannot_view", ""},
		{"plain oauth wrong secret", plain, authOAuth, ck, "cs_nope", "GET", "/coupons", 401, "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match."},
		{"plain oauth unknown key", plain, authOAuth, "ck_nope", cs, "GET", "/coupons", 401, "woocommerce_rest_authentication_error", "Consumer key is invalid."},
		{"plain oauth read key cannot write", plain, authOAuth, "ck_read", "cs_read", "DELETE", "/webhooks/1", 401, "woocommerce_rest_authentication_error", "The API key provided does not have write permissions."},
	}
	// Not parallel: the two fakes are used after the cases, which revokes ck_read that a case needs.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := doCall(t, tc.f, tc.mode, tc.key, tc.secret, tc.method, tc.path, url.Values{"force": {"true"}}, nil)
			if a.status != tc.wantStatus || a.code() != tc.wantCode || (tc.wantMessage != "" && a.message() != tc.wantMessage) {
				t.Fatalf("%d %s", a.status, a.raw)
			}
			if tc.wantStatus >= 400 {
				if st, _ := a.body["data"].(map[string]any)["status"].(float64); int(st) != tc.wantStatus {
					t.Fatalf("data.status in %s", a.raw)
				}
			}
		})
	}

	// OAuth specifics on the plain store.
	endpoint := plain.URL() + "/wp-json/wc/v3/coupons"
	get := func(q url.Values) answer {
		req, _ := http.NewRequest("GET", endpoint+"?"+q.Encode(), nil)
		resp, err := plain.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		a := answer{status: resp.StatusCode}
		a.raw, _ = io.ReadAll(resp.Body)
		_ = json.Unmarshal(a.raw, &a.body)
		return a
	}
	q, _ := woocommerce.SignOAuth1("GET", endpoint, nil, ck, cs, time.Now(), "same-nonce")
	if a := get(q); a.status != 200 {
		t.Fatalf("first use: %d %s", a.status, a.raw)
	}
	if a := get(q); a.status != 401 || a.message() != "Invalid nonce - nonce has already been used." {
		t.Fatalf("replay: %d %s", a.status, a.raw)
	}
	q, _ = woocommerce.SignOAuth1("GET", endpoint, nil, ck, cs, time.Now().Add(-20*time.Minute), "")
	if a := get(q); a.status != 401 || a.message() != "Invalid timestamp." {
		t.Fatalf("stale: %d %s", a.status, a.raw)
	}
	q.Del("oauth_nonce")
	if a := get(q); a.status != 401 || a.code() != "woocommerce_rest_authentication_missing_parameter" || a.message() != "Missing OAuth parameter oauth_nonce" {
		t.Fatalf("partial: %d %s", a.status, a.raw)
	}

	// A form body's fields are signed with the query, as WooCommerce reads $_GET and $_POST.
	form := url.Values{"code": {"FormCode"}, "amount": {"5"}}
	signed, _ := woocommerce.SignOAuth1("POST", endpoint, form, ck, cs, time.Now(), "")
	oauthOnly := url.Values{}
	for k, v := range signed {
		if strings.HasPrefix(k, "oauth_") {
			oauthOnly[k] = v
		}
	}
	resp, err := plain.Client().Post(endpoint+"?"+oauthOnly.Encode(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(raw), `"code":"formcode"`) {
		t.Fatalf("signed form POST: %d %s", resp.StatusCode, raw)
	}

	plain.RevokeKey("ck_read")
	if a := doCall(t, plain, authOAuth, "ck_read", "cs_read", "GET", "/coupons", nil, nil); a.status != 401 || a.message() != "Consumer key is invalid." {
		t.Fatalf("revoked: %d %s", a.status, a.raw)
	}
	if n := plain.Requests(); n < 10 {
		t.Fatalf("Requests() = %d", n)
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	f := New(t, Config{TLS: true})
	f.FailNext(1, 429, "3")
	f.FailNext(1, 503, "")
	a := admin(t, f, "GET", "/coupons", nil, nil)
	if a.status != 429 || a.header.Get("Retry-After") != "3" || a.code() != "rate_limit_exceeded" {
		t.Fatalf("429: %d %v %s", a.status, a.header, a.raw)
	}
	a = admin(t, f, "GET", "/coupons", nil, nil)
	if a.status != 503 || !strings.Contains(string(a.raw), "503 Service Unavailable") {
		t.Fatalf("503: %d %s", a.status, a.raw)
	}
	// Failures come before authentication.
	f.FailNext(1, 500, "")
	a = doCall(t, f, authNone, "", "", "GET", "/coupons", nil, nil)
	if a.status != 500 || a.code() != "internal_server_error" {
		t.Fatalf("500: %d %s", a.status, a.raw)
	}
	if a = admin(t, f, "GET", "/coupons", nil, nil); a.status != 200 {
		t.Fatalf("after: %d %s", a.status, a.raw)
	}
}

// TestRateLimit: past the limit in a window, requests answer 429 with the whole seconds left in
// the window; the next window serves again; Throttled counts the 429s of each window.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	f := New(t, Config{TLS: true, Now: func() time.Time { return *now.Load() }})
	const window = 300 * time.Millisecond
	f.SetRateLimit(RateLimit{Requests: 2, Window: window})
	for i := range 2 {
		if a := admin(t, f, "GET", "/coupons", nil, nil); a.status != 200 {
			t.Fatalf("request %d within the limit: %d %s", i, a.status, a.raw)
		}
	}
	for range 2 {
		a := admin(t, f, "GET", "/coupons", nil, nil)
		if a.status != 429 || a.code() != "rate_limit_exceeded" || a.header.Get("Retry-After") != "1" {
			t.Fatalf("past the limit: %d %v %s", a.status, a.header, a.raw)
		}
	}
	if got := f.Throttled(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("throttled %v, want [2]", got)
	}
	almost := start.Add(window - time.Millisecond)
	now.Store(&almost)
	if a := admin(t, f, "GET", "/coupons", nil, nil); a.status != 429 {
		t.Fatalf("a moment before the window ends: %d %s", a.status, a.raw)
	}
	next := start.Add(window)
	now.Store(&next)
	if a := admin(t, f, "GET", "/coupons", nil, nil); a.status != 200 {
		t.Fatalf("the next window: %d %s", a.status, a.raw)
	}
	f.SetRateLimit(RateLimit{})
	for range 5 {
		if a := admin(t, f, "GET", "/coupons", nil, nil); a.status != 200 {
			t.Fatalf("without a limit: %d %s", a.status, a.raw)
		}
	}
	if got := f.Throttled(); len(got) != 1 || got[0] != 3 || f.Requests() != 11 {
		t.Fatalf("throttled %v, %d requests; want [3] of 11", got, f.Requests())
	}
}

func TestCoupons(t *testing.T) {
	t.Parallel()
	f := New(t, Config{TLS: true})
	a := admin(t, f, "POST", "/coupons", nil, map[string]any{"code": "Spring-10", "amount": "10", "discount_type": "percent", "usage_limit": 1})
	if a.status != 201 || a.body["code"] != "spring-10" || a.body["amount"] != "10.00" || a.body["usage_limit"] != 1.0 ||
		a.body["usage_limit_per_user"] != nil || a.header.Get("Location") == "" {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	if !bytes.Contains(a.raw, []byte(`https:\/\/`)) {
		t.Fatalf("links not escaped as PHP does: %s", a.raw)
	}
	checks := []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantCode   string
	}{
		{"duplicate other case", map[string]any{"code": "SPRING-10"}, 400, "woocommerce_rest_coupon_code_already_exists"},
		{"missing code", map[string]any{"amount": "5"}, 400, "rest_missing_callback_param"},
		{"empty code", map[string]any{"code": " "}, 400, "woocommerce_rest_empty_coupon_code"},
		{"amount as number", map[string]any{"code": "n1", "amount": 10}, 400, "rest_invalid_param"},
		{"bad discount type", map[string]any{"code": "n2", "discount_type": "bogus"}, 400, "rest_invalid_param"},
		{"bad date", map[string]any{"code": "n3", "date_expires_gmt": "next week"}, 400, "rest_invalid_param"},
	}
	for _, tc := range checks {
		a := admin(t, f, "POST", "/coupons", nil, tc.body)
		if a.status != tc.wantStatus || a.code() != tc.wantCode {
			t.Fatalf("%s: %d %s", tc.name, a.status, a.raw)
		}
	}

	// Batch: 100 items pass, 101 answer 413; items fail one by one.
	var creates []any
	for i := range 99 {
		creates = append(creates, map[string]any{"code": fmt.Sprintf("B%03d", i), "amount": 1})
	}
	a = admin(t, f, "POST", "/coupons/batch", nil, map[string]any{"create": creates, "delete": []any{1, 2}})
	if a.status != 413 || a.code() != "woocommerce_rest_request_entity_too_large" || a.message() != "Unable to accept more than 100 items for this request." {
		t.Fatalf("101 items: %d %s", a.status, a.raw)
	}
	creates = append(creates, map[string]any{"code": "spring-10"})
	a = admin(t, f, "POST", "/coupons/batch", nil, map[string]any{"create": creates})
	if a.status != 200 {
		t.Fatalf("100 items: %d %s", a.status, a.raw)
	}
	out := a.body["create"].([]any)
	if len(out) != 100 || out[0].(map[string]any)["code"] != "b000" || a.body["delete"] != nil {
		t.Fatalf("batch answer %s", a.raw)
	}
	last := out[99].(map[string]any)
	if last["id"] != 0.0 || last["error"].(map[string]any)["code"] != "woocommerce_rest_coupon_code_already_exists" ||
		last["error"].(map[string]any)["data"].(map[string]any)["status"] != 400.0 {
		t.Fatalf("duplicate item %v", last)
	}

	// Lookup by code, pagination.
	a = admin(t, f, "GET", "/coupons", url.Values{"code": {"B001"}}, nil)
	if a.status != 200 || len(a.list) != 1 || a.list[0]["code"] != "b001" {
		t.Fatalf("by code: %d %s", a.status, a.raw)
	}
	a = admin(t, f, "GET", "/coupons", url.Values{"per_page": {"30"}, "page": {"2"}}, nil)
	if len(a.list) != 30 || a.header.Get("X-WP-Total") != "100" || a.header.Get("X-WP-TotalPages") != "4" {
		t.Fatalf("page 2: %d items, %v", len(a.list), a.header)
	}
	links := strings.Join(a.header.Values("Link"), ", ")
	if !strings.Contains(links, `page=1`) || !strings.Contains(links, `rel="prev"`) || !strings.Contains(links, `page=3`) || !strings.Contains(links, `rel="next"`) {
		t.Fatalf("Link %q", links)
	}
	if a = admin(t, f, "GET", "/coupons", url.Values{"per_page": {"101"}}, nil); a.status != 400 || a.code() != "rest_invalid_param" {
		t.Fatalf("per_page 101: %d %s", a.status, a.raw)
	}

	// Trash, then delete for good.
	id := fmt.Sprint(int64(f.Coupons()[0].ID))
	if a = admin(t, f, "DELETE", "/coupons/"+id, nil, nil); a.status != 200 || a.body["status"] != "trash" {
		t.Fatalf("trash: %d %s", a.status, a.raw)
	}
	if a = admin(t, f, "POST", "/coupons", nil, map[string]any{"code": "spring-10"}); a.status != 201 {
		t.Fatalf("a trashed coupon's code is free again: %d %s", a.status, a.raw)
	}
	if a = admin(t, f, "DELETE", "/coupons/"+id, nil, nil); a.status != 410 {
		t.Fatalf("trash twice: %d %s", a.status, a.raw)
	}
	if a = admin(t, f, "DELETE", "/coupons/"+id, url.Values{"force": {"true"}}, nil); a.status != 200 {
		t.Fatalf("force: %d %s", a.status, a.raw)
	}
	if a = admin(t, f, "GET", "/coupons/"+id, nil, nil); a.status != 404 || a.code() != "woocommerce_rest_shop_coupon_invalid_id" {
		t.Fatalf("gone: %d %s", a.status, a.raw)
	}
}

// TestWebhookCreatePings: creating a webhook pings its delivery URL and answers only once the ping
// has its answer (WooCommerce pings inside the REST create). The receiver holds the ping until the
// test lets it go, so the order is shown by cause, not by timing: the ping arrives before the
// create answers, the create has not answered while the ping is held, and it answers after.
func TestWebhookCreatePings(t *testing.T) {
	t.Parallel()
	f := New(t, Config{TLS: true})
	entered := make(chan struct{}) // closed when the receiver holds the first ping
	release := make(chan struct{}) // closed by the test to let the receiver answer
	var enterOnce sync.Once
	releaseOnce := sync.OnceFunc(func() { close(release) })
	var mu sync.Mutex
	var ping *http.Request
	var pingBody []byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if ping == nil {
			ping, pingBody = r, b
		}
		mu.Unlock()
		enterOnce.Do(func() { close(entered) })
		<-release
		w.WriteHeader(http.StatusNoContent) // not 200: a failed ping, which the REST create ignores
	}))
	defer recv.Close()
	defer releaseOnce() // before recv.Close, which waits for the held ping, when the test fails early

	type created struct {
		a   answer
		err error
	}
	done := make(chan created, 1)
	go func() {
		a, err := tryCall(f, authBasic, f.cfg.ConsumerKey, f.cfg.ConsumerSecret, "POST", "/webhooks", nil,
			map[string]any{"name": "n", "topic": "order.updated", "delivery_url": recv.URL + "/wc", "status": "paused"})
		done <- created{a, err}
	}()
	select {
	case <-entered:
	case c := <-done:
		t.Fatalf("the create answered (%d %s, %v) before its ping reached the delivery URL", c.a.status, c.a.raw, c.err)
	}
	select {
	case c := <-done:
		t.Fatalf("the create answered (%d %s, %v) while its ping was still unanswered", c.a.status, c.a.raw, c.err)
	default:
	}
	if p := f.Pings(); len(p) != 0 {
		t.Fatalf("a ping recorded before its answer: %+v", p)
	}
	releaseOnce()
	c := <-done
	if c.err != nil {
		t.Fatal(c.err)
	}
	a := c.a
	if a.status != 201 || a.body["id"] != 1.0 || a.body["status"] != "active" || a.body["secret"] == nil || a.body["resource"] != "order" ||
		a.body["event"] != "updated" || a.header.Get("Location") == "" {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	if secret := a.body["secret"].(string); len(secret) != 50 {
		t.Fatalf("generated secret %q", secret)
	}
	if string(pingBody) != "webhook_id=1" || ping.Method != "POST" || ping.URL.Path != "/wc" ||
		ping.Header.Get("Content-Type") != "application/x-www-form-urlencoded; charset=UTF-8" ||
		!strings.HasPrefix(ping.Header.Get("User-Agent"), "WooCommerce/") {
		t.Fatalf("ping %v %q", ping.Header, pingBody)
	}
	for k := range ping.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-wc-") {
			t.Fatalf("ping carries %s", k)
		}
	}
	if ok, _ := woocommerce.PingWebhookID(ping.Header, pingBody); ok == "" {
		t.Fatal("the package's PingWebhookID does not recognise the ping")
	}
	if p := f.Pings(); len(p) != 1 || p[0].Status != 204 || p[0].WebhookID != 1 {
		t.Fatalf("pings %+v", p)
	}
	if w := f.Webhooks(); len(w) != 1 || !w[0].PendingDelivery || w[0].Status != "active" {
		t.Fatalf("webhooks %+v", w)
	}

	// Validation and the other routes.
	bad := []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"topic": "order.paid", "delivery_url": recv.URL}, "woocommerce_rest_shop_webhook_invalid_topic"},
		{map[string]any{"delivery_url": recv.URL}, "woocommerce_rest_shop_webhook_invalid_topic"},
		{map[string]any{"topic": "order.created", "delivery_url": "ftp://x"}, "woocommerce_rest_shop_webhook_invalid_delivery_url"},
		{map[string]any{"topic": "order.created", "delivery_url": recv.URL, "status": "on"}, "rest_invalid_param"},
	}
	for _, b := range bad {
		if a := admin(t, f, "POST", "/webhooks", nil, b.body); a.status != 400 || a.code() != b.code {
			t.Fatalf("%v: %d %s", b.body, a.status, a.raw)
		}
	}
	if a := admin(t, f, "GET", "/webhooks/1", nil, nil); a.status != 200 || a.body["secret"] != nil {
		t.Fatalf("get (view context): %d %s", a.status, a.raw)
	}
	if a := admin(t, f, "GET", "/webhooks", url.Values{"status": {"active"}}, nil); len(a.list) != 1 || a.header.Get("X-WP-Total") != "1" {
		t.Fatalf("list: %d %s", a.status, a.raw)
	}
	if a := admin(t, f, "PUT", "/webhooks/1", nil, map[string]any{"status": "disabled"}); a.status != 200 || a.body["status"] != "disabled" {
		t.Fatalf("put: %d %s", a.status, a.raw)
	}
	if a := admin(t, f, "DELETE", "/webhooks/1", nil, nil); a.status != 501 || a.code() != "woocommerce_rest_trash_not_supported" {
		t.Fatalf("delete without force: %d %s", a.status, a.raw)
	}
	if a := admin(t, f, "DELETE", "/webhooks/1", url.Values{"force": {"true"}}, nil); a.status != 200 {
		t.Fatalf("delete: %d %s", a.status, a.raw)
	}
	if a := admin(t, f, "DELETE", "/webhooks/1", url.Values{"force": {"true"}}, nil); a.status != 404 || a.code() != "woocommerce_rest_shop_webhook_invalid_id" {
		t.Fatalf("delete again: %d %s", a.status, a.raw)
	}
	if a := admin(t, f, "GET", "/webhooks/1", nil, nil); a.status != 400 || a.code() != "woocommerce_rest_shop_webhook_invalid_id" {
		t.Fatalf("get deleted: %d %s", a.status, a.raw)
	}
}

func createWebhook(t *testing.T, f *Fake, topic, deliveryURL, secret string) int64 {
	t.Helper()
	a := admin(t, f, "POST", "/webhooks", nil, map[string]any{"topic": topic, "delivery_url": deliveryURL, "secret": secret})
	if a.status != 201 {
		t.Fatalf("create webhook: %d %s", a.status, a.raw)
	}
	return int64(a.body["id"].(float64))
}

func TestDeliveriesSigned(t *testing.T) {
	t.Parallel()
	f := New(t, Config{})
	s := newSink(t, 200)
	id := createWebhook(t, f, "order.updated", s.srv.URL+"/hook", "top&amp;secret")
	createWebhook(t, f, "order.created", s.srv.URL+"/other", "x")

	order := f.AddOrder(map[string]any{"status": "processing", "billing": map[string]any{"email": "zoë@example.com"},
		"coupon_lines": []any{map[string]any{"code": "a/b", "discount": "5.00"}}})
	res, err := f.DeliverOrder("order.updated", order)
	if err != nil || len(res) != 1 || res[0].WebhookID != id || res[0].Status != 200 || res[0].Err != nil {
		t.Fatalf("DeliverOrder: %+v %v", res, err)
	}
	reqs, bodies := s.got()
	r, body := reqs[len(reqs)-1], bodies[len(bodies)-1]
	if !bytes.Contains(body, []byte(`"a\/b"`)) || !bytes.Contains(body, []byte(`zo\u00eb@example.com`)) {
		t.Fatalf("body not encoded as wp_json_encode: %s", body)
	}
	// The signature key is the secret after HTML-entity decoding.
	m := hmac.New(sha256.New, []byte("top&secret"))
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	h := r.Header
	if h.Get("X-WC-Webhook-Signature") != want || !woocommerce.VerifyWebhook(body, h.Get("X-WC-Webhook-Signature"), "top&amp;secret") {
		t.Fatalf("signature %q, want %q", h.Get("X-WC-Webhook-Signature"), want)
	}
	if h.Get("X-WC-Webhook-Topic") != "order.updated" || h.Get("X-WC-Webhook-Resource") != "order" || h.Get("X-WC-Webhook-Event") != "updated" ||
		h.Get("X-WC-Webhook-ID") != fmt.Sprint(id) || h.Get("X-WC-Webhook-Source") != f.URL()+"/" || len(h.Get("X-WC-Webhook-Delivery-ID")) != 32 ||
		h.Get("Content-Type") != "application/json" || !strings.HasPrefix(h.Get("User-Agent"), "WooCommerce/") || r.URL.Path != "/hook" {
		t.Fatalf("headers %v", h)
	}
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil || decoded["id"] != float64(order) {
		t.Fatalf("payload %s", body)
	}

	// Raw bodies go as they are; order.deleted carries only the id.
	if status, err := f.Deliver(id, []byte(`{"id":7}`)); status != 200 || err != nil {
		t.Fatalf("Deliver: %d %v", status, err)
	}
	del := createWebhook(t, f, "order.deleted", s.srv.URL, "d")
	if res, err := f.DeliverOrder("order.deleted", order); err != nil || len(res) != 1 || res[0].WebhookID != del {
		t.Fatalf("deleted: %+v %v", res, err)
	}
	_, bodies = s.got()
	if got := string(bodies[len(bodies)-1]); got != fmt.Sprintf(`{"id":%d}`, order) {
		t.Fatalf("deleted payload %s", got)
	}
	if n := len(f.Deliveries()); n != 3 {
		t.Fatalf("%d deliveries", n)
	}
	if _, err := f.DeliverOrder("order.updated", int64(4242)); err == nil {
		t.Fatal("unknown order delivered")
	}
}

func TestWebhookDisabledAfterFailures(t *testing.T) {
	t.Parallel()
	f := New(t, Config{TLS: true})
	s := newSink(t, 500)
	id := createWebhook(t, f, "order.created", s.srv.URL, "k")
	state := func() Webhook { return f.Webhooks()[0] }
	for i := 1; i <= 6; i++ {
		if status, err := f.Deliver(id, []byte(`{}`)); status != 500 || err != nil {
			t.Fatalf("delivery %d: %d %v", i, status, err)
		}
		if w := state(); w.Status != "active" || w.FailureCount != i {
			t.Fatalf("after %d failures: %+v", i, w)
		}
	}
	// The 7th failure in a row: the count (6) is above the limit (5), so the webhook is disabled.
	if status, _ := f.Deliver(id, []byte(`{}`)); status != 500 {
		t.Fatalf("7th: %d", status)
	}
	if w := state(); w.Status != "disabled" || w.FailureCount != 6 {
		t.Fatalf("after 7 failures: %+v", w)
	}
	if _, err := f.Deliver(id, []byte(`{}`)); !errors.Is(err, ErrNotDelivered) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("disabled webhook delivered: %v", err)
	}
	if res, _ := f.DeliverOrder("order.created", []byte(`{}`)); len(res) != 0 {
		t.Fatalf("DeliverOrder to a disabled webhook: %+v", res)
	}

	// Re-enabling over REST keeps the count; the next failure disables it again at once.
	if a := admin(t, f, "PUT", fmt.Sprintf("/webhooks/%d", id), nil, map[string]any{"status": "active"}); a.status != 200 {
		t.Fatalf("re-enable: %d %s", a.status, a.raw)
	}
	if w := state(); w.Status != "active" || w.FailureCount != 6 {
		t.Fatalf("re-enabled: %+v", w)
	}
	f.Deliver(id, []byte(`{}`))
	if w := state(); w.Status != "disabled" {
		t.Fatalf("failure after re-enabling: %+v", w)
	}
	// A success (up to 302) resets the count; 303 is a failure.
	_ = f.SetWebhookStatus(id, "active")
	s.setStatus(302)
	if status, _ := f.Deliver(id, []byte(`{}`)); status != 302 || state().FailureCount != 0 {
		t.Fatalf("302: %+v", state())
	}
	s.setStatus(303)
	f.Deliver(id, []byte(`{}`))
	if w := state(); w.FailureCount != 1 {
		t.Fatalf("303: %+v", w)
	}
	// No answer at all counts as a failure too.
	s.srv.Close()
	if status, err := f.Deliver(id, []byte(`{}`)); status != 0 || err == nil || state().FailureCount != 2 {
		t.Fatalf("unreachable: %d %v %+v", status, err, state())
	}

	_ = f.SetWebhookStatus(id, "paused")
	if _, err := f.Deliver(id, []byte(`{}`)); !errors.Is(err, ErrNotDelivered) || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("paused webhook: %v", err)
	}
}

func authorizeURL(f *Fake, params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	return f.URL() + "/wc-auth/v1/authorize?" + q.Encode()
}

func noRedirect(f *Fake) *http.Client {
	c := f.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	f := New(t, Config{TLS: true})
	cb := newSink(t, 200)
	params := func(kv ...string) map[string]string {
		p := map[string]string{"app_name": "Coupongate", "scope": "read_write", "user_id": "state.abc-123",
			"return_url": "https://app.example.com/connected?from=wc", "callback_url": cb.srv.URL + "/woocommerce/callback"}
		for i := 0; i < len(kv); i += 2 {
			p[kv[i]] = kv[i+1]
		}
		return p
	}
	resp, err := noRedirect(f).Get(authorizeURL(f, params()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://app.example.com/connected?from=wc&success=1&user_id=state.abc-123" {
		t.Fatalf("approve: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	reqs, bodies := cb.got()
	if len(reqs) != 1 || reqs[0].URL.Path != "/woocommerce/callback" || reqs[0].Header.Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Fatalf("callback %v", reqs)
	}
	var keys struct {
		KeyID          json.Number `json:"key_id"`
		UserID         string      `json:"user_id"`
		ConsumerKey    string      `json:"consumer_key"`
		ConsumerSecret string      `json:"consumer_secret"`
		KeyPermissions string      `json:"key_permissions"`
	}
	if err := json.Unmarshal(bodies[0], &keys); err != nil || keys.UserID != "state.abc-123" || keys.KeyPermissions != "read_write" ||
		!strings.HasPrefix(keys.ConsumerKey, "ck_") || len(keys.ConsumerKey) != 43 || !strings.HasPrefix(keys.ConsumerSecret, "cs_") {
		t.Fatalf("callback body %s: %v", bodies[0], err)
	}
	// The key works.
	if a := doCall(t, f, authBasic, keys.ConsumerKey, keys.ConsumerSecret, "GET", "/system_status", nil, nil); a.status != 200 {
		t.Fatalf("new key: %d %s", a.status, a.raw)
	}
	if k := f.Keys(); len(k) != 2 || k[1].ConsumerKey != keys.ConsumerKey || fmt.Sprint(k[1].ID) != keys.KeyID.String() ||
		!strings.HasPrefix(k[1].Description, "Coupongate - API (") {
		t.Fatalf("keys %+v", k)
	}

	// A callback answering anything but 200 loses the key.
	cb.setStatus(201)
	resp, err = noRedirect(f).Get(authorizeURL(f, params("scope", "read")))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(page), "Access denied") ||
		!strings.Contains(string(page), "unable to send the consumer data") {
		t.Fatalf("callback 201: %d %s", resp.StatusCode, page)
	}
	_, bodies = cb.got()
	var lost struct {
		ConsumerKey string `json:"consumer_key"`
	}
	_ = json.Unmarshal(bodies[1], &lost)
	if len(f.Keys()) != 2 {
		t.Fatalf("key kept after a failed callback: %+v", f.Keys())
	}
	if a := doCall(t, f, authBasic, lost.ConsumerKey, "x", "GET", "/coupons", nil, nil); a.status != 401 || a.code() != "woocommerce_rest_cannot_view" {
		t.Fatalf("lost key: %d %s", a.status, a.raw)
	}
	if az := f.Authorizations(); len(az) != 2 || az[1].CallbackStatus != 201 || az[1].KeyID != 0 || az[0].KeyID == 0 {
		t.Fatalf("authorizations %+v", az)
	}

	// Validation.
	bad := []struct {
		params map[string]string
		msg    string
	}{
		{params("scope", "admin"), "Invalid scope admin"},
		{params("user_id", ""), "Missing parameter user_id"},
		{params("callback_url", "http://gate.example.com/cb"), "The callback_url needs to be over SSL"},
		{params("return_url", "https://exa mple.com"), "is not a valid URL"},
	}
	for _, b := range bad {
		resp, err := noRedirect(f).Get(authorizeURL(f, b.params))
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(page), b.msg) {
			t.Fatalf("%v: %d %s", b.params, resp.StatusCode, page)
		}
	}
	if reqs, _ := cb.got(); len(reqs) != 2 {
		t.Fatalf("refused requests reached the callback: %d", len(reqs))
	}

	// Denied.
	f.DenyAuthorizations(true)
	resp, err = noRedirect(f).Get(authorizeURL(f, params()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || !strings.HasSuffix(resp.Header.Get("Location"), "&success=0&user_id=state.abc-123") || len(f.Keys()) != 2 {
		t.Fatalf("deny: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestOrders(t *testing.T) {
	t.Parallel()
	f := New(t, Config{TLS: true})
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		f.AddOrder(json.RawMessage(fmt.Sprintf(`{"status":%q,"total":"10.00","date_modified_gmt":%q}`,
			[]string{"pending", "processing", "completed", "on-hold", "trash"}[i], t0.Add(time.Duration(i)*time.Hour).Format("2006-01-02T15:04:05"))))
	}
	a := admin(t, f, "GET", "/orders", url.Values{"modified_after": {"2024-01-01T00:00:00"}, "dates_are_gmt": {"true"},
		"orderby": {"modified"}, "order": {"asc"}, "per_page": {"2"}}, nil)
	if a.status != 200 || len(a.list) != 2 || a.header.Get("X-WP-Total") != "3" || a.header.Get("X-WP-TotalPages") != "2" ||
		a.list[0]["status"] != "processing" || a.list[0]["total"] != "10.00" {
		t.Fatalf("orders: %d %v %s", a.status, a.header, a.raw)
	}
	if links := a.header.Values("Link"); len(links) != 1 || !strings.Contains(links[0], `rel="next"`) {
		t.Fatalf("Link %v", links)
	}
	a = admin(t, f, "GET", "/orders", url.Values{"status": {"pending,trash"}}, nil)
	if len(a.list) != 2 {
		t.Fatalf("status filter: %s", a.raw)
	}
	if a = admin(t, f, "GET", "/orders", url.Values{"modified_after": {"yesterday"}}, nil); a.status != 400 || a.code() != "rest_invalid_param" {
		t.Fatalf("bad date: %d %s", a.status, a.raw)
	}
	id := f.AddOrder(map[string]any{"id": 77, "status": "completed"})
	if a = admin(t, f, "GET", "/orders/77", nil, nil); id != 77 || a.status != 200 || a.body["id"] != 77.0 || a.body["date_modified_gmt"] == nil {
		t.Fatalf("order 77: %d %s", a.status, a.raw)
	}
}

func TestPHPJSON(t *testing.T) {
	t.Parallel()
	b, err := phpJSON(map[string]any{"url": "https://x.test/a", "name": "Zoë 😀", "html": "<b>&</b>"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"html":"<b>&<\/b>","name":"Zo\u00eb \ud83d\ude00","url":"https:\/\/x.test\/a"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back map[string]string
	if err := json.Unmarshal(b, &back); err != nil || back["name"] != "Zoë 😀" || back["url"] != "https://x.test/a" {
		t.Fatalf("round trip %v %v", back, err)
	}
}

// TestCouponMetaData: meta_data is stored and answered as WooCommerce does ({id, key, value},
// scalars as strings), updated by key or by id, and the client reads it back.
func TestCouponMetaData(t *testing.T) {
	t.Parallel()
	f := New(t, Config{TLS: true})
	a := admin(t, f, "POST", "/coupons", nil, map[string]any{"code": "meta-1", "meta_data": []any{
		map[string]any{"key": "_tag", "value": "mine"}, map[string]any{"key": "n", "value": 5}, map[string]any{"key": "obj", "value": map[string]any{"a": 1}}}})
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	id := int64(a.body["id"].(float64))
	meta, _ := a.body["meta_data"].([]any)
	if len(meta) != 3 {
		t.Fatalf("meta_data: %s", a.raw)
	}
	first := meta[0].(map[string]any)
	if first["key"] != "_tag" || first["value"] != "mine" || first["id"] == nil || meta[1].(map[string]any)["value"] != "5" {
		t.Fatalf("meta_data: %s", a.raw)
	}
	// By key: the value changes, the id stays; by id: that field changes.
	a = admin(t, f, "PUT", fmt.Sprintf("/coupons/%d", id), nil, map[string]any{"meta_data": []any{
		map[string]any{"key": "_tag", "value": "again"}, map[string]any{"id": meta[1].(map[string]any)["id"], "key": "n", "value": "6"}}})
	got, _ := a.body["meta_data"].([]any)
	if a.status != 200 || len(got) != 3 || got[0].(map[string]any)["value"] != "again" || got[0].(map[string]any)["id"] != first["id"] ||
		got[1].(map[string]any)["value"] != "6" {
		t.Fatalf("update: %d %s", a.status, a.raw)
	}

	api := woocommerce.Store{SiteURL: f.URL(), ConsumerKey: f.cfg.ConsumerKey, ConsumerSecret: f.cfg.ConsumerSecret, HTTP: f.Client()}
	res, err := api.BatchCoupons(context.Background(), woocommerce.CouponBatch{Create: []woocommerce.CouponInput{
		{Code: "META-2", MetaData: []woocommerce.Meta{{Key: "_coupongate_push", Value: "list:x"}}}}})
	if err != nil || len(res.Create) != 1 || res.Create[0].Err != nil {
		t.Fatalf("batch: %+v %v", res, err)
	}
	for _, tc := range []struct{ code, key, want string }{
		{"meta-2", "_coupongate_push", "list:x"}, {"meta-1", "_tag", "again"}, {"meta-1", "n", "6"}, {"meta-1", "obj", `{"a":1}`},
	} {
		c, ok, err := api.CouponByCode(context.Background(), tc.code)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", tc.code, ok, err)
		}
		if v, ok := c.Meta(tc.key); !ok || v != tc.want {
			t.Errorf("%s %s: %q %v, want %q", tc.code, tc.key, v, ok, tc.want)
		}
	}
	if _, ok := (woocommerce.Coupon{}).Meta("_tag"); ok {
		t.Error("a coupon without meta_data has a field")
	}
}
