package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// memScanner is an in-memory ScannerStore with the store's unique (merchant, digest) rule.
type memScanner struct {
	mu      sync.Mutex
	digests map[uuid.UUID][]byte // user → digest
}

func (m *memScanner) ScannerSettings(_ context.Context, _, userID uuid.UUID) (ScannerSettings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return ScannerSettings{HasPIN: m.digests[userID] != nil}, nil
}

func (m *memScanner) SetScannerPIN(_ context.Context, _, userID uuid.UUID, digest []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for u, d := range m.digests {
		if u != userID && digest != nil && bytes.Equal(d, digest) {
			return ErrScannerPINTaken
		}
	}
	m.digests[userID] = digest
	return nil
}

func (m *memScanner) SetScanLists(context.Context, uuid.UUID, uuid.UUID, []uuid.UUID) error {
	return nil
}

func (m *memScanner) ScannerPINOwner(_ context.Context, _ uuid.UUID, digest []byte) (ScannerPIN, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for u, d := range m.digests {
		if d != nil && bytes.Equal(d, digest) {
			return ScannerPIN{User: User{ID: u}}, true, nil
		}
	}
	return ScannerPIN{}, false, nil
}

// draws is the random source of PINs n...: four big-endian bytes each.
func draws(n ...uint32) io.Reader {
	var b []byte
	for _, v := range n {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return bytes.NewReader(b)
}

// TestScannerNewPINNeverShared: two people never get the same PIN: when the draw gives a PIN a
// teammate has, Coupongate draws again, so the second person gets another PIN and the first
// keeps theirs. Draws past the last full run of 10^6 below 2^32 are drawn again too.
func TestScannerNewPINNeverShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &memScanner{digests: map[uuid.UUID][]byte{}}
	s := NewScanner(store, nil, ScannerLimits{}, "a test secret of enough length", slog.New(slog.DiscardHandler))
	merchant, ann, bob := uuid.New(), uuid.New(), uuid.New()

	s.rand = draws(4_294_967_295, 42)
	pinAnn, err := s.NewPIN(ctx, merchant, ann)
	if err != nil || pinAnn != "000042" {
		t.Fatalf("Ann's PIN: %q %v", pinAnn, err)
	}
	s.rand = draws(1_000_042, 7_123_456) // 000042 again (taken), then 123456
	pinBob, err := s.NewPIN(ctx, merchant, bob)
	if err != nil || pinBob != "123456" {
		t.Fatalf("Bob's PIN after a draw of Ann's: %q %v", pinBob, err)
	}
	for pin, want := range map[string]uuid.UUID{pinAnn: ann, pinBob: bob} {
		p, ok, err := store.ScannerPINOwner(ctx, merchant, s.pinDigest(merchant, pin))
		if err != nil || !ok || p.User.ID != want {
			t.Fatalf("PIN %s names %v (%v %v), want %v", pin, p.User.ID, ok, err, want)
		}
	}

	// The digest is keyed and covers the merchant: the same PIN of another merchant or under
	// another secret is another digest, and the PIN is not in it.
	other := NewScanner(store, nil, ScannerLimits{}, "another test secret, long enough", slog.New(slog.DiscardHandler))
	d := s.pinDigest(merchant, pinAnn)
	if len(d) != 32 || bytes.Equal(d, s.pinDigest(uuid.New(), pinAnn)) || bytes.Equal(d, other.pinDigest(merchant, pinAnn)) ||
		bytes.Contains(d, []byte(pinAnn)) {
		t.Fatalf("digest %x", d)
	}

	// A random source that fails is an error, not a PIN.
	s.rand = draws()
	if pin, err := s.NewPIN(ctx, merchant, ann); err == nil || !errors.Is(err, io.EOF) {
		t.Fatalf("no randomness: %q %v", pin, err)
	}
}
