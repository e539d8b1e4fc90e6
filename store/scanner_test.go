package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// TestScannerPINDigestUnique: a scanner PIN's digest names one person of a merchant: the unique
// index refuses it to a teammate (core.ErrScannerPINTaken, so core draws again) but not to a
// person of another merchant; the digest finds its person; a cleared PIN finds no one and is free.
func TestScannerPINDigestUnique(t *testing.T) {
	t.Parallel()
	db := open(t)
	users := usersOf(db)
	ctx := context.Background()
	invite := func(merchant uuid.UUID) uuid.UUID {
		t.Helper()
		u, _, err := users.Invite(ctx, merchant, core.InviteInput{Email: uniqueEmail("pin"), Role: core.RoleStaff})
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	merchant, elsewhere := newMerchant(t, db), newMerchant(t, db)
	ann, bob, cat := invite(merchant), invite(merchant), invite(elsewhere)
	digest := bytes.Repeat([]byte{7}, 32)

	if err := db.SetScannerPIN(ctx, merchant, ann, digest); err != nil {
		t.Fatal(err)
	}
	if err := db.SetScannerPIN(ctx, merchant, bob, digest); !errors.Is(err, core.ErrScannerPINTaken) {
		t.Fatalf("a teammate's digest: %v", err)
	}
	if err := db.SetScannerPIN(ctx, elsewhere, cat, digest); err != nil {
		t.Fatalf("the same digest at another merchant: %v", err)
	}
	if p, ok, err := db.ScannerPINOwner(ctx, merchant, digest); err != nil || !ok || p.User.ID != ann {
		t.Fatalf("the digest's person: %+v %v %v", p, ok, err)
	}
	if set, err := db.ScannerSettings(ctx, merchant, bob); err != nil || set.HasPIN {
		t.Fatalf("the refused teammate: %+v %v", set, err)
	}
	if err := db.SetScannerPIN(ctx, merchant, ann, nil); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := db.ScannerPINOwner(ctx, merchant, digest); err != nil || ok {
		t.Fatalf("a cleared PIN: %+v %v %v", p, ok, err)
	}
	if err := db.SetScannerPIN(ctx, merchant, bob, digest); err != nil {
		t.Fatalf("a freed digest: %v", err)
	}
}
