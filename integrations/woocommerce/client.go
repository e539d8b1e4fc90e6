package woocommerce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coupongate/coupongate/internal/netguard"
)

// apiPrefix is where a store's wc/v3 REST API lives under its site URL (pretty permalinks).
const apiPrefix = "/wp-json/wc/v3"

// MaxBatchItems is how many items WooCommerce accepts in one batch request, counting create,
// update and delete together (the woocommerce_rest_batch_items_limit default).
const MaxBatchItems = 100

// clientMaxBody caps how much of an answer the client reads.
const clientMaxBody = 32 << 20

// clientUserAgent is sent with every request.
const clientUserAgent = "Coupongate-WooCommerce/1.0"

// Store is one WooCommerce store's REST API (wc/v3). Its zero HTTP and Now are usable; the
// methods do not change it, so a Store value may be used concurrently.
//
// HTTPS stores are called with HTTP Basic authentication (consumer key and secret); plain-HTTP
// stores with one-legged OAuth 1.0a (HMAC-SHA256) in the query string, as WooCommerce requires.
// Redirects are not followed: a store that redirects its API (typically http:// to https://)
// answers an *APIError with the 3xx status and the target in its message, so the site URL can be
// corrected.
type Store struct {
	SiteURL        string           // e.g. "https://shop.example.com" (no trailing slash needed)
	ConsumerKey    string           // ck_…
	ConsumerSecret string           // cs_…
	HTTP           *http.Client     // nil: a client with a 30 s timeout
	Now            func() time.Time // nil: time.Now (OAuth timestamps)
}

// APIError is a request that failed: an HTTP answer outside 2xx (Status, with Code and Message
// from WooCommerce's {code, message, data:{status}} body when it has one), or, with Status 0, a
// network failure (Err). It never holds the consumer secret.
type APIError struct {
	Status  int
	Code    string // e.g. "woocommerce_rest_authentication_error"; "" when the body was not WooCommerce's
	Message string
	// Wait is the answer's Retry-After (zero when it had none).
	Wait time.Duration
	// Err is the transport error of a request that got no answer.
	Err error
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("woocommerce: request failed: %v", e.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "woocommerce: HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// RetryAfter is how long to wait before trying again: the Retry-After of a 429 (or 5xx) answer;
// zero means "use your own backoff" (a 5xx or network failure without one).
func (e *APIError) RetryAfter() time.Duration { return e.Wait }

// Retryable reports whether the same request may succeed later: a 429, a 5xx, or a network
// failure other than a connection the address guard refused (see AddressRefused).
func (e *APIError) Retryable() bool {
	if e.Status == 0 {
		return !errors.Is(e.Err, netguard.ErrForbidden)
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// AddressRefused reports whether err is a request that never left because the store's host
// resolves to a non-public address (the client's HTTP dials through netguard), with the reason
// to record on the connection. Trying again cannot help: the merchant must connect the store at
// a public address.
func AddressRefused(err error) (string, bool) {
	var fe *netguard.ForbiddenError
	if !errors.As(err, &fe) {
		return "", false
	}
	return "the store's address was refused (" + fe.Error() + "); connect the store again at a public address", true
}

// IsNotFound reports whether err is an answer saying the object does not exist: HTTP 404, 410,
// or WooCommerce's "…_invalid_id" codes (which some routes answer with 400).
func IsNotFound(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	return e.Status == http.StatusNotFound || e.Status == http.StatusGone ||
		(e.Status == http.StatusBadRequest && strings.HasSuffix(e.Code, "_invalid_id"))
}

// ErrBatchTooLarge is returned, before any request, for a batch of more than MaxBatchItems items.
var ErrBatchTooLarge = errors.New("woocommerce: a batch takes at most 100 items")

// wireError is WooCommerce's (WordPress's) error body.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Data    struct {
		Status clientInt `json:"status"`
	} `json:"data"`
}

// apiError turns a per-item batch error into an *APIError.
func (w *wireError) apiError(secret string) *APIError {
	status := int(w.Data.Status)
	if status == 0 {
		status = http.StatusBadRequest
	}
	return &APIError{Status: status, Code: w.Code, Message: clientRedact(w.Message, secret)}
}

func (s Store) client() *http.Client {
	var c http.Client
	if s.HTTP != nil {
		c = *s.HTTP
	} else {
		c.Timeout = 30 * time.Second
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (s Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// endpoint is the API URL of path, and whether the store is served over HTTPS.
func (s Store) endpoint(path string) (string, bool, error) {
	site := strings.TrimRight(strings.TrimSpace(s.SiteURL), "/")
	u, err := url.Parse(site)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, fmt.Errorf("woocommerce: site URL %q is not an absolute http(s) URL", s.SiteURL)
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/") + apiPrefix + path, u.Scheme == "https", nil
}

// do sends one request and decodes a 2xx answer into out (when not nil). It returns the answer's
// headers.
func (s Store) do(ctx context.Context, method, path string, query url.Values, in, out any) (http.Header, error) {
	endpoint, secure, err := s.endpoint(path)
	if err != nil {
		return nil, err
	}
	if s.ConsumerKey == "" || s.ConsumerSecret == "" {
		return nil, errors.New("woocommerce: consumer key and secret are required")
	}
	if !secure {
		query, err = SignOAuth1(method, endpoint, query, s.ConsumerKey, s.ConsumerSecret, s.now(), "")
		if err != nil {
			return nil, err
		}
	}
	target := endpoint
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("woocommerce: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("woocommerce: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", clientUserAgent)
	if secure {
		req.SetBasicAuth(s.ConsumerKey, s.ConsumerSecret)
	}

	resp, err := s.client().Do(req)
	if err != nil {
		// The URL may carry an OAuth signature; keep the error to method and path.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("woocommerce: %s %s: %w", method, path, ctx.Err())
		}
		return nil, &APIError{Err: fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	raw, err := readAnswer(resp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("woocommerce: %s %s: %w", method, path, ctx.Err())
		}
		return nil, &APIError{Err: fmt.Errorf("%s %s: read answer: %w", method, path, err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, s.statusError(resp, raw)
	}
	if d, ok := out.(answerDecoder); ok {
		if err := d.decodeAnswer(raw); err != nil {
			return resp.Header, fmt.Errorf("woocommerce: %s %s: decode answer: %w", method, path, err)
		}
	} else if out != nil {
		if err := decodeLenient(raw, out); err != nil {
			return resp.Header, fmt.Errorf("woocommerce: %s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// answerDecoder is an answer type that reads its JSON itself (see batchAnswer).
type answerDecoder interface{ decodeAnswer(raw []byte) error }

// readAnswer reads an answer's body, at most clientMaxBody bytes, into a buffer sized once from
// its Content-Length when it has one (a 100-coupon batch answers about 100 KB).
func readAnswer(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= clientMaxBody {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, clientMaxBody))
	return buf.Bytes(), err
}

// statusError is the *APIError of a non-2xx answer.
func (s Store) statusError(resp *http.Response, raw []byte) *APIError {
	e := &APIError{Status: resp.StatusCode}
	var w wireError
	if decodeLenient(raw, &w) == nil && w.Code != "" {
		e.Code, e.Message = w.Code, w.Message
	} else if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Message = "redirected to " + clientStripQuery(resp.Header.Get("Location")) + " (check the site URL)"
	} else {
		e.Message = clientClip(strings.TrimSpace(string(raw)), 300)
	}
	e.Message = clientRedact(e.Message, s.ConsumerSecret)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		e.Wait = clientRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// decodeLenient decodes JSON, skipping a UTF-8 BOM and anything a plugin printed before the
// JSON (PHP notices are common on WordPress sites).
func decodeLenient(raw []byte, out any) error {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	err := json.Unmarshal(raw, out)
	if err == nil {
		return nil
	}
	if i := bytes.IndexAny(raw, "{["); i > 0 {
		if json.Unmarshal(raw[i:], out) == nil {
			return nil
		}
	}
	return err
}

// SystemStatus checks that the store answers and accepts the keys: GET /system_status, and, if
// that route is missing (404), a one-coupon read.
func (s Store) SystemStatus(ctx context.Context) error {
	_, err := s.do(ctx, http.MethodGet, "/system_status", nil, nil, nil)
	var e *APIError
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		_, err = s.do(ctx, http.MethodGet, "/coupons", url.Values{"per_page": {"1"}}, nil, nil)
	}
	return err
}

// WebhookInput is a webhook to create. WooCommerce creates every webhook active, whatever Status
// says (the field is checked against active, paused and disabled); an empty Secret makes the store
// generate one, returned in Webhook.Secret.
type WebhookInput struct {
	Name        string
	Topic       string // e.g. "order.updated"
	DeliveryURL string
	Secret      string
	Status      string
}

// Webhook is a store's webhook. Secret is only returned by create and update (and delete), which
// answer in WooCommerce's edit context; GetWebhook leaves it empty.
type Webhook struct {
	ID          int64
	Name        string
	Topic       string
	DeliveryURL string
	Status      string // active, paused or disabled
	Secret      string
}

type wireWebhook struct {
	ID          clientInt    `json:"id"`
	Name        clientString `json:"name"`
	Status      string       `json:"status"`
	Topic       string       `json:"topic"`
	DeliveryURL string       `json:"delivery_url"`
	Secret      string       `json:"secret"`
}

func (w wireWebhook) webhook() Webhook {
	return Webhook{ID: int64(w.ID), Name: string(w.Name), Topic: w.Topic, DeliveryURL: w.DeliveryURL, Status: w.Status, Secret: w.Secret}
}

// CreateWebhook creates a webhook (POST /webhooks). The store pings DeliveryURL before it
// answers.
func (s Store) CreateWebhook(ctx context.Context, in WebhookInput) (Webhook, error) {
	body := map[string]string{"topic": in.Topic, "delivery_url": in.DeliveryURL}
	for k, v := range map[string]string{"name": in.Name, "secret": in.Secret, "status": in.Status} {
		if v != "" {
			body[k] = v
		}
	}
	var w wireWebhook
	if _, err := s.do(ctx, http.MethodPost, "/webhooks", nil, body, &w); err != nil {
		return Webhook{}, err
	}
	return w.webhook(), nil
}

// GetWebhook reads a webhook (GET /webhooks/{id}). WooCommerce answers an unknown id with 400
// woocommerce_rest_shop_webhook_invalid_id (IsNotFound is true for it).
func (s Store) GetWebhook(ctx context.Context, id int64) (Webhook, error) {
	var w wireWebhook
	if _, err := s.do(ctx, http.MethodGet, "/webhooks/"+strconv.FormatInt(id, 10), nil, nil, &w); err != nil {
		return Webhook{}, err
	}
	return w.webhook(), nil
}

// SetWebhookStatus sets a webhook's status (PUT /webhooks/{id}): "active" re-enables a webhook
// the store disabled after failed deliveries (its failure count is not reset).
func (s Store) SetWebhookStatus(ctx context.Context, id int64, status string) (Webhook, error) {
	var w wireWebhook
	if _, err := s.do(ctx, http.MethodPut, "/webhooks/"+strconv.FormatInt(id, 10), nil, map[string]string{"status": status}, &w); err != nil {
		return Webhook{}, err
	}
	return w.webhook(), nil
}

// DeleteWebhook deletes a webhook for good (DELETE /webhooks/{id}?force=true). A webhook that is
// already gone (404) counts as deleted.
func (s Store) DeleteWebhook(ctx context.Context, id int64) error {
	_, err := s.do(ctx, http.MethodDelete, "/webhooks/"+strconv.FormatInt(id, 10), url.Values{"force": {"true"}}, nil, nil)
	var e *APIError
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// CouponInput is a coupon to create. WooCommerce stores the code lower-cased.
type CouponInput struct {
	Code         string
	DiscountType string // "percent" or "fixed_cart" ("fixed_cart" when empty)
	Amount       string // a decimal such as "10" or "12.50"
	UsageLimit   int    // 0: unlimited (omitted)
	// UsageLimitPerUser is how often one customer (user ID or billing email) may use the coupon;
	// 0: unlimited (omitted).
	UsageLimitPerUser int
	IndividualUse     bool
	DateExpires       *time.Time // sent as date_expires_gmt; nil: never
	// MetaData are custom fields stored with the coupon (meta_data: key and string value).
	MetaData []Meta
}

// Meta is one custom field of a WooCommerce object, as meta_data lists it: {id, key, value}.
// Value is the text of a string or number value; other JSON values (objects, arrays) are kept
// as their JSON text. ID is the store's meta id (0 in a request: a new field, or the field with
// that key updated).
type Meta struct {
	ID    int64
	Key   string
	Value string
}

type wireMetaInput struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type wireMeta struct {
	ID    clientInt       `json:"id"`
	Key   clientString    `json:"key"`
	Value json.RawMessage `json:"value"`
}

func (w wireMeta) meta() Meta {
	m := Meta{ID: int64(w.ID), Key: string(w.Key)}
	var s clientString
	if t := bytes.TrimSpace(w.Value); len(t) > 0 && t[0] != '{' && t[0] != '[' && json.Unmarshal(t, &s) == nil {
		m.Value = string(s)
	} else {
		m.Value = string(t)
	}
	return m
}

type wireCouponInput struct {
	Code           string          `json:"code"`
	DiscountType   string          `json:"discount_type,omitempty"`
	Amount         string          `json:"amount,omitempty"`
	UsageLimit     int             `json:"usage_limit,omitempty"`
	UsageLimitUser int             `json:"usage_limit_per_user,omitempty"`
	IndividualUse  bool            `json:"individual_use"`
	DateExpiresGMT string          `json:"date_expires_gmt,omitempty"`
	MetaData       []wireMetaInput `json:"meta_data,omitempty"`
}

// clientDateLayout is how WooCommerce writes and reads dates: ISO 8601 without a zone (the _gmt
// fields are UTC).
const clientDateLayout = "2006-01-02T15:04:05"

func (c CouponInput) wire() wireCouponInput {
	w := wireCouponInput{Code: c.Code, DiscountType: c.DiscountType, Amount: c.Amount, IndividualUse: c.IndividualUse}
	if c.UsageLimit > 0 {
		w.UsageLimit = c.UsageLimit
	}
	if c.UsageLimitPerUser > 0 {
		w.UsageLimitUser = c.UsageLimitPerUser
	}
	if c.DateExpires != nil {
		w.DateExpiresGMT = c.DateExpires.UTC().Format(clientDateLayout)
	}
	for _, m := range c.MetaData {
		w.MetaData = append(w.MetaData, wireMetaInput{Key: m.Key, Value: m.Value})
	}
	return w
}

// CouponBatch is one POST /coupons/batch: at most MaxBatchItems creations and deletions together.
// Deletions are permanent (force=true).
type CouponBatch struct {
	Create []CouponInput
	Delete []int64
}

// CouponResult is one item of a batch: the coupon's ID and (lower-cased) code, or Err, the item's
// own error (such as 400 woocommerce_rest_coupon_code_already_exists), with Code then the code
// asked for. A failed deletion has ID set to the ID asked for.
type CouponResult struct {
	ID   int64
	Code string
	Err  *APIError
}

// CouponBatchResult holds the batch's results in request order.
type CouponBatchResult struct {
	Create []CouponResult
	Delete []CouponResult
}

// Coupon is a store's coupon.
type Coupon struct {
	ID                int64
	Code              string // lower-case
	DiscountType      string
	Amount            string // as the store formats it, e.g. "10.00"
	Status            string // "publish", "draft", "trash", …
	UsageLimit        int    // 0: unlimited
	UsageLimitPerUser int    // 0: unlimited
	UsageCount        int
	IndividualUse     bool
	DateExpires       *time.Time // nil: never
	UsedBy            []string   // user IDs or, for guests, billing emails
	MetaData          []Meta     // custom fields
}

// Meta returns the value of the coupon's first custom field with key.
func (c Coupon) Meta(key string) (string, bool) {
	for _, m := range c.MetaData {
		if m.Key == key {
			return m.Value, true
		}
	}
	return "", false
}

type wireCoupon struct {
	ID             clientInt      `json:"id"`
	Code           clientString   `json:"code"`
	Amount         clientString   `json:"amount"`
	DiscountType   string         `json:"discount_type"`
	Status         string         `json:"status"`
	UsageLimit     clientInt      `json:"usage_limit"`
	UsageLimitUser clientInt      `json:"usage_limit_per_user"`
	UsageCount     clientInt      `json:"usage_count"`
	IndividualUse  clientBool     `json:"individual_use"`
	DateExpiresGMT *string        `json:"date_expires_gmt"`
	UsedBy         []clientString `json:"used_by"`
	MetaData       []wireMeta     `json:"meta_data"`
	Error          *wireError     `json:"error"`
}

func (w wireCoupon) coupon() Coupon {
	c := Coupon{ID: int64(w.ID), Code: string(w.Code), DiscountType: w.DiscountType, Amount: string(w.Amount), Status: w.Status,
		UsageLimit: int(w.UsageLimit), UsageLimitPerUser: int(w.UsageLimitUser), UsageCount: int(w.UsageCount), IndividualUse: bool(w.IndividualUse)}
	if w.DateExpiresGMT != nil && *w.DateExpiresGMT != "" {
		if t, err := clientParseDate(*w.DateExpiresGMT); err == nil {
			c.DateExpires = &t
		}
	}
	for _, u := range w.UsedBy {
		c.UsedBy = append(c.UsedBy, string(u))
	}
	for _, m := range w.MetaData {
		c.MetaData = append(c.MetaData, m.meta())
	}
	return c
}

// clientParseDate reads a WooCommerce _gmt date ("2006-01-02T15:04:05", or with a zone).
func clientParseDate(s string) (time.Time, error) {
	if t, err := time.ParseInLocation(clientDateLayout, s, time.UTC); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// BatchCoupons creates and deletes coupons in one request (POST /coupons/batch). Items fail one
// by one: the answer is 200 with an error per failed item, in CouponResult.Err. More than
// MaxBatchItems items is refused before sending (ErrBatchTooLarge).
func (s Store) BatchCoupons(ctx context.Context, b CouponBatch) (CouponBatchResult, error) {
	var res CouponBatchResult
	if n := len(b.Create) + len(b.Delete); n > MaxBatchItems {
		return res, fmt.Errorf("%w (got %d)", ErrBatchTooLarge, n)
	} else if n == 0 {
		return res, nil
	}
	body := struct {
		Create []wireCouponInput `json:"create,omitempty"`
		Delete []int64           `json:"delete,omitempty"`
	}{Delete: b.Delete}
	for _, c := range b.Create {
		body.Create = append(body.Create, c.wire())
	}
	// Only each item's id, code and error are read (batchAnswer.decodeAnswer).
	var out batchAnswer
	if _, err := s.do(ctx, http.MethodPost, "/coupons/batch", nil, body, &out); err != nil {
		return res, err
	}
	if len(out.Create) != len(b.Create) || len(out.Delete) != len(b.Delete) {
		return res, fmt.Errorf("woocommerce: coupons batch answered %d creations and %d deletions for %d and %d",
			len(out.Create), len(out.Delete), len(b.Create), len(b.Delete))
	}
	for i, w := range out.Create {
		r := CouponResult{ID: int64(w.ID), Code: string(w.Code)}
		if w.Error != nil {
			r = CouponResult{Code: b.Create[i].Code, Err: w.Error.apiError(s.ConsumerSecret)}
		}
		res.Create = append(res.Create, r)
	}
	for i, w := range out.Delete {
		r := CouponResult{ID: int64(w.ID), Code: string(w.Code)}
		if w.Error != nil {
			r = CouponResult{ID: b.Delete[i], Err: w.Error.apiError(s.ConsumerSecret)}
		}
		res.Delete = append(res.Delete, r)
	}
	return res, nil
}

// CouponByCode finds a published coupon by code, case-insensitively (GET /coupons?code=).
func (s Store) CouponByCode(ctx context.Context, code string) (Coupon, bool, error) {
	if strings.TrimSpace(code) == "" {
		return Coupon{}, false, nil
	}
	var out []wireCoupon
	if _, err := s.do(ctx, http.MethodGet, "/coupons", url.Values{"code": {code}}, nil, &out); err != nil {
		return Coupon{}, false, err
	}
	want := strings.ToLower(strings.TrimSpace(code))
	for _, w := range out {
		if strings.ToLower(string(w.Code)) == want {
			return w.coupon(), true, nil
		}
	}
	return Coupon{}, false, nil
}

// Orders reads one page of the orders modified after modifiedAfter (all orders when it is zero),
// oldest modification first (GET /orders?modified_after=…&dates_are_gmt=true&orderby=modified
// &order=asc). page counts from 1; perPage is held to 1..100. totalPages comes from X-WP-TotalPages
// (0 when there is nothing).
func (s Store) Orders(ctx context.Context, modifiedAfter time.Time, page, perPage int) ([]json.RawMessage, int, error) {
	page = max(page, 1)
	perPage = min(max(perPage, 1), 100)
	q := url.Values{
		"dates_are_gmt": {"true"},
		"orderby":       {"modified"},
		"order":         {"asc"},
		"page":          {strconv.Itoa(page)},
		"per_page":      {strconv.Itoa(perPage)},
	}
	if !modifiedAfter.IsZero() {
		q.Set("modified_after", modifiedAfter.UTC().Format(clientDateLayout))
	}
	var out []json.RawMessage
	h, err := s.do(ctx, http.MethodGet, "/orders", q, nil, &out)
	if err != nil {
		return nil, 0, err
	}
	total, err := strconv.Atoi(strings.TrimSpace(h.Get("X-WP-TotalPages")))
	if err != nil {
		// No header (some caching proxies drop it): go on while there is a next page.
		total = page
		if strings.Contains(strings.Join(h.Values("Link"), ", "), `rel="next"`) {
			total = page + 1
		} else if len(out) == 0 {
			total = page - 1
		}
	}
	return out, total, nil
}

// clientInt is an integer WooCommerce may send as a number, a numeric string, or null (0).
type clientInt int64

func (n *clientInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" || s == `""` || s == "false" {
		*n = 0
		return nil
	}
	if s == "true" {
		*n = 1
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = clientInt(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) {
		return fmt.Errorf("woocommerce: %s is not an integer", clientClip(string(b), 40))
	}
	*n = clientInt(f)
	return nil
}

// clientString is a string WooCommerce may send as a number (amounts, codes that look numeric,
// used_by user IDs) or null ("").
type clientString string

func (s *clientString) UnmarshalJSON(b []byte) error {
	t := strings.TrimSpace(string(b))
	switch {
	case t == "null":
		*s = ""
	case strings.HasPrefix(t, `"`):
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = clientString(v)
	case t == "true" || t == "false":
		*s = clientString(t)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("woocommerce: %s is not a string", clientClip(string(b), 40))
		}
		*s = clientString(n.String())
	}
	return nil
}

// clientBool is a boolean WooCommerce may send as true/false, 0/1, "yes"/"no" or null.
type clientBool bool

func (v *clientBool) UnmarshalJSON(b []byte) error {
	t := strings.ToLower(strings.Trim(strings.TrimSpace(string(b)), `"`))
	switch t {
	case "true", "1", "yes":
		*v = true
	case "false", "0", "no", "", "null":
		*v = false
	default:
		return fmt.Errorf("woocommerce: %s is not a boolean", clientClip(string(b), 40))
	}
	return nil
}

// clientRetryAfter reads a Retry-After value in (possibly fractional) seconds or as an HTTP date;
// zero when absent or unreadable.
func clientRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// clientRedact removes the consumer secret from text a store sent back.
func clientRedact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

func clientStripQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

func clientClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
