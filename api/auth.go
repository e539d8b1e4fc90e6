package api

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
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

// adminAuth authenticates `Authorization: Bearer <api_key>`.
func (h *handlers) adminAuth(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		fail(c, core.ErrUnauthorized)
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
