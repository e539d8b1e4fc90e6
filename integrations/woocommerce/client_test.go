package woocommerce_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
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
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
)

// The vector below was computed outside Go (Python's hmac and urllib.parse.quote(safe='~')) from
// RFC 5849 §3.4: the value with a space, "+", "/" and "é" checks that parameters are encoded
// twice, and the port that a non-default port stays in the base URL.
const (
	vectorURL    = "http://Shop.Example.com:8080/wp-json/wc/v3/orders"
	vectorSecret = "cs_secret"
	vectorBase   = "GET&http%3A%2F%2Fshop.example.com%3A8080%2Fwp-json%2Fwc%2Fv3%2Forders&modified_after%3D2024-05-01T10%253A00%253A00%26oauth_consumer_key%3Dck_abc%26oauth_nonce%3Dnonce123%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1714557600%26page%3D2%26per_page%3D100%26search%3Da%2520b%252Bc%252F%25C3%25A9"
	vectorSig    = "ojMsuWz2kP1IKYmxeyfxBdxsJAdH7ZdQWUlrIyUrsEM="
)

var vectorTime = time.Unix(1714557600, 0)

func vectorQuery() url.Values {
	return url.Values{"modified_after": {"2024-05-01T10:00:00"}, "per_page": {"100"}, "page": {"2"}, "search": {"a b+c/é"}}
}

func TestOAuth1SignatureVector(t *testing.T) {
	t.Parallel()
	q, err := woocommerce.SignOAuth1("get", vectorURL, vectorQuery(), "ck_abc", vectorSecret, vectorTime, "nonce123")
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Get("oauth_signature"); got != vectorSig {
		t.Fatalf("signature %q, want %q", got, vectorSig)
	}
	if q.Get("oauth_signature_method") != "HMAC-SHA256" || q.Get("oauth_timestamp") != "1714557600" ||
		q.Get("oauth_consumer_key") != "ck_abc" || q.Get("oauth_nonce") != "nonce123" || q.Get("search") != "a b+c/é" {
		t.Fatalf("signed query %v", q)
	}
	params := url.Values{}
	for k, v := range q {
		if k != "oauth_signature" {
			params[k] = v
		}
	}
	base, err := woocommerce.OAuth1BaseString("GET", vectorURL+"?ignored=1", params)
	if err != nil || base != vectorBase {
		t.Fatalf("base string\n got %s (%v)\nwant %s", base, err, vectorBase)
	}
	// The default port is left out of the base URL.
	b80, _ := woocommerce.OAuth1BaseString("GET", "http://shop.example.com:80/x", nil)
	b443, _ := woocommerce.OAuth1BaseString("GET", "HTTPS://shop.example.com:443/x", nil)
	if b80 != "GET&http%3A%2F%2Fshop.example.com%2Fx&" || b443 != "GET&https%3A%2F%2Fshop.example.com%2Fx&" {
		t.Fatalf("default ports: %q %q", b80, b443)
	}
	// A random nonce when none is given.
	q1, _ := woocommerce.SignOAuth1("GET", vectorURL, nil, "ck_abc", vectorSecret, vectorTime, "")
	q2, _ := woocommerce.SignOAuth1("GET", vectorURL, nil, "ck_abc", vectorSecret, vectorTime, "")
	if q1.Get("oauth_nonce") == "" || q1.Get("oauth_nonce") == q2.Get("oauth_nonce") {
		t.Fatalf("nonces %q %q", q1.Get("oauth_nonce"), q2.Get("oauth_nonce"))
	}
}

func TestVerifyOAuth1(t *testing.T) {
	t.Parallel()
	signed, err := woocommerce.SignOAuth1("GET", vectorURL, vectorQuery(), "ck_abc", vectorSecret, vectorTime, "nonce123")
	if err != nil {
		t.Fatal(err)
	}
	with := func(kv ...string) url.Values {
		q := url.Values{}
		for k, v := range signed {
			q[k] = append([]string(nil), v...)
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q
	}
	// HMAC-SHA1 over the same base string (with the method swapped in), computed here.
	sha1Query := with("oauth_signature_method", "HMAC-SHA1")
	sha1Base := strings.Replace(vectorBase, "HMAC-SHA256", "HMAC-SHA1", 1)
	m := hmac.New(sha1.New, []byte(vectorSecret+"&"))
	m.Write([]byte(sha1Base))
	sha1Query.Set("oauth_signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))

	tests := []struct {
		name    string
		method  string
		url     string
		query   url.Values
		secret  string
		now     time.Time
		wantErr string // "" ok, else the WooCommerce message
	}{
		{"valid", "GET", vectorURL, signed, vectorSecret, vectorTime, ""},
		{"valid near the window's end", "GET", vectorURL, signed, vectorSecret, vectorTime.Add(14 * time.Minute), ""},
		{"valid HMAC-SHA1", "GET", vectorURL, sha1Query, vectorSecret, vectorTime, ""},
		{"unencoded plus read as space", "GET", vectorURL, with("oauth_signature", strings.ReplaceAll(vectorSig, "+", " ")), vectorSecret, vectorTime, ""},
		{"wrong secret", "GET", vectorURL, signed, "cs_other", vectorTime, "Invalid signature - provided signature does not match."},
		{"other method", "POST", vectorURL, signed, vectorSecret, vectorTime, "Invalid signature - provided signature does not match."},
		{"other path", "GET", "http://shop.example.com:8080/wp-json/wc/v3/coupons", signed, vectorSecret, vectorTime, "Invalid signature - provided signature does not match."},
		{"changed parameter", "GET", vectorURL, with("page", "3"), vectorSecret, vectorTime, "Invalid signature - provided signature does not match."},
		{"added parameter", "GET", vectorURL, with("status", "any"), vectorSecret, vectorTime, "Invalid signature - provided signature does not match."},
		{"stale", "GET", vectorURL, signed, vectorSecret, vectorTime.Add(16 * time.Minute), "Invalid timestamp."},
		{"from the future", "GET", vectorURL, signed, vectorSecret, vectorTime.Add(-16 * time.Minute), "Invalid timestamp."},
		{"plaintext method", "GET", vectorURL, with("oauth_signature_method", "PLAINTEXT"), vectorSecret, vectorTime, "Invalid signature - signature method is invalid."},
		{"missing nonce", "GET", vectorURL, with("oauth_nonce", ""), vectorSecret, vectorTime, "Missing OAuth parameter oauth_nonce"},
		{"missing two", "GET", vectorURL, with("oauth_nonce", "", "oauth_signature", ""), vectorSecret, vectorTime, "Missing OAuth parameters oauth_nonce, oauth_signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := woocommerce.VerifyOAuth1(tc.method, tc.url, tc.query, tc.secret, tc.now)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyOAuth1: %v", err)
				}
				return
			}
			var oe *woocommerce.OAuth1Error
			if !errors.As(err, &oe) || oe.Message != tc.wantErr {
				t.Fatalf("VerifyOAuth1: %v, want %q", err, tc.wantErr)
			}
		})
	}
	if err := woocommerce.VerifyOAuth1("GET", vectorURL, vectorQuery(), vectorSecret, vectorTime); !errors.Is(err, woocommerce.ErrNoOAuth1) {
		t.Fatalf("no OAuth parameters: %v", err)
	}
}

func storeFor(f *woofake.Fake) woocommerce.Store {
	return woocommerce.Store{SiteURL: f.URL() + "/", ConsumerKey: f.Config().ConsumerKey, ConsumerSecret: f.Config().ConsumerSecret, HTTP: f.Client()}
}

func apiError(t *testing.T, err error) *woocommerce.APIError {
	t.Helper()
	var e *woocommerce.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *APIError", err, err)
	}
	return e
}

func TestBasicAuthOverTLS(t *testing.T) {
	t.Parallel()
	f := woofake.New(t, woofake.Config{TLS: true})
	ctx := context.Background()
	s := storeFor(f)
	if !strings.HasPrefix(s.SiteURL, "https://") {
		t.Fatalf("site %s", s.SiteURL)
	}
	if err := s.SystemStatus(ctx); err != nil {
		t.Fatalf("SystemStatus: %v", err)
	}

	bad := s
	bad.ConsumerSecret = "cs_wrong_secret_value"
	err := bad.SystemStatus(ctx)
	e := apiError(t, err)
	if e.Status != 401 || e.Code != "woocommerce_rest_authentication_error" || e.Message != "Consumer secret is invalid." || e.Retryable() {
		t.Fatalf("wrong secret: %+v", e)
	}
	if strings.Contains(err.Error(), bad.ConsumerSecret) {
		t.Fatalf("error holds the secret: %v", err)
	}

	unknown := s
	unknown.ConsumerKey = "ck_unknown"
	e = apiError(t, unknown.SystemStatus(ctx))
	if e.Status != 401 || e.Code != "woocommerce_rest_cannot_view" {
		t.Fatalf("unknown key: %+v", e)
	}
}

func TestOAuth1OverPlainHTTP(t *testing.T) {
	t.Parallel()
	f := woofake.New(t, woofake.Config{})
	ctx := context.Background()
	s := storeFor(f)
	if !strings.HasPrefix(s.SiteURL, "http://") {
		t.Fatalf("site %s", s.SiteURL)
	}
	if err := s.SystemStatus(ctx); err != nil {
		t.Fatalf("SystemStatus: %v", err)
	}
	// Query parameters are signed too.
	if _, _, err := s.Orders(ctx, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), 1, 10); err != nil {
		t.Fatalf("Orders: %v", err)
	}
	if _, err := s.BatchCoupons(ctx, woocommerce.CouponBatch{Create: []woocommerce.CouponInput{{Code: "PLAIN1", Amount: "5"}}}); err != nil {
		t.Fatalf("BatchCoupons: %v", err)
	}

	bad := s
	bad.ConsumerSecret = "cs_wrong_secret_value"
	err := bad.SystemStatus(ctx)
	e := apiError(t, err)
	if e.Status != 401 || e.Code != "woocommerce_rest_authentication_error" || e.Message != "Invalid signature - provided signature does not match." {
		t.Fatalf("wrong secret: %+v", e)
	}
	if strings.Contains(err.Error(), bad.ConsumerSecret) {
		t.Fatalf("error holds the secret: %v", err)
	}

	// A clock far off fails the store's timestamp window.
	skewed := s
	skewed.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	e = apiError(t, skewed.SystemStatus(ctx))
	if e.Status != 401 || e.Message != "Invalid timestamp." {
		t.Fatalf("skewed clock: %+v", e)
	}

	f.RevokeKey(s.ConsumerKey)
	e = apiError(t, s.SystemStatus(ctx))
	if e.Status != 401 || e.Message != "Consumer key is invalid." {
		t.Fatalf("revoked key: %+v", e)
	}
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	f := woofake.New(t, woofake.Config{TLS: true})
	ctx := context.Background()
	s := storeFor(f)

	_, err := s.GetWebhook(ctx, 999)
	e := apiError(t, err)
	if e.Status != 400 || e.Code != "woocommerce_rest_shop_webhook_invalid_id" || e.Message != "ID is invalid." || !woocommerce.IsNotFound(err) || e.Retryable() {
		t.Fatalf("unknown webhook: %+v", e)
	}
	if got := err.Error(); got != "woocommerce: HTTP 400 woocommerce_rest_shop_webhook_invalid_id: ID is invalid." {
		t.Fatalf("Error() %q", got)
	}

	f.FailNext(1, http.StatusTooManyRequests, "7")
	e = apiError(t, s.SystemStatus(ctx))
	if e.Status != 429 || e.Code != "rate_limit_exceeded" || e.RetryAfter() != 7*time.Second || !e.Retryable() {
		t.Fatalf("429: %+v", e)
	}
	if err := s.SystemStatus(ctx); err != nil {
		t.Fatalf("after the 429: %v", err)
	}

	f.FailNext(1, http.StatusInternalServerError, "")
	e = apiError(t, s.SystemStatus(ctx))
	if e.Status != 500 || e.Code != "internal_server_error" || e.RetryAfter() != 0 || !e.Retryable() {
		t.Fatalf("500: %+v", e)
	}

	f.FailNext(1, http.StatusBadGateway, "")
	e = apiError(t, s.SystemStatus(ctx))
	if e.Status != 502 || e.Code != "" || !strings.Contains(e.Message, "502 Bad Gateway") || e.RetryAfter() != 0 || !e.Retryable() {
		t.Fatalf("502: %+v", e)
	}

	f.FailNext(1, http.StatusServiceUnavailable, "2")
	e = apiError(t, s.SystemStatus(ctx))
	if e.Status != 503 || e.RetryAfter() != 2*time.Second || !e.Retryable() {
		t.Fatalf("503: %+v", e)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	site := srv.URL
	srv.Close()
	s := woocommerce.Store{SiteURL: site, ConsumerKey: "ck_x", ConsumerSecret: "cs_transport_secret"}
	err := s.SystemStatus(context.Background())
	e := apiError(t, err)
	if e.Status != 0 || e.Err == nil || !e.Retryable() || e.RetryAfter() != 0 {
		t.Fatalf("network error: %+v", e)
	}
	if strings.Contains(err.Error(), "oauth_signature") || strings.Contains(err.Error(), "cs_transport_secret") {
		t.Fatalf("error leaks the signed URL or secret: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.SystemStatus(ctx)
	var ae *woocommerce.APIError
	if errors.As(err, &ae) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}

	if err := (woocommerce.Store{SiteURL: "ftp://shop", ConsumerKey: "a", ConsumerSecret: "b"}).SystemStatus(context.Background()); err == nil {
		t.Fatal("ftp site accepted")
	}
}

// TestOddAnswers covers stores that redirect, print PHP notices before the JSON, lack
// system_status, or echo the secret in an error.
func TestOddAnswers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var paths []string
	const secret = "cs_odd_secret_1234"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != "ck_odd" || p != secret {
			w.WriteHeader(401)
			return
		}
		switch r.URL.Path {
		case "/moved/wp-json/wc/v3/system_status":
			http.Redirect(w, r, "https://elsewhere.example.com/wp-json/wc/v3/system_status?x=1", http.StatusMovedPermanently)
		case "/wp-json/wc/v3/system_status":
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"code":"rest_no_route","message":"No route was found matching the URL and request method.","data":{"status":404}}`)
		case "/wp-json/wc/v3/coupons":
			if r.URL.Query().Get("code") == "leak" {
				w.WriteHeader(500)
				_, _ = io.WriteString(w, `{"code":"db_error","message":"query failed near '`+secret+`'","data":{"status":500}}`)
				return
			}
			_, _ = io.WriteString(w, "<br />\n<b>Deprecated</b>:  Creation of dynamic property in <b>/var/www/plugin.php</b><br />\n"+
				`[{"id":"17","code":"SUMMER","amount":10,"discount_type":"percent","usage_limit":"3","usage_limit_per_user":null,"usage_count":"1","individual_use":"yes","date_expires_gmt":"2030-01-02T03:04:05","used_by":[5,"a@b.c"]}]`)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	s := woocommerce.Store{SiteURL: srv.URL, ConsumerKey: "ck_odd", ConsumerSecret: secret, HTTP: srv.Client()}

	moved := s
	moved.SiteURL = srv.URL + "/moved/"
	e := apiError(t, moved.SystemStatus(ctx))
	if e.Status != 301 || !strings.Contains(e.Message, "https://elsewhere.example.com/wp-json/wc/v3/system_status") || strings.Contains(e.Message, "x=1") {
		t.Fatalf("redirect: %+v", e)
	}

	// system_status missing: the one-coupon read decides.
	if err := s.SystemStatus(ctx); err != nil {
		t.Fatalf("SystemStatus fallback: %v", err)
	}
	mu.Lock()
	last := paths[len(paths)-1]
	mu.Unlock()
	if last != "GET /wp-json/wc/v3/coupons?per_page=1" {
		t.Fatalf("fallback request %q", last)
	}

	c, ok, err := s.CouponByCode(ctx, "summer")
	if err != nil || !ok {
		t.Fatalf("CouponByCode: %v %v", ok, err)
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if c.ID != 17 || c.Amount != "10" || c.UsageLimit != 3 || c.UsageLimitPerUser != 0 || c.UsageCount != 1 || !c.IndividualUse ||
		c.DateExpires == nil || !c.DateExpires.Equal(exp) || fmt.Sprint(c.UsedBy) != "[5 a@b.c]" {
		t.Fatalf("lenient coupon %+v", c)
	}

	_, _, err = s.CouponByCode(ctx, "leak")
	e = apiError(t, err)
	if strings.Contains(err.Error(), secret) || !strings.Contains(e.Message, "[redacted]") {
		t.Fatalf("secret echoed: %v", err)
	}
}

func TestWebhooks(t *testing.T) {
	t.Parallel()
	f := woofake.New(t, woofake.Config{TLS: true})
	ctx := context.Background()
	s := storeFor(f)
	var pings sync.WaitGroup
	pings.Add(1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "webhook_id=1" {
			pings.Done()
		}
	}))
	defer sink.Close()

	w, err := s.CreateWebhook(ctx, woocommerce.WebhookInput{Name: "Coupongate order.updated", Topic: "order.updated",
		DeliveryURL: sink.URL + "/hook", Secret: "s3cret", Status: "active"})
	if err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	pings.Wait()
	if w.ID != 1 || w.Name != "Coupongate order.updated" || w.Topic != "order.updated" || w.Status != "active" ||
		w.DeliveryURL != sink.URL+"/hook" || w.Secret != "s3cret" {
		t.Fatalf("created %+v", w)
	}
	generated, err := s.CreateWebhook(ctx, woocommerce.WebhookInput{Topic: "order.created", DeliveryURL: sink.URL})
	if err != nil || len(generated.Secret) != 50 || !strings.HasPrefix(generated.Name, "Webhook created on ") {
		t.Fatalf("generated secret: %+v %v", generated, err)
	}

	_, err = s.CreateWebhook(ctx, woocommerce.WebhookInput{Topic: "order.paid", DeliveryURL: sink.URL})
	if e := apiError(t, err); e.Status != 400 || e.Code != "woocommerce_rest_shop_webhook_invalid_topic" {
		t.Fatalf("bad topic: %+v", e)
	}

	got, err := s.GetWebhook(ctx, w.ID)
	if err != nil || got.Status != "active" || got.Secret != "" || got.Topic != "order.updated" {
		t.Fatalf("GetWebhook: %+v %v", got, err)
	}
	paused, err := s.SetWebhookStatus(ctx, w.ID, "paused")
	if err != nil || paused.Status != "paused" || paused.Secret != "s3cret" {
		t.Fatalf("SetWebhookStatus: %+v %v", paused, err)
	}
	if _, err := s.SetWebhookStatus(ctx, w.ID, "sleeping"); apiError(t, err).Code != "rest_invalid_param" {
		t.Fatalf("bad status: %v", err)
	}
	if err := s.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	if err := s.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatalf("DeleteWebhook of a deleted webhook: %v", err)
	}
	if _, err := s.GetWebhook(ctx, w.ID); !woocommerce.IsNotFound(err) {
		t.Fatalf("GetWebhook after delete: %v", err)
	}
	if n := len(f.Webhooks()); n != 1 {
		t.Fatalf("%d webhooks left", n)
	}
}

func TestBatchCoupons(t *testing.T) {
	t.Parallel()
	f := woofake.New(t, woofake.Config{TLS: true})
	ctx := context.Background()
	s := storeFor(f)
	existing := f.AddCoupon(woofake.Coupon{Code: "TAKEN", Amount: "1"})
	exp := time.Date(2031, 6, 30, 23, 59, 59, 0, time.FixedZone("CEST", 2*3600))

	res, err := s.BatchCoupons(ctx, woocommerce.CouponBatch{
		Create: []woocommerce.CouponInput{
			{Code: "WELCOME-A1", DiscountType: "percent", Amount: "15", UsageLimit: 1, UsageLimitPerUser: 1, IndividualUse: true, DateExpires: &exp},
			{Code: "taken", Amount: "5"},
			{Code: "Welcome-a1", Amount: "5"}, // same code as the first, other case
			{Code: "  ", Amount: "5"},
			{Code: "FIXED-B2", DiscountType: "fixed_cart", Amount: "12.5"},
		},
		Delete: []int64{existing, 424242},
	})
	if err != nil {
		t.Fatalf("BatchCoupons: %v", err)
	}
	if len(res.Create) != 5 || len(res.Delete) != 2 {
		t.Fatalf("results %+v", res)
	}
	if r := res.Create[0]; r.Err != nil || r.ID == 0 || r.Code != "welcome-a1" {
		t.Fatalf("create 0: %+v", r)
	}
	for _, i := range []int{1, 2} {
		r := res.Create[i]
		if r.Err == nil || r.ID != 0 || r.Err.Status != 400 || r.Err.Code != "woocommerce_rest_coupon_code_already_exists" ||
			r.Err.Message != "The coupon code already exists" {
			t.Fatalf("create %d: %+v %+v", i, r, r.Err)
		}
	}
	if r := res.Create[2]; r.Code != "Welcome-a1" {
		t.Fatalf("a failed item keeps the code asked for: %+v", r)
	}
	if r := res.Create[3]; r.Err == nil || r.Err.Code != "woocommerce_rest_empty_coupon_code" {
		t.Fatalf("create 3: %+v", r)
	}
	if r := res.Create[4]; r.Err != nil || r.Code != "fixed-b2" {
		t.Fatalf("create 4: %+v", r)
	}
	if r := res.Delete[0]; r.Err != nil || r.ID != existing || r.Code != "taken" {
		t.Fatalf("delete 0: %+v", r)
	}
	if r := res.Delete[1]; r.Err == nil || r.ID != 424242 || r.Err.Status != 404 || r.Err.Code != "woocommerce_rest_shop_coupon_invalid_id" {
		t.Fatalf("delete 1: %+v", r)
	}

	coupons := f.Coupons()
	if len(coupons) != 2 {
		t.Fatalf("store coupons %+v", coupons)
	}
	c := coupons[0]
	if c.Code != "welcome-a1" || c.DiscountType != "percent" || c.Amount != "15.00" || c.UsageLimit != 1 || c.UsageLimitPerUser != 1 ||
		!c.IndividualUse || c.DateExpires == nil || !c.DateExpires.Equal(exp) {
		t.Fatalf("stored coupon %+v", c)
	}

	got, ok, err := s.CouponByCode(ctx, "WELCOME-a1")
	if err != nil || !ok || got.ID != c.ID || got.Amount != "15.00" || got.UsageLimit != 1 || got.DateExpires == nil || !got.DateExpires.Equal(exp) {
		t.Fatalf("CouponByCode: %+v %v %v", got, ok, err)
	}
	if _, ok, err := s.CouponByCode(ctx, "taken"); ok || err != nil {
		t.Fatalf("deleted coupon found: %v %v", ok, err)
	}

	// Too many items: refused before any request.
	before := f.Requests()
	var big woocommerce.CouponBatch
	for i := range 100 {
		big.Create = append(big.Create, woocommerce.CouponInput{Code: fmt.Sprintf("BIG%03d", i), Amount: "1"})
	}
	big.Delete = []int64{1}
	if _, err := s.BatchCoupons(ctx, big); !errors.Is(err, woocommerce.ErrBatchTooLarge) {
		t.Fatalf("101 items: %v", err)
	}
	if f.Requests() != before {
		t.Fatal("an oversized batch was sent")
	}
	if res, err := s.BatchCoupons(ctx, woocommerce.CouponBatch{}); err != nil || len(res.Create) != 0 || f.Requests() != before {
		t.Fatalf("empty batch: %+v %v", res, err)
	}
	// The store's own limit (a filter can lower it) answers 413.
	small := woofake.New(t, woofake.Config{TLS: true, BatchLimit: 2})
	_, err = storeFor(small).BatchCoupons(ctx, woocommerce.CouponBatch{Create: big.Create[:3]})
	if e := apiError(t, err); e.Status != 413 || e.Code != "woocommerce_rest_request_entity_too_large" {
		t.Fatalf("413: %+v", e)
	}
}

func TestOrdersPagination(t *testing.T) {
	t.Parallel()
	f := woofake.New(t, woofake.Config{})
	ctx := context.Background()
	s := storeFor(f)
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	// 25 orders modified a minute apart, added newest first.
	for i := 24; i >= 0; i-- {
		f.AddOrder(map[string]any{"id": 1000 + i, "status": "processing",
			"date_modified_gmt": base.Add(time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05"),
			"coupon_lines":      []any{map[string]any{"id": 1, "code": "welcome-a1", "discount": "10.00"}}})
	}
	f.AddOrder(map[string]any{"id": 999, "status": "completed", "date_modified_gmt": "2024-04-01T00:00:00"})

	var ids []int64
	since := base.Add(-time.Second)
	for page := 1; ; page++ {
		orders, pages, err := s.Orders(ctx, since, page, 10)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if pages != 3 {
			t.Fatalf("page %d: %d pages", page, pages)
		}
		for _, raw := range orders {
			var o struct {
				ID          int64  `json:"id"`
				DateModGMT  string `json:"date_modified_gmt"`
				CouponLines []struct {
					Code string `json:"code"`
				} `json:"coupon_lines"`
			}
			if err := json.Unmarshal(raw, &o); err != nil || len(o.CouponLines) != 1 {
				t.Fatalf("order %s: %v", raw, err)
			}
			ids = append(ids, o.ID)
		}
		if page >= pages {
			break
		}
	}
	if len(ids) != 25 || ids[0] != 1000 || ids[24] != 1024 {
		t.Fatalf("ids %v", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("not oldest modification first: %v", ids)
		}
	}
	// modified_after is strict.
	orders, pages, err := s.Orders(ctx, base.Add(24*time.Minute), 1, 100)
	if err != nil || len(orders) != 0 || pages != 0 {
		t.Fatalf("after the last: %d orders, %d pages, %v", len(orders), pages, err)
	}
	// No date: everything.
	orders, pages, err = s.Orders(ctx, time.Time{}, 1, 500)
	if err != nil || len(orders) != 26 || pages != 1 {
		t.Fatalf("all: %d orders, %d pages, %v", len(orders), pages, err)
	}
}
