package shopifyfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Grant types and token types the access_token endpoint understands.
const (
	GrantRefreshToken       = "refresh_token"
	GrantTokenExchange      = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeIDToken        = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeOfflineAccess  = "urn:shopify:params:oauth:token-type:offline-access-token"
	TokenTypeOnlineAccess   = "urn:shopify:params:oauth:token-type:online-access-token"
	refreshTokenLifetime    = 90 * 24 * time.Hour
	accessTokenLifetime     = time.Hour
	onlineAccessTokenExpiry = 86399
	authCodeLifetime        = 10 * time.Minute
)

// AuthorizeRequest is a recorded GET /{shop}/admin/oauth/authorize.
type AuthorizeRequest struct {
	Shop  string
	Query url.Values
	At    time.Time
}

type accessToken struct {
	shop      string
	scope     string
	expiresAt time.Time // zero: never
}

type refreshGrant struct {
	shop      string
	scope     string
	expiresAt time.Time
}

type authCode struct {
	shop      string
	scope     string
	expiresAt time.Time
}

type grant struct {
	access, refresh string
	scope           string
	expiring        bool
}

func (f *Fake) grantLocked(shopDomain, scope string, expiring bool) grant {
	now := f.cfg.Now()
	g := grant{access: "shpat_" + randomHex(16), scope: scope, expiring: expiring}
	t := &accessToken{shop: shopDomain, scope: scope}
	if expiring {
		t.expiresAt = now.Add(accessTokenLifetime)
		g.refresh = "shprt_" + randomHex(16)
		f.refreshes[g.refresh] = &refreshGrant{shop: shopDomain, scope: scope, expiresAt: now.Add(refreshTokenLifetime)}
	}
	f.tokens[g.access] = t
	return g
}

func (g grant) body() map[string]any {
	out := map[string]any{"access_token": g.access, "scope": g.scope}
	if g.expiring {
		out["expires_in"] = int(accessTokenLifetime / time.Second)
		out["refresh_token"] = g.refresh
		out["refresh_token_expires_in"] = int(refreshTokenLifetime / time.Second)
	}
	return out
}

func (f *Fake) tokenValid(token, shopDomain string) bool {
	if token == "" {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tokens[token]
	return t != nil && t.shop == shopDomain && (t.expiresAt.IsZero() || f.cfg.Now().Before(t.expiresAt))
}

// ExpireToken makes an access token expire now, as an hour passing would.
func (f *Fake) ExpireToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tokens[token]; t != nil {
		t.expiresAt = f.cfg.Now().Add(-time.Second)
	}
}

// AuthorizeRequests returns the authorize requests received so far.
func (f *Fake) AuthorizeRequests() []AuthorizeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AuthorizeRequest(nil), f.authorize...)
}

// SignQuery returns Shopify's hex HMAC-SHA256 of a query: the parameters
// other than hmac and signature, sorted, joined as k=v with &.
func SignQuery(secret string, q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "hmac" && k != "signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strings.Join(q[k], ","))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strings.Join(parts, "&")))
	return hex.EncodeToString(m.Sum(nil))
}

// serveAuthorize records the request and, as a merchant approving the app
// would, redirects to redirect_uri with code, hmac, host, shop, state and
// timestamp.
func (f *Fake) serveAuthorize(w http.ResponseWriter, r *http.Request, shopDomain string) {
	q := r.URL.Query()
	f.mu.Lock()
	f.authorize = append(f.authorize, AuthorizeRequest{Shop: shopDomain, Query: q, At: f.cfg.Now()})
	f.mu.Unlock()
	if q.Get("client_id") != f.cfg.ClientID {
		http.Error(w, "Oauth error invalid_request: The client_id is invalid", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Host == "" {
		http.Error(w, "Oauth error invalid_request: The redirect_uri is missing or not whitelisted", http.StatusBadRequest)
		return
	}
	scope := q.Get("scope")
	if scope == "" {
		scope = f.cfg.Scopes
	}
	code := randomHex(16)
	f.mu.Lock()
	f.codes[code] = &authCode{shop: shopDomain, scope: scope, expiresAt: f.cfg.Now().Add(authCodeLifetime)}
	f.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("shop", shopDomain)
	back.Set("state", q.Get("state"))
	back.Set("timestamp", strconv.FormatInt(f.cfg.Now().Unix(), 10))
	back.Set("host", base64.RawURLEncoding.EncodeToString([]byte(shopDomain+"/admin")))
	back.Set("hmac", SignQuery(f.cfg.ClientSecret, back))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

// serveAccessToken exchanges an authorization code, a refresh token or a
// token-exchange subject for an access token; form or JSON bodies.
func (f *Fake) serveAccessToken(w http.ResponseWriter, r *http.Request, shopDomain string) {
	p := make(map[string]string)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&m); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "body is not JSON")
			return
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				p[k] = x
			case float64:
				p[k] = strconv.FormatFloat(x, 'f', -1, 64)
			case bool:
				p[k] = strconv.FormatBool(x)
			}
		}
	} else {
		if err := r.ParseForm(); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "unreadable form")
			return
		}
		for k := range r.Form {
			p[k] = r.Form.Get(k)
		}
	}
	if p["client_id"] != f.cfg.ClientID || !hmac.Equal([]byte(p["client_secret"]), []byte(f.cfg.ClientSecret)) {
		oauthError(w, http.StatusBadRequest, "invalid_client", "client_id or client_secret is invalid")
		return
	}
	expiring := p["expiring"] == "1" || p["expiring"] == "true"
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch p["grant_type"] {
	case "", "authorization_code":
		c := f.codes[p["code"]]
		if c == nil || c.shop != shopDomain || now.After(c.expiresAt) {
			oauthError(w, http.StatusBadRequest, "invalid_request", "The authorization code was not found or was already used")
			return
		}
		delete(f.codes, p["code"]) // single use
		writeJSON(w, http.StatusOK, f.grantLocked(shopDomain, c.scope, expiring).body())
	case GrantRefreshToken:
		g := f.refreshes[p["refresh_token"]]
		if g == nil || g.shop != shopDomain || now.After(g.expiresAt) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is invalid or expired")
			return
		}
		delete(f.refreshes, p["refresh_token"]) // rotated; the old access token stays valid until it expires
		writeJSON(w, http.StatusOK, f.grantLocked(shopDomain, g.scope, true).body())
	case GrantTokenExchange:
		switch p["subject_token_type"] {
		case TokenTypeIDToken:
			if err := verifySessionToken(p["subject_token"], f.cfg.ClientSecret, f.cfg.ClientID, shopDomain, now); err != "" {
				oauthError(w, http.StatusBadRequest, "invalid_subject_token", err)
				return
			}
			if p["requested_token_type"] == TokenTypeOnlineAccess {
				g := f.grantLocked(shopDomain, f.cfg.Scopes, false)
				f.tokens[g.access].expiresAt = now.Add(onlineAccessTokenExpiry * time.Second)
				writeJSON(w, http.StatusOK, map[string]any{
					"access_token": g.access, "scope": g.scope, "expires_in": onlineAccessTokenExpiry,
					"associated_user_scope": g.scope,
					"associated_user": map[string]any{"id": 1, "first_name": "Test", "last_name": "User",
						"email": "owner@example.com", "email_verified": true, "account_owner": true, "locale": "en", "collaborator": false},
				})
				return
			}
			writeJSON(w, http.StatusOK, f.grantLocked(shopDomain, f.cfg.Scopes, expiring).body())
		case TokenTypeOfflineAccess:
			// Migrating a non-expiring offline token to an expiring one.
			t := f.tokens[p["subject_token"]]
			if t == nil || t.shop != shopDomain || !t.expiresAt.IsZero() || !expiring {
				oauthError(w, http.StatusBadRequest, "invalid_subject_token", "subject token is not a non-expiring offline token of this shop")
				return
			}
			delete(f.tokens, p["subject_token"])
			writeJSON(w, http.StatusOK, f.grantLocked(shopDomain, t.scope, true).body())
		default:
			oauthError(w, http.StatusBadRequest, "invalid_request", "unsupported subject_token_type")
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
	}
}

// SessionToken mints an App Bridge session token (HS256 JWT signed with the
// client secret) for shopDomain, valid for ttl.
func (f *Fake) SessionToken(shopDomain string, ttl time.Duration) string {
	now := f.cfg.Now()
	claims := map[string]any{
		"iss":  "https://" + shopDomain + "/admin",
		"dest": "https://" + shopDomain,
		"aud":  f.cfg.ClientID,
		"sub":  "1",
		"exp":  now.Add(ttl).Unix(),
		"nbf":  now.Add(-time.Second).Unix(),
		"iat":  now.Unix(),
		"jti":  randomHex(8),
		"sid":  randomHex(8),
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload, _ := json.Marshal(claims)
	signing := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, []byte(f.cfg.ClientSecret))
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifySessionToken checks an HS256 session token; it returns "" when valid.
func verifySessionToken(tok, secret, clientID, shopDomain string, now time.Time) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "malformed session token"
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		return "bad session token signature"
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Dest string  `json:"dest"`
		Aud  string  `json:"aud"`
		Exp  float64 `json:"exp"`
		Nbf  float64 `json:"nbf"`
	}
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return "unreadable session token claims"
	}
	u, err := url.Parse(c.Dest)
	switch {
	case c.Aud != clientID:
		return "session token audience mismatch"
	case err != nil || u.Host != shopDomain:
		return "session token destination mismatch"
	case float64(now.Unix()) >= c.Exp:
		return "session token expired"
	case float64(now.Unix())+10 < c.Nbf:
		return "session token not yet valid"
	}
	return ""
}
