package core

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/google/uuid"
)

// KeyKind names one of a merchant's two keys.
type KeyKind string

// The kinds of key a merchant has.
const (
	// KeyAdmin is the admin API key (Authorization: Bearer cg_admin_…).
	KeyAdmin KeyKind = "admin"
	// KeyStorefront is the storefront key (X-Storefront-Key: cg_store_…).
	KeyStorefront KeyKind = "storefront"
)

// MaxKeyGrace is the longest a replaced key may keep working after a rotation: 30 days.
const MaxKeyGrace = 30 * 24 * time.Hour

// Key rotation errors.
var (
	ErrKeyKindNotFound  = newError(KindNotFound, "key_kind_not_found", "no such key; the keys are admin and storefront")
	ErrMerchantNotFound = newError(KindNotFound, "merchant_not_found", "no such merchant")
)

// ParseKeyKind reads "admin" or "storefront"; anything else is ErrKeyKindNotFound.
func ParseKeyKind(s string) (KeyKind, error) {
	switch k := KeyKind(s); k {
	case KeyAdmin, KeyStorefront:
		return k, nil
	}
	return "", ErrKeyKindNotFound
}

func (k KeyKind) prefix() string {
	if k == KeyStorefront {
		return storefrontKeyPrefix
	}
	return apiKeyPrefix
}

// PreviousKey is the stored form of the key a rotation replaced: its hash, and the time it stops
// working. The zero PreviousKey is none.
type PreviousKey struct {
	Hash    []byte
	Expires time.Time
}

// RotatedKey is the outcome of a rotation: the new key in clear, shown once (only its hash is
// kept), and when the key it replaced stops working.
type RotatedKey struct {
	Kind KeyKind
	Key  string
	// PreviousExpiresAt is the end of the grace period: the replaced key works until then, and is
	// refused from then on. With no grace it is the time of the rotation.
	PreviousExpiresAt time.Time
}

// AuthenticatedKey is an accepted key: its merchant, and when the key stops working.
type AuthenticatedKey struct {
	Merchant Merchant
	// Expires is the end of a previous key's grace period; zero for a current key, which works
	// until it is rotated.
	Expires time.Time
}

// RotateKey replaces the merchant's key of that kind with a new one and returns it in clear. The
// key it replaces becomes the previous key and keeps working for grace (0 to MaxKeyGrace), then
// is refused; a previous key left from an earlier rotation is dropped and stops at once, so a
// kind has at most two working keys. The other kind of key and other merchants' keys are not
// touched.
func (s *Merchants) RotateKey(ctx context.Context, merchantID uuid.UUID, kind KeyKind, grace time.Duration) (RotatedKey, error) {
	if _, err := ParseKeyKind(string(kind)); err != nil {
		return RotatedKey{}, err
	}
	if grace < 0 || grace > MaxKeyGrace {
		return RotatedKey{}, Invalid("grace_seconds", "must be 0 to 2592000 seconds (30 days)")
	}
	key := newKey(kind.prefix(), merchantID)
	expires := s.Now().UTC().Add(grace).Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	if err := s.store.RotateMerchantKey(ctx, merchantID, kind, HashKey(key), expires); err != nil {
		return RotatedKey{}, err
	}
	return RotatedKey{Kind: kind, Key: key, PreviousExpiresAt: expires}, nil
}

// KeyState is what may be shown of one of a merchant's keys: never the key (only its hash is
// kept), but whether the key its last rotation replaced still works, and until when.
type KeyState struct {
	Kind KeyKind
	// PreviousExpiresAt is the end of the replaced key's grace period while it still works; nil
	// when no replaced key works any more.
	PreviousExpiresAt *time.Time
}

// KeyStates returns the state of the merchant's admin and storefront keys, in that order.
func (s *Merchants) KeyStates(ctx context.Context, merchantID uuid.UUID) ([]KeyState, error) {
	m, err := s.store.GetMerchant(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := make([]KeyState, 0, 2)
	for _, k := range []struct {
		kind KeyKind
		prev PreviousKey
	}{{KeyAdmin, m.PreviousAPIKey}, {KeyStorefront, m.PreviousStorefrontKey}} {
		st := KeyState{Kind: k.kind}
		if len(k.prev.Hash) > 0 && now.Before(k.prev.Expires) {
			t := k.prev.Expires.UTC()
			st.PreviousExpiresAt = &t
		}
		out = append(out, st)
	}
	return out, nil
}

// AuthenticateKey returns the merchant whose key of that kind this is: its current key, or the
// previous one until the end of its grace period. Any other key is ErrUnauthorized (admin) or
// ErrStorefrontKey (storefront).
func (s *Merchants) AuthenticateKey(ctx context.Context, kind KeyKind, key string) (AuthenticatedKey, error) {
	fail := ErrUnauthorized
	if kind == KeyStorefront {
		fail = ErrStorefrontKey
	}
	id, ok := merchantIDOfKey(kind.prefix(), key)
	if !ok {
		return AuthenticatedKey{}, fail
	}
	m, err := s.store.GetMerchant(ctx, id)
	if err != nil {
		if IsKind(err, KindUnauthorized) {
			return AuthenticatedKey{}, fail
		}
		return AuthenticatedKey{}, err
	}
	stored, prev := m.APIKeyHash, m.PreviousAPIKey
	if kind == KeyStorefront {
		stored, prev = m.StorefrontKeyHash, m.PreviousStorefrontKey
	}
	hash := HashKey(key)
	// Both comparisons always run, so the answer's timing does not tell which key matched.
	current := subtle.ConstantTimeCompare(stored, hash) == 1
	previous := subtle.ConstantTimeCompare(prev.Hash, hash) == 1
	switch {
	case current:
		return AuthenticatedKey{Merchant: m.Merchant}, nil
	case previous && s.Now().Before(prev.Expires):
		return AuthenticatedKey{Merchant: m.Merchant, Expires: prev.Expires}, nil
	}
	return AuthenticatedKey{}, fail
}
