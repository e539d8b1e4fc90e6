package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// AccessTokenHeader is the header that carries the Admin API access token.
const AccessTokenHeader = "X-Shopify-Access-Token"

// maxResponseBytes caps how much of an answer the client reads.
const maxResponseBytes = 16 << 20

// DefaultThrottleWait is how long to wait after THROTTLED when the answer does
// not say enough to compute it (Shopify recommends one second).
const DefaultThrottleWait = time.Second

// ThrottleStatus is the state of the shop's cost bucket as Shopify reports it
// in extensions.cost.throttleStatus.
type ThrottleStatus struct {
	MaximumAvailable   float64 `json:"maximumAvailable"`
	CurrentlyAvailable float64 `json:"currentlyAvailable"`
	RestoreRate        float64 `json:"restoreRate"`
}

// Cost is extensions.cost of a GraphQL answer. ActualQueryCost is nil when the
// query did not run (for example when it was throttled).
type Cost struct {
	RequestedQueryCost float64        `json:"requestedQueryCost"`
	ActualQueryCost    *float64       `json:"actualQueryCost"`
	ThrottleStatus     ThrottleStatus `json:"throttleStatus"`
}

// RetryAfterError is an error after which the request may be tried again once
// RetryAfter has passed. A zero RetryAfter means "retry with your own backoff".
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// ThrottledError is a GraphQL answer with a THROTTLED error: the bucket did
// not hold the requested cost. Wait is how long the bucket needs to restore
// enough points, from requestedQueryCost, currentlyAvailable and restoreRate.
type ThrottledError struct {
	Cost Cost
	Wait time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("shopify admin: throttled (requested %.0f, available %.0f, restore %.0f/s); retry in %s",
		e.Cost.RequestedQueryCost, e.Cost.ThrottleStatus.CurrentlyAvailable, e.Cost.ThrottleStatus.RestoreRate, e.Wait)
}

// RetryAfter returns how long to wait before retrying.
func (e *ThrottledError) RetryAfter() time.Duration { return e.Wait }

// RateLimitedError is an HTTP 429 answer; Wait comes from its Retry-After
// header (one second when the header is missing or unreadable).
type RateLimitedError struct {
	Wait time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("shopify admin: rate limited (HTTP 429); retry in %s", e.Wait)
}

// RetryAfter returns how long to wait before retrying.
func (e *RateLimitedError) RetryAfter() time.Duration { return e.Wait }

// ServerError is an HTTP 5xx answer. It is retryable; Wait is the answer's
// Retry-After, or zero when it had none (retry with backoff).
type ServerError struct {
	StatusCode int
	Wait       time.Duration
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("shopify admin: server error (HTTP %d)", e.StatusCode)
}

// RetryAfter returns how long to wait before retrying (zero: use backoff).
func (e *ServerError) RetryAfter() time.Duration { return e.Wait }

// ErrUnauthorized is returned for HTTP 401: the access token is invalid or
// expired and should be refreshed.
var ErrUnauthorized = errors.New("shopify admin: unauthorized (HTTP 401)")

// StatusError is any other unexpected HTTP status.
type StatusError struct {
	StatusCode int
	Body       string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("shopify admin: HTTP %d: %s", e.StatusCode, e.Body)
}

// Client posts genqlient operations to one shop's Admin GraphQL endpoint. It
// implements graphql.Client and is safe for concurrent use.
type Client struct {
	endpoint string
	token    string
	http     *http.Client

	mu       sync.Mutex
	lastCost *Cost
}

var _ graphql.Client = (*Client)(nil)

// NewClient returns a client for the shop at shopDomainURL, which is either a
// bare domain ("blue-bottle.myshopify.com", https is assumed) or a base URL
// such as SHOPIFY_ADMIN_URL style "http://127.0.0.1:8080/blue-bottle". It
// posts to {shopDomainURL}/admin/api/{apiVersion}/graphql.json. A nil
// httpClient means a client with a 30 s timeout.
func NewClient(shopDomainURL, apiVersion, accessToken string, httpClient *http.Client) *Client {
	base := strings.TrimRight(shopDomainURL, "/")
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{
		endpoint: base + "/admin/api/" + apiVersion + "/graphql.json",
		token:    accessToken,
		http:     httpClient,
	}
}

// Endpoint returns the GraphQL URL the client posts to.
func (c *Client) Endpoint() string { return c.endpoint }

// LastCost returns extensions.cost of the latest answer that carried one, and
// false before any did.
func (c *Client) LastCost() (Cost, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastCost == nil {
		return Cost{}, false
	}
	return *c.lastCost, true
}

// ThrottleStatus returns the bucket state of the latest answer that reported
// one, and false before any did.
func (c *Client) ThrottleStatus() (ThrottleStatus, bool) {
	cost, ok := c.LastCost()
	return cost.ThrottleStatus, ok
}

type wireResponse struct {
	Data       json.RawMessage `json:"data"`
	Errors     gqlerror.List   `json:"errors"`
	Extensions json.RawMessage `json:"extensions"`
}

// MakeRequest implements graphql.Client.
func (c *Client) MakeRequest(ctx context.Context, req *graphql.Request, resp *graphql.Response) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("shopify admin: encode request: %w", err)
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("shopify admin: %w", err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	httpReq.Header.Set(AccessTokenHeader, c.token)

	httpResp, err := c.http.Do(httpReq)
	if err != nil {
		return fmt.Errorf("shopify admin %s: %w", req.OpName, err)
	}
	defer httpResp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(httpResp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("shopify admin %s: read answer: %w", req.OpName, err)
	}

	switch code := httpResp.StatusCode; {
	case code == http.StatusTooManyRequests:
		wait := parseRetryAfter(httpResp.Header.Get("Retry-After"), time.Now())
		if wait <= 0 {
			wait = time.Second
		}
		return &RateLimitedError{Wait: wait}
	case code >= 500:
		return &ServerError{StatusCode: code, Wait: parseRetryAfter(httpResp.Header.Get("Retry-After"), time.Now())}
	case code == http.StatusUnauthorized:
		return ErrUnauthorized
	case code != http.StatusOK:
		return &StatusError{StatusCode: code, Body: truncate(string(raw), 512)}
	}

	var wire wireResponse
	if err := json.Unmarshal(raw, &wire); err != nil {
		return fmt.Errorf("shopify admin %s: decode answer: %w", req.OpName, err)
	}
	var cost *Cost
	if len(wire.Extensions) > 0 {
		var ext struct {
			Cost *Cost `json:"cost"`
		}
		if json.Unmarshal(wire.Extensions, &ext) == nil && ext.Cost != nil {
			cost = ext.Cost
			c.mu.Lock()
			c.lastCost = cost
			c.mu.Unlock()
		}
		var m map[string]any
		if json.Unmarshal(wire.Extensions, &m) == nil {
			resp.Extensions = m
		}
	}
	for _, e := range wire.Errors {
		if e != nil && e.Extensions["code"] == "THROTTLED" {
			te := &ThrottledError{Wait: DefaultThrottleWait}
			if cost != nil {
				te.Cost = *cost
				te.Wait = ThrottleWait(*cost)
			}
			return te
		}
	}
	if len(wire.Data) > 0 && string(wire.Data) != "null" && resp.Data != nil {
		if err := json.Unmarshal(wire.Data, resp.Data); err != nil {
			return fmt.Errorf("shopify admin %s: decode data: %w", req.OpName, err)
		}
	}
	if len(wire.Errors) > 0 {
		resp.Errors = wire.Errors
		return wire.Errors
	}
	return nil
}

// ThrottleWait is how long the bucket needs to hold the requested cost again:
// (requestedQueryCost - currentlyAvailable) / restoreRate, rounded up to the
// millisecond. It is DefaultThrottleWait when the rate is unknown.
func ThrottleWait(cost Cost) time.Duration {
	rate := cost.ThrottleStatus.RestoreRate
	if rate <= 0 {
		return DefaultThrottleWait
	}
	deficit := cost.RequestedQueryCost - cost.ThrottleStatus.CurrentlyAvailable
	if deficit <= 0 {
		deficit = 1
	}
	ms := math.Ceil(deficit / rate * 1000)
	return time.Duration(ms) * time.Millisecond
}

// parseRetryAfter reads a Retry-After value in (possibly fractional) seconds
// or as an HTTP date; it returns zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
