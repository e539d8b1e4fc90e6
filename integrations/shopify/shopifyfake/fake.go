// Package shopifyfake is an in-process fake of the Shopify Admin API for
// tests. It serves, under http://127.0.0.1:PORT/{shop} (the SHOPIFY_ADMIN_URL
// style), the Admin GraphQL endpoint and the OAuth endpoints:
//
//   - POST /{shop}/admin/api/{version}/graphql.json needs a valid
//     X-Shopify-Access-Token (401 otherwise), parses and validates each
//     operation against the pinned Admin schema (answering a GraphQL errors
//     body, as Shopify does, for anything the schema does not allow), and
//     runs discountCodeBasicCreate, discountRedeemCodeBulkAdd,
//     discountRedeemCodeBulkCreation, discountCodeRedeemCodeBulkDelete, job,
//     codeDiscountNodeByCode, webhookSubscriptionCreate and orders over
//     in-memory state. Every answer carries extensions.cost; a leaky bucket
//     answers THROTTLED like Shopify.
//   - GET /{shop}/admin/oauth/authorize records the request and redirects
//     back with a code and a signed query; POST /{shop}/admin/oauth/access_token
//     exchanges codes, refresh tokens and session tokens.
//
// FailNext makes the next requests answer 429 or 5xx, and SignWebhook /
// DeliverWebhook sign webhook deliveries as Shopify does.
package shopifyfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Config sets the fake's behaviour; zero fields take the defaults below.
type Config struct {
	// ClientID and ClientSecret are the app's credentials (defaults
	// "test-client-id" and "test-client-secret").
	ClientID     string
	ClientSecret string
	// Scopes granted when the authorize request named none (default
	// "write_discounts,read_orders").
	Scopes string
	// APIVersion is what the GraphQL endpoint accepts and what webhooks
	// carry (default "2025-01").
	APIVersion string
	// SchemaPath, when set, names a file whose SDL operations are validated
	// against instead of the committed 2025-01 Admin schema.
	SchemaPath string
	// BucketSize and RestoreRate shape the cost throttle (defaults 1000
	// points and 100 points per second).
	BucketSize  float64
	RestoreRate float64
	// MaxQueryCost is the most a single query may request (default 1000).
	MaxQueryCost float64
	// BulkDelay is how long a bulk creation or deletion job takes to finish
	// (default 50 ms; negative means immediately).
	BulkDelay time.Duration
	// MaxCodesPerBulkAdd caps codes per discountRedeemCodeBulkAdd (default
	// 100, as in 2025-01).
	MaxCodesPerBulkAdd int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.ClientID == "" {
		c.ClientID = "test-client-id"
	}
	if c.ClientSecret == "" {
		c.ClientSecret = "test-client-secret"
	}
	if c.Scopes == "" {
		c.Scopes = "write_discounts,read_orders"
	}
	if c.APIVersion == "" {
		c.APIVersion = "2025-01"
	}
	if c.BucketSize <= 0 {
		c.BucketSize = 1000
	}
	if c.RestoreRate <= 0 {
		c.RestoreRate = 100
	}
	if c.MaxQueryCost <= 0 {
		c.MaxQueryCost = 1000
	}
	if c.BulkDelay == 0 {
		c.BulkDelay = 50 * time.Millisecond
	} else if c.BulkDelay < 0 {
		c.BulkDelay = 0
	}
	if c.MaxCodesPerBulkAdd <= 0 {
		c.MaxCodesPerBulkAdd = 100
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Fake is a running fake Shopify. Close it when done.
type Fake struct {
	cfg    Config
	schema *ast.Schema
	srv    *httptest.Server

	mu        sync.Mutex
	shops     map[string]*shop
	tokens    map[string]*accessToken  // access token → grant
	refreshes map[string]*refreshGrant // refresh token → grant
	codes     map[string]*authCode     // authorization code → grant
	authorize []AuthorizeRequest
	failures  []failure
	requests  int
}

type failure struct {
	status     int
	retryAfter string
}

// New starts a fake; it fails the test when the schema cannot be loaded.
func New(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}, cfg Config) *Fake {
	t.Helper()
	f, err := Start(cfg)
	if err != nil {
		t.Fatalf("shopifyfake: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

// Start starts a fake outside a test.
func Start(cfg Config) (*Fake, error) {
	cfg.defaults()
	schema, err := loadSchema(cfg.SchemaPath)
	if err != nil {
		return nil, err
	}
	f := &Fake{
		cfg:       cfg,
		schema:    schema,
		shops:     make(map[string]*shop),
		tokens:    make(map[string]*accessToken),
		refreshes: make(map[string]*refreshGrant),
		codes:     make(map[string]*authCode),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	return f, nil
}

// Close stops the server.
func (f *Fake) Close() { f.srv.Close() }

// URL is the server's base URL (http://127.0.0.1:PORT).
func (f *Fake) URL() string { return f.srv.URL }

// ShopURL is the shop's admin base in SHOPIFY_ADMIN_URL style:
// http://127.0.0.1:PORT/{shop}.
func (f *Fake) ShopURL(shopDomain string) string { return f.srv.URL + "/" + shopDomain }

// Client returns an HTTP client for the server.
func (f *Fake) Client() *http.Client { return f.srv.Client() }

// Config returns the effective configuration.
func (f *Fake) Config() Config { return f.cfg }

// Requests is how many requests reached the GraphQL endpoint.
func (f *Fake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// FailNext makes the next n GraphQL requests answer status (429 or a 5xx)
// with the given Retry-After header ("" for none).
func (f *Fake) FailNext(n, status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures = append(f.failures, failure{status: status, retryAfter: retryAfter})
	}
}

// IssueToken grants a non-expiring offline access token for shopDomain, as if
// the app had been installed, and returns it.
func (f *Fake) IssueToken(shopDomain string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grantLocked(shopDomain, f.cfg.Scopes, false).access
}

// RevokeToken makes an access token invalid (as after app/uninstalled).
func (f *Fake) RevokeToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

func (f *Fake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// /{shop}/admin/...
	rest := strings.TrimPrefix(r.URL.Path, "/")
	shopDomain, tail, ok := strings.Cut(rest, "/")
	if !ok || shopDomain == "" {
		http.NotFound(w, r)
		return
	}
	switch {
	case tail == "admin/oauth/authorize" && r.Method == http.MethodGet:
		f.serveAuthorize(w, r, shopDomain)
	case tail == "admin/oauth/access_token" && r.Method == http.MethodPost:
		f.serveAccessToken(w, r, shopDomain)
	case strings.HasPrefix(tail, "admin/api/") && strings.HasSuffix(tail, "/graphql.json"):
		version := strings.TrimSuffix(strings.TrimPrefix(tail, "admin/api/"), "/graphql.json")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f.serveGraphQL(w, r, shopDomain, version)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// costExtension is extensions.cost as Shopify sends it.
type costExtension struct {
	RequestedQueryCost float64  `json:"requestedQueryCost"`
	ActualQueryCost    *float64 `json:"actualQueryCost"`
	ThrottleStatus     struct {
		MaximumAvailable   float64 `json:"maximumAvailable"`
		CurrentlyAvailable float64 `json:"currentlyAvailable"`
		RestoreRate        float64 `json:"restoreRate"`
	} `json:"throttleStatus"`
}

type gqlResponse struct {
	Data       any            `json:"data,omitempty"`
	Errors     gqlerror.List  `json:"errors,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

func (f *Fake) serveGraphQL(w http.ResponseWriter, r *http.Request, shopDomain, version string) {
	f.mu.Lock()
	f.requests++
	if len(f.failures) > 0 {
		fl := f.failures[0]
		f.failures = f.failures[1:]
		f.mu.Unlock()
		if fl.retryAfter != "" {
			w.Header().Set("Retry-After", fl.retryAfter)
		}
		writeJSON(w, fl.status, map[string]any{"errors": http.StatusText(fl.status)})
		return
	}
	f.mu.Unlock()

	token := r.Header.Get("X-Shopify-Access-Token")
	if !f.tokenValid(token, shopDomain) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)",
		})
		return
	}
	if version != f.cfg.APIVersion {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": "Not Found"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": "bad body"})
		return
	}
	var req gqlRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Query == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]any{"query": "Required parameter missing or invalid"}})
		return
	}
	p, gerrs := prepare(f.schema, req)
	if len(gerrs) > 0 {
		// Shopify answers invalid documents with 200 and an errors body.
		writeJSON(w, http.StatusOK, gqlResponse{Errors: gerrs})
		return
	}

	cost := queryCost(f.schema, p)
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shopLocked(shopDomain)
	now := f.cfg.Now()
	available := s.bucketLocked(now, f.cfg)
	ext := costExtension{RequestedQueryCost: cost}
	ext.ThrottleStatus.MaximumAvailable = f.cfg.BucketSize
	ext.ThrottleStatus.RestoreRate = f.cfg.RestoreRate
	if cost > f.cfg.MaxQueryCost {
		ext.ThrottleStatus.CurrentlyAvailable = available
		writeJSON(w, http.StatusOK, gqlResponse{
			Errors: gqlerror.List{{
				Message:    fmt.Sprintf("Query cost is %.0f, which exceeds the single query max cost limit (%.0f).", cost, f.cfg.MaxQueryCost),
				Extensions: map[string]any{"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": f.cfg.MaxQueryCost},
			}},
			Extensions: map[string]any{"cost": ext},
		})
		return
	}
	if cost > available {
		ext.ThrottleStatus.CurrentlyAvailable = available
		writeJSON(w, http.StatusOK, gqlResponse{
			Errors: gqlerror.List{{
				Message:    "Throttled",
				Extensions: map[string]any{"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
			}},
			Extensions: map[string]any{"cost": ext},
		})
		return
	}
	s.available = available - cost
	actual := cost
	ext.ActualQueryCost = &actual
	ext.ThrottleStatus.CurrentlyAvailable = s.available

	s.settleLocked(now)
	data, errs := execute(p, f.rootLocked(s, p.op.Operation, now))
	writeJSON(w, http.StatusOK, gqlResponse{Data: data, Errors: errs, Extensions: map[string]any{"cost": ext}})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
