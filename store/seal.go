package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// sealVersion is the first byte of every sealed value, so the scheme can change later.
const sealVersion = 1

// Sealer encrypts credentials at rest with AES-256-GCM under a key derived from APP_SECRET
// (HKDF-SHA256). The row's identity is the additional data, so a sealed value copied into
// another row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the credentials key from the application secret.
func NewSealer(appSecret string) (*Sealer, error) {
	if len(appSecret) < 16 {
		return nil, errors.New("seal: APP_SECRET must be at least 16 characters")
	}
	key, err := hkdf.Key(sha256.New, []byte(appSecret), nil, "coupongate credentials v1", 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain, bound to the row named by ad.
func (s *Sealer) Seal(plain, ad []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		panic(err)
	}
	return s.aead.Seal(out, out[1:], plain, ad)
}

// ErrUnseal means a sealed value does not open: another APP_SECRET, another row, or tampering.
var ErrUnseal = errors.New("seal: sealed value does not open (was APP_SECRET changed?)")

// Open decrypts a value sealed for the row named by ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrUnseal
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, ErrUnseal
	}
	return plain, nil
}
