package api

import (
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

// authCacheTTL is how long a verified key is trusted without asking PostgreSQL again. A key
// replaced by a rotation in another gateway process may go on working here for that long.
const authCacheTTL = 30 * time.Second

// keyCache remembers verified keys by their hash, so hot paths (allocation, validation) do not
// read the merchant on every request. It holds hashes, never keys. An entry lasts authCacheTTL,
// and never past the end of a replaced key's grace period.
type keyCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedMerchant
	// gen counts forget calls: a key verified before a rotation is not cached after it.
	gen uint64
}

type cachedMerchant struct {
	merchant core.Merchant
	actor    string // who acts with the key, for timelines (see actorOfKey)
	until    time.Time
}

// get returns the cached merchant of a key and the actor it names, or false and the generation to
// give put.
func (k *keyCache) get(hash [32]byte, now time.Time) (core.Merchant, string, uint64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.entries[hash]
	if !ok || !now.Before(e.until) {
		return core.Merchant{}, "", k.gen, false
	}
	return e.merchant, e.actor, k.gen, true
}

// put remembers a key verified since get returned gen, until now+authCacheTTL or until the key
// expires, whichever comes first; nothing when a rotation happened meanwhile.
func (k *keyCache) put(hash [32]byte, gen uint64, a core.AuthenticatedKey, actor string, now time.Time) {
	until := now.Add(authCacheTTL)
	if !a.Expires.IsZero() && a.Expires.Before(until) {
		until = a.Expires
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen != k.gen {
		return
	}
	if k.entries == nil || len(k.entries) > 10_000 {
		k.entries = map[[32]byte]cachedMerchant{}
	}
	k.entries[hash] = cachedMerchant{merchant: a.Merchant, actor: actor, until: until}
}

// forget drops the merchant's entries, so a rotation takes effect in this process at once.
func (k *keyCache) forget(merchantID uuid.UUID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen++
	for h, e := range k.entries {
		if e.merchant.ID == merchantID {
			delete(k.entries, h)
		}
	}
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
	m, actor, err := h.authenticate(c, &h.adminKeys, core.KeyAdmin, token)
	if err != nil {
		fail(c, err)
		return
	}
	c.Set(merchantKey, m)
	c.Set(actorKey, actor)
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
		h.Log.DebugContext(c.Request.Context(), "shopify session token refused", "err", err)
		fail(c, errSessionTokenRefused)
		return
	}
	route, found, err := h.ShopRoutes.ShopRoute(c.Request.Context(), shopify.Platform, claims.Shop)
	if err != nil {
		fail(c, err)
		return
	}
	if !found {
		fail(c, errSessionShopUnknown)
		return
	}
	m, err := h.Merchants.Get(c.Request.Context(), route.MerchantID)
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
	m, actor, err := h.authenticate(c, &h.storefrontKeys, core.KeyStorefront, key)
	if err != nil {
		fail(c, err)
		return
	}
	c.Set(merchantKey, m)
	c.Set(actorKey, actor)
	c.Next()
}

// authenticate checks a key of that kind, through the cache, and names the actor acting with it
// ("api_key:" or "storefront_key:" and the key's fingerprint). The cache runs on the merchant
// service's clock, the one that decides when a replaced key stops. A cached key costs one hash
// and no allocation.
func (h *handlers) authenticate(c *gin.Context, cache *keyCache, kind core.KeyKind, key string) (core.Merchant, string, error) {
	hash := core.KeyDigest(key)
	m, actor, gen, ok := cache.get(hash, h.Merchants.Now())
	if ok {
		return m, actor, nil
	}
	a, err := h.Merchants.AuthenticateKey(c.Request.Context(), kind, key)
	if err != nil {
		return core.Merchant{}, "", err
	}
	actor = actorOfKey(kind, hash)
	cache.put(hash, gen, a, actor, h.Merchants.Now())
	return a.Merchant, actor, nil
}

// actorOfKey names who acts with a key of that kind, given its core.KeyDigest: the kind and the
// key's fingerprint.
func actorOfKey(kind core.KeyKind, digest [32]byte) string {
	prefix := "api_key:"
	if kind == core.KeyStorefront {
		prefix = "storefront_key:"
	}
	return prefix + core.DigestFingerprint(digest)
}

// merchantID is the authenticated merchant's id.
func merchantID(c *gin.Context) uuid.UUID {
	return c.MustGet(merchantKey).(core.Merchant).ID
}

// actor names who acts in this request, for timelines: the key's fingerprint, never the key.
func actor(c *gin.Context) string {
	return c.GetString(actorKey)
}
