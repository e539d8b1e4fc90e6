package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

// ShopRoutes finds the merchant and connection of a connected shop (store.DB implements it).
type ShopRoutes interface {
	// ShopRoute finds the merchant of a connected shop; found is false for an unknown shop.
	ShopRoute(ctx context.Context, platform, shop string) (route shopify.ShopRoute, found bool, err error)
	// GetConnection returns one connection or core.ErrConnectionNotFound.
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
}

// Errors of the install, callback and app page.
var (
	errShopifyNotConfigured = &core.Error{Kind: core.KindUnavailable, Code: "shopify_not_configured",
		Message: "the Shopify app is not configured on this gateway: set SHOPIFY_API_KEY and SHOPIFY_API_SECRET"}
	errQuerySignature = &core.Error{Kind: core.KindUnauthorized, Code: "invalid_signature",
		Message: "the query's hmac is missing or does not match its parameters; open the app from Shopify again"}
	errQueryExpired = &core.Error{Kind: core.KindUnauthorized, Code: "request_expired",
		Message: "the query's timestamp is missing or more than 90 seconds from now; open the app from Shopify again"}
	errInstallShop = &core.Error{Kind: core.KindMalformed, Code: "invalid_shop",
		Message: "shop must be a <name>.myshopify.com domain"}
	errOAuthState = &core.Error{Kind: core.KindUnauthorized, Code: "invalid_state",
		Message: "the OAuth state does not match the one issued to this browser (missing, expired or for another shop); install the app again"}
	errMissingCode = &core.Error{Kind: core.KindMalformed, Code: "missing_code",
		Message: "the callback has no authorization code"}
	errGrantRefused = &core.Error{Kind: core.KindMalformed, Code: "grant_refused",
		Message: "Shopify refused the grant (the authorization code was used already or has expired); install the app again"}
	errInvalidSessionToken = &core.Error{Kind: core.KindUnauthorized, Code: "invalid_session_token",
		Message: "the id_token is not a valid, current Shopify session token for this shop"}
	errShopifyUnavailable = &core.Error{Kind: core.KindUnavailable, Code: "shopify_unavailable",
		Message: "Shopify could not be reached or gave an unexpected answer; try again in a moment"}
	errWebhooksNotSubscribed = &core.Error{Kind: core.KindUnavailable, Code: "webhook_subscription_failed",
		Message: "the shop is connected, but its webhooks could not be subscribed; install the app again"}
	errShopNotConnected = &core.Error{Kind: core.KindNotFound, Code: "shop_not_connected",
		Message: "this shop is not connected to Coupongate; install the app first"}
)

// The OAuth state cookie: it binds the state nonce of an install to the browser that started it.
const (
	stateCookieName = "coupongate_shopify_state"
	stateCookiePath = "/shopify"
	stateCookieTTL  = 10 * time.Minute
)

// stateCookieKey derives the cookie's signing key from the app secret, so the key signs nothing
// else.
func stateCookieKey(appSecret string) []byte {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write([]byte("coupongate/shopify-oauth-state/v1"))
	return m.Sum(nil)
}

// signState returns the cookie value: base64url("nonce|shop|expiry") "." base64url(HMAC-SHA256).
func signState(key []byte, nonce, shop string, expires time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(nonce + "|" + shop + "|" + strconv.FormatInt(expires.Unix(), 10)))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// openState checks the cookie's signature and expiry and returns its nonce and shop.
func openState(key []byte, value string, now time.Time) (nonce, shop string, ok bool) {
	payload, sig, found := strings.Cut(value, ".")
	if !found {
		return "", "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", "", false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	if !hmac.Equal(got, m.Sum(nil)) {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", "", false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 {
		return "", "", false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// shopifyConfigured answers 503 unless the app's key and secret are set.
func (h *handlers) shopifyConfigured(c *gin.Context) bool {
	if h.Config.ShopifyAPIKey == "" || h.Config.ShopifyAPISecret == "" {
		fail(c, errShopifyNotConfigured)
		return false
	}
	return true
}

// verifyShopifyQuery checks the shop and the signed query of an install, callback or app load,
// and returns the canonical shop.
func (h *handlers) verifyShopifyQuery(c *gin.Context) (url.Values, string, bool) {
	q := c.Request.URL.Query()
	if len(q["shop"]) > 1 {
		fail(c, errQuerySignature)
		return nil, "", false
	}
	shop, ok := shopify.CanonicalShop(q.Get("shop"))
	if !ok {
		fail(c, errInstallShop)
		return nil, "", false
	}
	err := shopify.VerifyQuery(q, h.Config.ShopifyAPISecret, time.Now())
	switch {
	case errors.Is(err, shopify.ErrExpired):
		fail(c, errQueryExpired)
		return nil, "", false
	case errors.Is(err, shopify.ErrInvalidShop):
		fail(c, errInstallShop)
		return nil, "", false
	case err != nil:
		fail(c, errQuerySignature)
		return nil, "", false
	}
	return q, shop, true
}

// shopifyInstall is GET /shopify/install, the app URL Shopify opens. A plain install starts the
// OAuth authorization-code grant: a fresh state nonce goes into a signed cookie and the browser is
// sent to the shop's authorize page. An embedded load (embedded=1 with an id_token session token,
// Shopify-managed installation) connects the shop by token exchange when it is not connected yet
// and sends it on to the dashboard (see renderAppPage).
func (h *handlers) shopifyInstall(c *gin.Context) {
	if !h.shopifyConfigured(c) {
		return
	}
	q, shop, ok := h.verifyShopifyQuery(c)
	if !ok {
		return
	}
	if q.Get("embedded") == "1" && q.Get("id_token") != "" {
		h.shopifyEmbeddedLoad(c, shop, q.Get("id_token"))
		return
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		fail(c, err)
		return
	}
	state := hex.EncodeToString(nonce)
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     stateCookieName,
		Value:    signState(stateCookieKey(h.Config.AppSecret), state, shop, time.Now().Add(stateCookieTTL)),
		Path:     stateCookiePath,
		MaxAge:   int(stateCookieTTL / time.Second),
		HttpOnly: true,
		Secure:   h.secureCookies(),
		SameSite: http.SameSiteLaxMode,
	})
	redirect(c, h.ShopifyInstaller.App().AuthorizeURL(shop, strings.TrimRight(h.Config.AppURL, "/")+"/shopify/callback", state))
}

// shopifyCallback is GET /shopify/callback, where Shopify sends the merchant back after approving
// the app: the query's hmac, the shop and the state (against the signed cookie) are checked before
// the code is exchanged; then the shop is installed and the browser goes to the app in the
// Shopify admin.
func (h *handlers) shopifyCallback(c *gin.Context) {
	if !h.shopifyConfigured(c) {
		return
	}
	q, shop, ok := h.verifyShopifyQuery(c)
	if !ok {
		return
	}
	cookie, err := c.Request.Cookie(stateCookieName)
	if err != nil {
		fail(c, errOAuthState)
		return
	}
	nonce, cookieShop, ok := openState(stateCookieKey(h.Config.AppSecret), cookie.Value, time.Now())
	if !ok || cookieShop != shop || len(q["state"]) != 1 ||
		subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(nonce)) != 1 {
		fail(c, errOAuthState)
		return
	}
	// The nonce is used up, whatever happens next.
	http.SetCookie(c.Writer, &http.Cookie{Name: stateCookieName, Value: "", Path: stateCookiePath, MaxAge: -1,
		HttpOnly: true, Secure: h.secureCookies(), SameSite: http.SameSiteLaxMode})
	code := q.Get("code")
	if code == "" {
		fail(c, errMissingCode)
		return
	}
	grant, err := h.ShopifyInstaller.App().ExchangeCode(c.Request.Context(), shop, code)
	if err != nil {
		fail(c, h.grantError(c.Request.Context(), shop, err))
		return
	}
	if !h.installShop(c, shop, grant) {
		return
	}
	redirect(c, adminAppURL(q.Get("host"), shop, h.Config.ShopifyAPIKey))
}

// shopifyEmbeddedLoad serves a load of the app inside the Shopify admin: the session token must be
// for the query's shop; a shop not connected yet is connected by token exchange.
func (h *handlers) shopifyEmbeddedLoad(c *gin.Context, shop, idToken string) {
	if !h.checkIDToken(c, shop, idToken) {
		return
	}
	_, connected, err := h.shopConnection(c.Request.Context(), shop)
	if err != nil {
		fail(c, err)
		return
	}
	if !connected {
		grant, err := h.ShopifyInstaller.App().ExchangeSessionToken(c.Request.Context(), shop, idToken)
		if err != nil {
			fail(c, h.grantError(c.Request.Context(), shop, err))
			return
		}
		if !h.installShop(c, shop, grant) {
			return
		}
		if _, connected, err = h.shopConnection(c.Request.Context(), shop); err != nil || !connected {
			fail(c, errors.Join(errors.New("the shop was installed but its connection cannot be read"), err))
			return
		}
	}
	h.renderAppPage(c, shop)
}

// shopifyApp is GET /shopify/app: the app of a connected shop, sent on to the dashboard, for a
// load Shopify signed (and, when it carries one, for the id_token's shop). It never installs;
// /shopify/install does.
func (h *handlers) shopifyApp(c *gin.Context) {
	if !h.shopifyConfigured(c) {
		return
	}
	q, shop, ok := h.verifyShopifyQuery(c)
	if !ok {
		return
	}
	if tok := q.Get("id_token"); tok != "" && !h.checkIDToken(c, shop, tok) {
		return
	}
	_, connected, err := h.shopConnection(c.Request.Context(), shop)
	if err != nil {
		fail(c, err)
		return
	}
	if !connected {
		fail(c, errShopNotConnected)
		return
	}
	h.renderAppPage(c, shop)
}

// checkIDToken verifies an id_token session token and that it is for shop.
func (h *handlers) checkIDToken(c *gin.Context, shop, idToken string) bool {
	claims, err := shopify.VerifySessionToken(idToken, h.Config.ShopifyAPIKey, h.Config.ShopifyAPISecret, time.Now())
	if err != nil || claims.Shop != shop {
		h.Log.DebugContext(c.Request.Context(), "shopify id_token refused", "shop", shop, "err", err)
		fail(c, errInvalidSessionToken)
		return false
	}
	return true
}

// shopConnection returns the shop's connection when the shop is routed to an active one.
func (h *handlers) shopConnection(ctx context.Context, shop string) (core.Connection, bool, error) {
	route, found, err := h.ShopRoutes.ShopRoute(ctx, shopify.Platform, shop)
	if err != nil || !found {
		return core.Connection{}, false, err
	}
	conn, err := h.ShopRoutes.GetConnection(ctx, route.MerchantID, route.ConnectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return core.Connection{}, false, nil
	}
	if err != nil {
		return core.Connection{}, false, err
	}
	return conn, conn.State == core.ConnectionActive, nil
}

// installShop connects the shop with a fresh grant; it answers the request itself on failure.
func (h *handlers) installShop(c *gin.Context, shop string, g shopify.Grant) bool {
	route, _, err := h.ShopifyInstaller.Install(c.Request.Context(), shop, g)
	if err == nil {
		return true
	}
	var ce *core.Error
	switch {
	case errors.As(err, &ce):
		fail(c, err) // scopes missing: 409
	case route.ConnectionID != uuid.Nil:
		// Stored, but the webhook subscriptions failed.
		h.Log.ErrorContext(c.Request.Context(), "shopify install: webhook subscription failed", "shop", shop, "err", err)
		fail(c, errWebhooksNotSubscribed)
	default:
		fail(c, err)
	}
	return false
}

// grantError maps a failed token request to the answer.
func (h *handlers) grantError(ctx context.Context, shop string, err error) error {
	if errors.Is(err, shopify.ErrGrantRefused) {
		h.Log.WarnContext(ctx, "shopify refused the grant", "shop", shop, "err", err)
		return errGrantRefused
	}
	h.Log.ErrorContext(ctx, "shopify token request failed", "shop", shop, "err", err)
	return errShopifyUnavailable
}

// secureCookies is whether cookies get the Secure attribute: when the gateway is served over https.
func (h *handlers) secureCookies() bool {
	return strings.HasPrefix(strings.ToLower(h.Config.AppURL), "https://")
}

// redirect answers 302 to location, without a body.
func redirect(c *gin.Context, location string) {
	c.Header("Location", location)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusFound)
}

// storeHandleRE is the store handle of an admin.shopify.com/store/{handle} host.
var storeHandleRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// adminAppURL is where the merchant lands after the callback: the app's page in the Shopify admin
// named by the callback's host parameter (base64 of "{shop}/admin" or
// "admin.shopify.com/store/{handle}", without padding), or the shop's own admin when host is
// absent or names anything else.
func adminAppURL(hostParam, shop, apiKey string) string {
	tail := "/apps/" + url.PathEscape(apiKey)
	fallback := "https://" + shop + "/admin" + tail
	raw := strings.TrimRight(hostParam, "=")
	if raw == "" {
		return fallback
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(raw); err != nil {
			return fallback
		}
	}
	host := string(b)
	if s, ok := strings.CutSuffix(host, "/admin"); ok {
		if canon, ok := shopify.CanonicalShop(s); ok && canon == shop {
			return "https://" + canon + "/admin" + tail
		}
		return fallback
	}
	if handle, ok := strings.CutPrefix(host, "admin.shopify.com/store/"); ok && len(handle) <= 63 && storeHandleRE.MatchString(handle) {
		return "https://admin.shopify.com/store/" + handle + tail
	}
	return fallback
}

// renderAppPage sends a load of the app to the dashboard: inside the Shopify admin (embedded=1) to
// /app with the same query, where the id_token is checked (or fetched by the bounce page) and the
// merchant's lists are shown; outside it to the app's page in the shop's admin, which loads it
// embedded.
func (h *handlers) renderAppPage(c *gin.Context, shop string) {
	q := c.Request.URL.Query()
	if q.Get("embedded") != "1" {
		redirect(c, adminAppURL(q.Get("host"), shop, h.Config.ShopifyAPIKey))
		return
	}
	redirect(c, "/app?"+c.Request.URL.RawQuery)
}
