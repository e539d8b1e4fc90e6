// Package woofake is an in-process fake WooCommerce store for tests. It serves, at URL(), what a
// WordPress site with WooCommerce serves:
//
//   - the wc/v3 REST API under /wp-json/wc/v3, with WooCommerce's authentication rules (over TLS:
//     HTTP Basic or consumer_key/consumer_secret query parameters, then OAuth 1.0a; over plain
//     HTTP: only OAuth 1.0a), key permissions (read, write, read_write) and error bodies
//     ({code, message, data:{status}}). Routes: GET /system_status; /webhooks (GET, POST) and
//     /webhooks/{id} (GET, PUT, DELETE with force=true); /coupons (GET with code=, POST),
//     /coupons/batch and /coupons/{id} (GET, PUT, DELETE); /orders (GET with modified_after and
//     the other date filters) and /orders/{id}. Collections are paginated with X-WP-Total,
//     X-WP-TotalPages and Link headers.
//   - the app authorization endpoint /wc-auth/v1/authorize, as if the merchant had logged in and
//     approved: it creates a key, posts it to callback_url, and redirects to return_url.
//
// Creating a webhook pings its delivery URL first, as WooCommerce does; Deliver and DeliverOrder
// send signed deliveries and disable a webhook after too many failures in a row. FailNext makes
// REST requests answer 429 or 5xx; SetRateLimit makes the store answer 429 with Retry-After past
// a number of requests in a window, as the host in front of a WordPress site does. Coupons,
// Webhooks, Keys, Deliveries, Pings, Authorizations, Requests and Throttled let a test look at the
// store.
//
// Where WooCommerce would refuse what a test needs, the fake says so in its documentation: it
// delivers to loopback addresses (WordPress's wp_safe_remote_* refuses them) and accepts an
// http:// callback_url on a loopback host.
package woofake

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/coupongate/coupongate/integrations/woocommerce"
)

// Default credentials of the key the fake starts with (read_write).
const (
	DefaultConsumerKey    = "ck_test0d3a4e8f2b6c1a9e7d5f3b1c8a6e4d2f0b9c7a5"
	DefaultConsumerSecret = "cs_test9b1f7d3e5a2c8e6b4d0f2a7c9e1b3d5f7a8c6e4"
)

// Versions the fake reports (system status, User-Agent).
const (
	WCVersion = "9.8.5"
	WPVersion = "6.8.1"
)

// Config sets the fake's behaviour; zero fields take the defaults given.
type Config struct {
	// ConsumerKey and ConsumerSecret are the read_write key the store starts with (defaults
	// DefaultConsumerKey and DefaultConsumerSecret).
	ConsumerKey    string
	ConsumerSecret string
	// TLS serves over HTTPS (httptest.NewTLSServer; use Client, which trusts the certificate).
	// Without it the store is plain HTTP and, like WooCommerce, takes only OAuth 1.0a.
	TLS bool
	// BatchLimit is the most items a batch request takes (default 100).
	BatchLimit int
	// PerPageMax is the largest per_page accepted (default 100).
	PerPageMax int
	// MaxFailures is the woocommerce_max_webhook_delivery_failures filter (default 5): a failed
	// delivery when the failure count is already above it disables the webhook.
	MaxFailures int
	// Now is the store's clock (default time.Now): dates, OAuth timestamps, rate-limit windows.
	Now func() time.Time
	// RateLimit, when set, limits REST requests (see SetRateLimit).
	RateLimit RateLimit
	// Outbound is the client for pings, deliveries and authorization callbacks (default: a plain
	// client). Give it the receiver's httptest client when that receiver serves TLS. The fake
	// sets WooCommerce's timeouts (5 s for pings, 60 s otherwise) when it has none, and never
	// follows redirects of deliveries.
	Outbound *http.Client
}

func (c *Config) defaults() {
	if c.ConsumerKey == "" {
		c.ConsumerKey = DefaultConsumerKey
	}
	if c.ConsumerSecret == "" {
		c.ConsumerSecret = DefaultConsumerSecret
	}
	if c.BatchLimit <= 0 {
		c.BatchLimit = 100
	}
	if c.PerPageMax <= 0 {
		c.PerPageMax = 100
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Fake is a running fake store. Close it when done.
type Fake struct {
	cfg Config
	srv *httptest.Server

	mu            sync.Mutex
	keys          map[string]*keyRecord // consumer key → key
	nextKeyID     int64
	webhooks      map[int64]*webhookRecord
	nextWebhookID int64
	coupons       map[int64]*couponRecord
	// couponsByCode indexes coupon ids by lower-cased code (entries may be stale: lookups check
	// the coupon), so a store with 100,000 coupons finds a code without a scan.
	couponsByCode  map[string][]int64
	orders         map[int64]*orderRecord
	nextPostID     int64
	nextMetaID     int64
	failures       []failure
	requests       int
	rateLimit      RateLimit
	window         time.Time // when the rate limit's current window began
	inWindow       int       // requests counted in it
	throttled      []int     // 429s the rate limit answered, one entry per window that answered any
	windowBusy     bool      // the current window has answered a 429 (its entry is the last)
	deliveries     []Delivery
	pings          []Ping
	authorizations []Authorization
	deny           bool
}

type failure struct {
	status     int
	retryAfter string
}

type keyRecord struct {
	id          int64
	key         string
	secret      string
	permissions string
	description string
	nonces      map[string]int64 // used OAuth nonce → its timestamp
}

// Key is an API key of the store.
type Key struct {
	ID             int64
	ConsumerKey    string
	ConsumerSecret string
	Permissions    string // read, write or read_write
	Description    string
}

// New starts a fake and closes it when the test ends.
func New(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}, cfg Config) *Fake {
	t.Helper()
	f, err := Start(cfg)
	if err != nil {
		t.Fatalf("woofake: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

// Start starts a fake outside a test.
func Start(cfg Config) (*Fake, error) {
	cfg.defaults()
	f := &Fake{
		cfg:           cfg,
		keys:          make(map[string]*keyRecord),
		webhooks:      make(map[int64]*webhookRecord),
		coupons:       make(map[int64]*couponRecord),
		couponsByCode: make(map[string][]int64),
		orders:        make(map[int64]*orderRecord),
		nextKeyID:     1,
		nextWebhookID: 1,
		nextPostID:    100,
	}
	f.addKeyLocked(cfg.ConsumerKey, cfg.ConsumerSecret, "read_write", "Test key")
	f.rateLimit = cfg.RateLimit
	if cfg.TLS {
		f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serveHTTP))
	} else {
		f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	}
	return f, nil
}

// Close stops the server.
func (f *Fake) Close() { f.srv.Close() }

// URL is the site URL (https://127.0.0.1:PORT with TLS, else http://…), without a trailing
// slash.
func (f *Fake) URL() string { return f.srv.URL }

// Client returns an HTTP client for the server (it trusts the TLS certificate).
func (f *Fake) Client() *http.Client { return f.srv.Client() }

// Config returns the effective configuration.
func (f *Fake) Config() Config { return f.cfg }

// Requests is how many requests reached the REST API (under /wp-json/).
func (f *Fake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// FailNext makes the next n REST requests answer status (429 or a 5xx) before anything else,
// with the given Retry-After header ("" for none). 429 and 500 answer a WooCommerce-shaped JSON
// body; other statuses answer an HTML page, as a proxy in front of the site would.
func (f *Fake) FailNext(n, status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures = append(f.failures, failure{status: status, retryAfter: retryAfter})
	}
}

// RateLimit is a host's limit on requests: at most Requests in each Window (fixed windows on the
// wall clock, the first starting with the first request). A request past it answers 429 with the
// JSON error body and a Retry-After of the whole seconds left in the window, before anything else
// (as a host's rate limiting answers before WordPress runs); it is counted in Requests. The zero
// value sets no limit.
type RateLimit struct {
	Requests int
	Window   time.Duration
}

// SetRateLimit sets (or, with the zero RateLimit, lifts) the limit from the next request on.
func (f *Fake) SetRateLimit(l RateLimit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rateLimit, f.window, f.inWindow, f.windowBusy = l, time.Time{}, 0, false
}

// Throttled is how many requests the rate limit answered 429 in each window that answered any,
// oldest first: a client that waits out Retry-After gets at most one 429 per request it had in
// flight when its first came.
func (f *Fake) Throttled() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.throttled...)
}

// rateLimitedLocked counts a request against the rate limit and returns the 429 to answer when it
// is past it.
func (f *Fake) rateLimitedLocked() *failure {
	l := f.rateLimit
	if l.Requests <= 0 || l.Window <= 0 {
		return nil
	}
	now := f.cfg.Now()
	if f.window.IsZero() || now.Sub(f.window) >= l.Window {
		f.window, f.inWindow, f.windowBusy = now, 0, false
	}
	f.inWindow++
	if f.inWindow <= l.Requests {
		return nil
	}
	if !f.windowBusy {
		f.throttled = append(f.throttled, 0)
		f.windowBusy = true
	}
	f.throttled[len(f.throttled)-1]++
	left := f.window.Add(l.Window).Sub(now)
	return &failure{status: http.StatusTooManyRequests, retryAfter: strconv.FormatInt(int64(max(1, (left+time.Second-1)/time.Second)), 10)}
}

// AddKey adds an API key with permissions read, write or read_write and returns its key_id.
// Adding an existing consumer key replaces it.
func (f *Fake) AddKey(consumerKey, consumerSecret, permissions string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addKeyLocked(consumerKey, consumerSecret, permissions, "Added by test").id
}

func (f *Fake) addKeyLocked(consumerKey, consumerSecret, permissions, description string) *keyRecord {
	k := &keyRecord{id: f.nextKeyID, key: consumerKey, secret: consumerSecret, permissions: permissions,
		description: description, nonces: make(map[string]int64)}
	f.nextKeyID++
	f.keys[consumerKey] = k
	return k
}

// RevokeKey deletes an API key, as revoking it in WooCommerce → Settings → Advanced → REST API
// does.
func (f *Fake) RevokeKey(consumerKey string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, consumerKey)
}

// Keys lists the store's API keys by key_id.
func (f *Fake) Keys() []Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Key, 0, len(f.keys))
	for _, k := range f.keys {
		out = append(out, Key{ID: k.id, ConsumerKey: k.key, ConsumerSecret: k.secret, Permissions: k.permissions, Description: k.description})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *Fake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/wc-auth/v1/authorize" || r.URL.Path == "/wc-auth/v1/authorize/":
		f.serveAuthorize(w, r)
	case strings.HasPrefix(r.URL.Path, "/wp-json/"):
		f.serveREST(w, r)
	default:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<!doctype html><title>Page not found</title><h1>Page not found</h1>")
	}
}

// restError is a WordPress REST error: {code, message, data:{status, …}}.
type restError struct {
	status  int
	code    string
	message string
	data    map[string]any
}

func (e *restError) body() map[string]any {
	data := map[string]any{"status": e.status}
	for k, v := range e.data {
		data[k] = v
	}
	return map[string]any{"code": e.code, "message": e.message, "data": data}
}

func errorf(status int, code, format string, args ...any) *restError {
	return &restError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// invalidParams is WordPress's rest_invalid_param: every failing argument with its message.
func invalidParams(params map[string]string) *restError {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	m := make(map[string]any, len(params))
	for k, v := range params {
		m[k] = v
	}
	return &restError{status: http.StatusBadRequest, code: "rest_invalid_param",
		message: "Invalid parameter(s): " + strings.Join(names, ", "), data: map[string]any{"params": m}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := phpJSON(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *restError) { writeJSON(w, e.status, e.body()) }

// call is one REST request being served.
type call struct {
	r      *http.Request
	path   string         // after /wp-json/wc/v3
	query  url.Values     // the query string
	form   url.Values     // a form body's fields ($_POST)
	params map[string]any // query, then form or JSON body on top (as WordPress merges them)
	key    *keyRecord
}

func (c *call) str(name string) (string, bool) {
	v, ok := c.params[name]
	if !ok || v == nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		if t {
			return "1", true
		}
		return "", true
	}
	return fmt.Sprint(v), true
}

// boolParam reads a boolean the way rest_sanitize_boolean does.
func (c *call) boolParam(name string) bool {
	v, ok := c.params[name]
	if !ok {
		return false
	}
	return truthy(v)
}

func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case json.Number:
		f, _ := t.Float64()
		return f != 0
	case string:
		s := strings.ToLower(strings.TrimSpace(t))
		return s != "" && s != "false" && s != "0" && s != "no"
	}
	return v != nil
}

func (f *Fake) serveREST(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	var fl *failure
	if len(f.failures) > 0 {
		fl = &f.failures[0]
		f.failures = f.failures[1:]
	} else {
		fl = f.rateLimitedLocked()
	}
	f.mu.Unlock()
	if fl != nil {
		writeFailure(w, *fl)
		return
	}

	const prefix = "/wp-json/wc/v3"
	path, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || (path != "" && !strings.HasPrefix(path, "/")) {
		writeError(w, errorf(http.StatusNotFound, "rest_no_route", "No route was found matching the URL and request method."))
		return
	}
	c := &call{r: r, path: strings.TrimRight(path, "/"), query: r.URL.Query()}
	if err := c.readParams(); err != nil {
		writeError(w, err)
		return
	}
	// OAuth signs $_GET and $_POST together: the query and a form body's fields.
	oauthParams := url.Values{}
	for k, vs := range c.query {
		oauthParams[k] = vs
	}
	for k, vs := range c.form {
		oauthParams[k] = append(oauthParams[k], vs...)
	}
	key, authErr := f.authenticate(r, c.query, oauthParams)
	if authErr != nil {
		writeError(w, authErr)
		return
	}
	c.key = key
	handler, perm := f.route(r.Method, c.path)
	if handler == nil {
		writeError(w, errorf(http.StatusNotFound, "rest_no_route", "No route was found matching the URL and request method."))
		return
	}
	if key == nil {
		writeError(w, perm)
		return
	}
	handler(w, c)
}

func writeFailure(w http.ResponseWriter, fl failure) {
	if fl.retryAfter != "" {
		w.Header().Set("Retry-After", fl.retryAfter)
	}
	switch fl.status {
	case http.StatusTooManyRequests:
		writeError(w, errorf(fl.status, "rate_limit_exceeded", "Too many requests. Please wait and try again."))
	case http.StatusInternalServerError:
		// What WordPress's fatal error handler answers a REST request.
		writeJSON(w, fl.status, map[string]any{"code": "internal_server_error",
			"message": "<p>There has been a critical error on this website.</p><p><a href=\"https://wordpress.org/documentation/article/faq-troubleshooting/\">Learn more about troubleshooting WordPress.</a></p>",
			"data":    map[string]any{"status": 500}, "additional_errors": []any{}})
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fl.status)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center><hr><center>nginx</center></body></html>\n",
			fl.status, http.StatusText(fl.status), fl.status, http.StatusText(fl.status))
	}
}

// readParams merges the query and the body: a JSON body when the Content-Type says JSON, else a
// form body.
func (c *call) readParams() *restError {
	c.params = make(map[string]any)
	for k, vs := range c.query {
		if len(vs) > 0 {
			c.params[k] = vs[len(vs)-1] // PHP's $_GET keeps the last
		}
	}
	if c.r.Body == nil {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(c.r.Body, 16<<20))
	if err != nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var body any
		if err := dec.Decode(&body); err != nil {
			return errorf(http.StatusBadRequest, "rest_invalid_json", "Invalid JSON body passed.")
		}
		if m, ok := body.(map[string]any); ok {
			for k, v := range m {
				c.params[k] = v
			}
		}
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(raw))
		if err == nil {
			c.form = form
			for k, vs := range form {
				if len(vs) > 0 {
					c.params[k] = vs[len(vs)-1]
				}
			}
		}
	}
	return nil
}

// authenticate is WC_REST_Authentication: over TLS, the consumer_key/consumer_secret query
// parameters or HTTP Basic; then OAuth 1.0a over the OAuth parameters (query and form body). It
// returns (nil, nil) for an unauthenticated request (the route's permission check then refuses
// it).
func (f *Fake) authenticate(r *http.Request, query, q url.Values) (*keyRecord, *restError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.TLS != nil {
		ck, cs := query.Get("consumer_key"), query.Get("consumer_secret")
		if ck == "" || cs == "" {
			ck, cs = "", ""
			if u, p, ok := r.BasicAuth(); ok && u != "" && p != "" {
				ck, cs = u, p
			}
		}
		if ck != "" {
			if k := f.keys[ck]; k != nil {
				if !hmac.Equal([]byte(k.secret), []byte(cs)) {
					return nil, errorf(http.StatusUnauthorized, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
				}
				return k, checkPermissions(k, r.Method)
			}
			// An unknown key is no error here: WooCommerce goes on to OAuth.
		}
	}

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host + r.URL.EscapedPath()
	now := f.cfg.Now()
	err := woocommerce.VerifyOAuth1(r.Method, base, q, "", now)
	if errors.Is(err, woocommerce.ErrNoOAuth1) {
		return nil, nil
	}
	var oe *woocommerce.OAuth1Error
	if errors.As(err, &oe) && oe.Code == "woocommerce_rest_authentication_missing_parameter" {
		return nil, errorf(http.StatusUnauthorized, oe.Code, "%s", oe.Message)
	}
	k := f.keys[q.Get("oauth_consumer_key")]
	if k == nil {
		return nil, errorf(http.StatusUnauthorized, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
	}
	if err := woocommerce.VerifyOAuth1(r.Method, base, q, k.secret, now); err != nil {
		if errors.As(err, &oe) {
			return nil, errorf(http.StatusUnauthorized, oe.Code, "%s", oe.Message)
		}
		return nil, errorf(http.StatusUnauthorized, "woocommerce_rest_authentication_error", "%s", err.Error())
	}
	window := int64(woocommerce.OAuth1Window / time.Second)
	for n, ts := range k.nonces {
		if ts < now.Unix()-window {
			delete(k.nonces, n)
		}
	}
	nonce := q.Get("oauth_nonce")
	if _, used := k.nonces[nonce]; used {
		return nil, errorf(http.StatusUnauthorized, "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used.")
	}
	ts, _ := strconv.ParseInt(q.Get("oauth_timestamp"), 10, 64)
	k.nonces[nonce] = ts
	return k, checkPermissions(k, r.Method)
}

// checkPermissions is WC_REST_Authentication::check_permissions.
func checkPermissions(k *keyRecord, method string) *restError {
	switch method {
	case http.MethodHead, http.MethodGet:
		if k.permissions != "read" && k.permissions != "read_write" {
			return errorf(http.StatusUnauthorized, "woocommerce_rest_authentication_error", "The API key provided does not have read permissions.")
		}
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if k.permissions != "write" && k.permissions != "read_write" {
			return errorf(http.StatusUnauthorized, "woocommerce_rest_authentication_error", "The API key provided does not have write permissions.")
		}
	case http.MethodOptions:
	default:
		return errorf(http.StatusUnauthorized, "woocommerce_rest_authentication_error", "Unknown request method.")
	}
	return nil
}

// Permission errors a route answers an unauthenticated request (rest_authorization_required_code
// is 401 when nobody is logged in).
var (
	permList   = errorf(http.StatusUnauthorized, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
	permView   = errorf(http.StatusUnauthorized, "woocommerce_rest_cannot_view", "Sorry, you cannot view this resource.")
	permCreate = errorf(http.StatusUnauthorized, "woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.")
	permEdit   = errorf(http.StatusUnauthorized, "woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource.")
	permDelete = errorf(http.StatusUnauthorized, "woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource.")
	permBatch  = errorf(http.StatusUnauthorized, "woocommerce_rest_cannot_batch", "Sorry, you are not allowed to batch manipulate this resource.")
)

type handlerFunc func(http.ResponseWriter, *call)

// route finds the handler of method and path (after /wp-json/wc/v3), and the error it answers
// an unauthenticated request. A nil handler is rest_no_route.
func (f *Fake) route(method, path string) (handlerFunc, *restError) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	editable := method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
	switch {
	case len(parts) == 1 && parts[0] == "system_status" && method == http.MethodGet:
		return f.getSystemStatus, permList
	case len(parts) == 1 && parts[0] == "webhooks":
		switch method {
		case http.MethodGet:
			return f.listWebhooks, permList
		case http.MethodPost:
			return f.createWebhook, permCreate
		}
	case len(parts) == 2 && parts[0] == "webhooks" && isID(parts[1]):
		switch {
		case method == http.MethodGet:
			return f.getWebhook, permView
		case editable:
			return f.updateWebhook, permEdit
		case method == http.MethodDelete:
			return f.deleteWebhook, permDelete
		}
	case len(parts) == 1 && parts[0] == "coupons":
		switch method {
		case http.MethodGet:
			return f.listCoupons, permList
		case http.MethodPost:
			return f.createCoupon, permCreate
		}
	case len(parts) == 2 && parts[0] == "coupons" && parts[1] == "batch" && editable:
		return f.batchCoupons, permBatch
	case len(parts) == 2 && parts[0] == "coupons" && isID(parts[1]):
		switch {
		case method == http.MethodGet:
			return f.getCoupon, permView
		case editable:
			return f.updateCoupon, permEdit
		case method == http.MethodDelete:
			return f.deleteCoupon, permDelete
		}
	case len(parts) == 1 && parts[0] == "orders" && method == http.MethodGet:
		return f.listOrders, permList
	case len(parts) == 2 && parts[0] == "orders" && isID(parts[1]) && method == http.MethodGet:
		return f.getOrder, permView
	}
	return nil, nil
}

func isID(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func pathID(c *call) int64 {
	i := strings.LastIndexByte(c.path, '/')
	n, _ := strconv.ParseInt(c.path[i+1:], 10, 64)
	return n
}

// phpJSON encodes v as PHP's json_encode (and so wp_json_encode) does by default: "/" escaped as
// "\/", non-ASCII characters as \uXXXX, and <, >, & left alone.
func phpJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	var b bytes.Buffer
	b.Grow(len(out) + 16)
	for i := 0; i < len(out); {
		c := out[i]
		switch {
		case c == '/': // only ever inside strings in JSON
			b.WriteString(`\/`)
			i++
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRune(out[i:])
			if r >= 0x10000 {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
			i += size
		}
	}
	return b.Bytes(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// wcDate formats a date as WooCommerce's REST API does (the fake's site timezone is UTC, so the
// local and _gmt fields agree).
func wcDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }
