package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// App is the Shopify app's identity and where shops are reached: the client id (API key) and
// secret, the scopes it asks for, the pinned Admin API version, and the admin host template
// (SHOPIFY_ADMIN_URL, "https://{shop}" in production, a local fake in tests).
type App struct {
	APIKey     string
	APISecret  string
	Scopes     []string
	APIVersion string
	AdminURL   string
	HTTP       *http.Client
}

// Token types and grants of Shopify's token endpoint.
const (
	grantRefreshToken      = "refresh_token"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeOfflineAccess = "urn:shopify:params:oauth:token-type:offline-access-token"
)

// ParseScopes splits a comma-separated scope list, trimmed, without empties.
func ParseScopes(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ShopURL is the base URL of a shop's admin host: AdminURL with {shop} replaced.
func (a App) ShopURL(shop string) string {
	tmpl := a.AdminURL
	if tmpl == "" {
		tmpl = "https://{shop}"
	}
	return strings.TrimRight(strings.ReplaceAll(tmpl, "{shop}", shop), "/")
}

// AuthorizeURL is where a merchant approves the app: an offline-token grant (no per-user
// option) with our scopes, redirect URI and state nonce.
func (a App) AuthorizeURL(shop, redirectURI, state string) string {
	q := url.Values{}
	q.Set("client_id", a.APIKey)
	q.Set("scope", strings.Join(a.Scopes, ","))
	q.Set("redirect_uri", redirectURI)
	q.Set("state", state)
	return a.ShopURL(shop) + "/admin/oauth/authorize?" + q.Encode()
}

// MissingScopes returns the scopes the app asks for that granted does not cover; a write scope
// implies its read scope.
func (a App) MissingScopes(granted string) []string {
	have := make(map[string]bool)
	for _, s := range ParseScopes(granted) {
		have[s] = true
		if r, ok := strings.CutPrefix(s, "write_"); ok {
			have["read_"+r] = true
		}
		if r, ok := strings.CutPrefix(s, "unauthenticated_write_"); ok {
			have["unauthenticated_read_"+r] = true
		}
	}
	var missing []string
	for _, s := range a.Scopes {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	return missing
}

// Grant is an answer of the token endpoint, as credentials to keep.
type Grant struct {
	Credentials core.Credentials
	Scope       string
}

// ErrGrantRefused is the token endpoint refusing a code, refresh token or session token (HTTP
// 400/401): retrying the same request will not help.
var ErrGrantRefused = errors.New("shopify oauth: grant refused")

type tokenAnswer struct {
	AccessToken           string `json:"access_token"`
	Scope                 string `json:"scope"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	Error                 string `json:"error"`
	ErrorDescription      string `json:"error_description"`
}

// ExchangeCode trades an authorization code for an expiring offline token pair.
func (a App) ExchangeCode(ctx context.Context, shop, code string) (Grant, error) {
	return a.token(ctx, shop, url.Values{"code": {code}, "expiring": {"1"}})
}

// Refresh trades a refresh token for a new pair; the old access token stays valid until it
// expires.
func (a App) Refresh(ctx context.Context, shop, refreshToken string) (Grant, error) {
	return a.token(ctx, shop, url.Values{"grant_type": {grantRefreshToken}, "refresh_token": {refreshToken}})
}

// ExchangeSessionToken trades an App Bridge session token for an expiring offline token pair
// (token exchange, for Shopify-managed installs).
func (a App) ExchangeSessionToken(ctx context.Context, shop, sessionToken string) (Grant, error) {
	return a.token(ctx, shop, url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {sessionToken},
		"subject_token_type":   {tokenTypeIDToken},
		"requested_token_type": {tokenTypeOfflineAccess},
		"expiring":             {"1"},
	})
}

func (a App) token(ctx context.Context, shop string, form url.Values) (Grant, error) {
	form.Set("client_id", a.APIKey)
	form.Set("client_secret", a.APISecret)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.ShopURL(shop)+"/admin/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return Grant{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	started := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return Grant{}, fmt.Errorf("shopify oauth %s: %w", shop, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Grant{}, fmt.Errorf("shopify oauth %s: read answer: %w", shop, err)
	}
	var ans tokenAnswer
	_ = json.Unmarshal(raw, &ans)
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Grant{}, fmt.Errorf("%w: %s %s", ErrGrantRefused, ans.Error, ans.ErrorDescription)
	case resp.StatusCode != http.StatusOK:
		return Grant{}, fmt.Errorf("shopify oauth %s: HTTP %d", shop, resp.StatusCode)
	case ans.AccessToken == "":
		return Grant{}, fmt.Errorf("shopify oauth %s: the answer has no access_token", shop)
	}
	g := Grant{Scope: ans.Scope, Credentials: core.Credentials{AccessToken: ans.AccessToken, RefreshToken: ans.RefreshToken}}
	if ans.ExpiresIn > 0 {
		t := started.Add(time.Duration(ans.ExpiresIn) * time.Second).UTC()
		g.Credentials.ExpiresAt = &t
	}
	if ans.RefreshTokenExpiresIn > 0 {
		t := started.Add(time.Duration(ans.RefreshTokenExpiresIn) * time.Second).UTC()
		g.Credentials.RefreshExpiresAt = &t
	}
	return g, nil
}

// CredentialStore keeps a connection's sealed credentials.
type CredentialStore interface {
	// Credentials returns the connection's credentials and their version.
	Credentials(ctx context.Context, merchantID, connectionID uuid.UUID) (core.Credentials, int64, error)
	// RefreshCredentials runs refresh on the current credentials under a lock on the connection
	// and stores what it returns, whole, when it says they changed. Concurrent refreshes of one
	// connection run one after the other, so a rotating refresh token is used once.
	RefreshCredentials(ctx context.Context, merchantID, connectionID uuid.UUID,
		refresh func(current core.Credentials) (next core.Credentials, changed bool, err error)) (core.Credentials, error)
}

// RefreshBefore is how long before expiry an access token is refreshed.
const RefreshBefore = 5 * time.Minute

// ErrNoCredentials means the connection has no token (it was disconnected or uninstalled).
var ErrNoCredentials = errors.New("shopify: the connection has no access token")

// Tokens hands out a connection's access token, refreshing it before it expires and when the
// shop said 401. Refreshed pairs are stored whole and atomically; when two processes refresh at
// once, the loser uses the winner's pair.
type Tokens struct {
	app   App
	store CredentialStore
	now   func() time.Time
}

// NewTokens returns the token source.
func NewTokens(app App, store CredentialStore) *Tokens {
	return &Tokens{app: app, store: store, now: time.Now}
}

// Access returns a usable access token for the connection; stale forces a refresh (the shop
// answered 401 to the token stale).
func (t *Tokens) Access(ctx context.Context, merchantID, connectionID uuid.UUID, shop, stale string) (string, error) {
	creds, _, err := t.store.Credentials(ctx, merchantID, connectionID)
	if err != nil {
		return "", err
	}
	if t.usable(creds, stale) {
		return creds.AccessToken, nil
	}
	next, err := t.store.RefreshCredentials(ctx, merchantID, connectionID, func(cur core.Credentials) (core.Credentials, bool, error) {
		switch {
		case t.usable(cur, stale):
			return cur, false, nil // another process refreshed while this one waited
		case cur.AccessToken == "":
			return cur, false, ErrNoCredentials
		case cur.RefreshToken == "":
			if cur.AccessToken != stale {
				return cur, false, nil // a non-expiring token: nothing to refresh
			}
			return cur, false, fmt.Errorf("%w: the access token was refused and there is no refresh token", ErrGrantRefused)
		}
		g, err := t.app.Refresh(ctx, shop, cur.RefreshToken)
		if err != nil {
			return cur, false, err
		}
		return g.Credentials, true, nil
	})
	// A refresh that failed for a passing reason (network, 5xx) leaves a token that has not
	// expired yet usable.
	if err != nil && !errors.Is(err, ErrGrantRefused) && !errors.Is(err, ErrNoCredentials) &&
		creds.AccessToken != "" && creds.AccessToken != stale && (creds.ExpiresAt == nil || t.now().Before(*creds.ExpiresAt)) {
		return creds.AccessToken, nil
	}
	if err != nil {
		return "", err
	}
	return next.AccessToken, nil
}

// usable reports whether creds hold an access token that is not the refused one and does not
// expire within RefreshBefore.
func (t *Tokens) usable(creds core.Credentials, stale string) bool {
	if creds.AccessToken == "" || creds.AccessToken == stale {
		return false
	}
	return creds.ExpiresAt == nil || t.now().Add(RefreshBefore).Before(*creds.ExpiresAt)
}
