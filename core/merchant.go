package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Merchant is a tenant: a shop owner with its own lists, codes and keys.
type Merchant struct {
	ID        uuid.UUID
	Name      string
	CreatedAt time.Time
}

// MerchantKeys are a new merchant's keys in clear. They are shown once; only their hashes are kept.
type MerchantKeys struct {
	APIKey        string
	StorefrontKey string
}

// StoredMerchant is a merchant with its key hashes, as the store keeps it: the current keys and,
// after a rotation, the keys they replaced while those still have a grace period to run.
type StoredMerchant struct {
	Merchant
	APIKeyHash            []byte
	StorefrontKeyHash     []byte
	PreviousAPIKey        PreviousKey
	PreviousStorefrontKey PreviousKey
}

// MerchantStore keeps merchants.
type MerchantStore interface {
	CreateMerchant(ctx context.Context, m StoredMerchant) error
	// GetMerchant returns the merchant or ErrUnauthorized when there is none.
	GetMerchant(ctx context.Context, id uuid.UUID) (StoredMerchant, error)
	// RotateMerchantKey makes hash the merchant's current key of that kind and, in the same
	// statement, the key it replaces the previous one until previousExpires (dropping any older
	// previous key). It returns ErrMerchantNotFound when there is no such merchant.
	RotateMerchantKey(ctx context.Context, id uuid.UUID, kind KeyKind, hash []byte, previousExpires time.Time) error
}

// Key prefixes. A key is prefix + merchant id (32 hex) + "_" + 32 random bytes (64 hex): the id lets
// a key be checked with one primary-key read, the random part is what makes it secret.
const (
	apiKeyPrefix        = "cg_admin_"
	storefrontKeyPrefix = "cg_store_"
)

// Merchants creates merchants, authenticates their keys (AuthenticateKey) and rotates them.
type Merchants struct {
	store MerchantStore
	Clock
}

// NewMerchants returns the merchant service.
func NewMerchants(store MerchantStore) *Merchants {
	return &Merchants{store: store}
}

// Create makes a merchant and returns it with its keys in clear.
func (s *Merchants) Create(ctx context.Context, name string) (Merchant, MerchantKeys, error) {
	stored, keys, err := NewStoredMerchant(name, s.Now())
	if err != nil {
		return Merchant{}, MerchantKeys{}, err
	}
	if err := s.store.CreateMerchant(ctx, stored); err != nil {
		return Merchant{}, MerchantKeys{}, err
	}
	return stored.Merchant, keys, nil
}

// NewStoredMerchant makes a new merchant named name, with fresh keys: the record to store and
// the keys in clear. A shop installing the app gets its merchant this way, in the same
// transaction as its connection.
func NewStoredMerchant(name string, now time.Time) (StoredMerchant, MerchantKeys, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return StoredMerchant{}, MerchantKeys{}, Invalid("name", "must be 1 to 200 characters")
	}
	m := Merchant{ID: uuid.New(), Name: name, CreatedAt: now.UTC()}
	keys := MerchantKeys{APIKey: newKey(apiKeyPrefix, m.ID), StorefrontKey: newKey(storefrontKeyPrefix, m.ID)}
	return StoredMerchant{Merchant: m, APIKeyHash: HashKey(keys.APIKey), StorefrontKeyHash: HashKey(keys.StorefrontKey)}, keys, nil
}

// Get returns the merchant with this id, or ErrUnauthorized when there is none: it serves callers
// that authenticated the merchant some other way (a Shopify session token names a shop, and the
// shop's route names the merchant).
func (s *Merchants) Get(ctx context.Context, id uuid.UUID) (Merchant, error) {
	m, err := s.store.GetMerchant(ctx, id)
	if err != nil {
		return Merchant{}, err
	}
	return m.Merchant, nil
}

// HashKey is the stored form of a key: SHA-256. Keys carry 256 random bits, so a fast hash is
// enough; a slow password hash would only slow every request.
func HashKey(key string) []byte {
	sum := KeyDigest(key)
	return sum[:]
}

// KeyDigest is HashKey as an array: a map key, and no allocation on a hot path (the gateway hashes
// the key of every request to find it in its cache).
func KeyDigest(key string) [32]byte {
	return sha256.Sum256([]byte(key))
}

// KeyFingerprint names a key in logs and timelines without revealing it: the first 8 hex digits of
// its hash.
func KeyFingerprint(key string) string {
	return DigestFingerprint(KeyDigest(key))
}

// DigestFingerprint is KeyFingerprint of the key whose KeyDigest is given.
func DigestFingerprint(digest [32]byte) string {
	return hex.EncodeToString(digest[:4])
}

func newKey(prefix string, merchantID uuid.UUID) string {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux; nothing sensible to do
	}
	return prefix + hex.EncodeToString(merchantID[:]) + "_" + hex.EncodeToString(secret)
}

func merchantIDOfKey(prefix, key string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || len(rest) != 32+1+64 || rest[32] != '_' {
		return uuid.UUID{}, false
	}
	raw, err := hex.DecodeString(rest[:32])
	if err != nil {
		return uuid.UUID{}, false
	}
	id, err := uuid.FromBytes(raw)
	return id, err == nil
}

// IsKind reports whether err is a core *Error of that kind.
func IsKind(err error, kind Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}
