package api

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

const (
	merchantKey = "coupongate.merchant"
	actorKey    = "coupongate.actor"
)

// authCacheTTL is how long a verified key is trusted without asking PostgreSQL again.
const authCacheTTL = 30 * time.Second

// keyCache remembers verified keys by their hash, so hot paths (allocation, validation) do not
// read the merchant on every request. It holds hashes, never keys.
type keyCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedMerchant
}

type cachedMerchant struct {
	merchant core.Merchant
	until    time.Time
}

func (k *keyCache) get(hash [32]byte) (core.Merchant, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.entries[hash]
	if !ok || time.Now().After(e.until) {
		return core.Merchant{}, false
	}
	return e.merchant, true
}

func (k *keyCache) put(hash [32]byte, m core.Merchant) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entries == nil || len(k.entries) > 10_000 {
		k.entries = map[[32]byte]cachedMerchant{}
	}
	k.entries[hash] = cachedMerchant{merchant: m, until: time.Now().Add(authCacheTTL)}
}

// adminAuth authenticates `Authorization: Bearer <api_key>`, or a Shopify session token from the
// embedded app (`Authorization: Bearer <JWT>`).
func (h *handlers) adminAuth(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		fail(c, core.ErrUnauthorized)
		return
	}
	if looksLikeJWT(token) {
		h.sessionTokenAuth(c, token)
		return
	}
	m, err := h.authenticate(c, &h.adminKeys, token, h.Merchants.Authenticate)
	if err != nil {
		fail(c, err)
		return
	}
	c.Set(merchantKey, m)
	c.Set(actorKey, "api_key:"+core.KeyFingerprint(token))
	c.Next()
}

// Session-token refusals: 401 with the code of every other refused credential.
var (
	errSessionTokenRefused = &core.Error{Kind: core.KindUnauthorized, Code: "unauthorized",
		Message: "the Shopify session token is not valid (signature, audience or expiry); ask App Bridge for a fresh one"}
	errSessionShopUnknown = &core.Error{Kind: core.KindUnauthorized, Code: "unauthorized",
		Message: "the shop of this Shopify session token is not connected to Coupongate"}
)

// looksLikeJWT tells a Shopify session token (three dot-separated parts) from an API key.
func looksLikeJWT(token string) bool {
	return !strings.HasPrefix(token, "cg_admin_") && strings.Count(token, ".") == 2
}

// sessionTokenAuth authenticates a Shopify session token sent by the embedded app: it must be
// signed with the app's secret for the app's API key and current; the shop in its dest claim must
// be connected, and the request acts for that shop's merchant. Nothing is cached, so a shop that
// uninstalls or disconnects loses access at once.
func (h *handlers) sessionTokenAuth(c *gin.Context, token string) {
	claims, err := shopify.VerifySessionToken(token, h.Config.ShopifyAPIKey, h.Config.ShopifyAPISecret, time.Now())
	if err != nil {
		h.Log.DebugContext(c, "shopify session token refused", "err", err)
		fail(c, errSessionTokenRefused)
		return
	}
	route, found, err := h.ShopRoutes.ShopRoute(c, shopify.Platform, claims.Shop)
	if err != nil {
		fail(c, err)
		return
	}
	if !found {
		fail(c, errSessionShopUnknown)
		return
	}
	m, err := h.Merchants.Get(c, route.MerchantID)
	if err != nil {
		if core.IsKind(err, core.KindUnauthorized) {
			err = errSessionShopUnknown
		}
		fail(c, err)
		return
	}
	c.Set(merchantKey, m)
	c.Set(actorKey, "shopify_session:"+claims.Shop)
	c.Next()
}

// storefrontAuth authenticates `X-Storefront-Key`.
func (h *handlers) storefrontAuth(c *gin.Context) {
	key := strings.TrimSpace(c.GetHeader("X-Storefront-Key"))
	if key == "" {
		fail(c, core.ErrStorefrontKey)
		return
	}
	m, err := h.authenticate(c, &h.storefrontKeys, key, h.Merchants.AuthenticateStorefront)
	if err != nil {
		fail(c, err)
		return
	}
	c.Set(merchantKey, m)
	c.Set(actorKey, "storefront_key:"+core.KeyFingerprint(key))
	c.Next()
}

func (h *handlers) authenticate(c *gin.Context, cache *keyCache, key string, verify func(context.Context, string) (core.Merchant, error)) (core.Merchant, error) {
	var hash [32]byte
	copy(hash[:], core.HashKey(key))
	if m, ok := cache.get(hash); ok {
		return m, nil
	}
	m, err := verify(c, key)
	if err != nil {
		return core.Merchant{}, err
	}
	cache.put(hash, m)
	return m, nil
}

// merchantID is the authenticated merchant's id.
func merchantID(c *gin.Context) uuid.UUID {
	return c.MustGet(merchantKey).(core.Merchant).ID
}

// actor names who acts in this request, for timelines: the key's fingerprint, never the key.
func actor(c *gin.Context) string {
	return c.GetString(actorKey)
}
