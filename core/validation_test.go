package core

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestJudgeEveryReason(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	holdID := uuid.New()
	unique := List{Kind: KindUnique, UsesPerCode: 1}
	code := func(change func(*FoundCode)) FoundCode {
		f := FoundCode{List: unique, Code: "SAVE-1", State: StateDelivered,
			Holder: Recipient{Email: "ann@example.com", ExternalID: "cust-1"}}
		if change != nil {
			change(&f)
		}
		return f
	}
	tests := []struct {
		name     string
		code     FoundCode
		customer Recipient
		want     string
	}{
		{"ok", code(nil), Recipient{}, ReasonOK},
		{"removed reads as not found", code(func(f *FoundCode) { f.State = StateRemoved }), Recipient{}, ReasonNotFound},
		{"archived list", code(func(f *FoundCode) { f.List.ArchivedAt = &past }), Recipient{}, ReasonArchived},
		{"list expired", code(func(f *FoundCode) { f.List.ExpiresAt = &past }), Recipient{}, ReasonExpired},
		{"list expires exactly now", code(func(f *FoundCode) { f.List.ExpiresAt = &now }), Recipient{}, ReasonExpired},
		{"code window ended", code(func(f *FoundCode) { f.AvailableTill = &past }), Recipient{}, ReasonExpired},
		{"list not started", code(func(f *FoundCode) { f.List.StartsAt = &future }), Recipient{}, ReasonNotStarted},
		{"code window not open", code(func(f *FoundCode) { f.AvailableFrom = &future }), Recipient{}, ReasonNotStarted},
		{"code window open", code(func(f *FoundCode) { f.AvailableFrom, f.AvailableTill = &past, &future }), Recipient{}, ReasonOK},
		{"used up", code(func(f *FoundCode) { f.Uses = 1 }), Recipient{}, ReasonUsed},
		{"multi-use with uses left", code(func(f *FoundCode) { f.List.UsesPerCode, f.Uses = 3, 2 }), Recipient{}, ReasonOK},
		{"multi-use used up", code(func(f *FoundCode) { f.List.UsesPerCode, f.Uses = 3, 3 }), Recipient{}, ReasonUsed},
		{"fixed code unlimited", code(func(f *FoundCode) { f.List.Kind, f.Uses = KindFixed, 1000 }), Recipient{}, ReasonOK},
		{"fixed code up to assignments", code(func(f *FoundCode) { f.List.Kind, f.List.MaxAssignments, f.Uses = KindFixed, 2, 2 }), Recipient{}, ReasonUsed},
		{"require_issued, never delivered", code(func(f *FoundCode) { f.List.RequireIssued, f.State = true, StateAvailable }), Recipient{}, ReasonNotIssued},
		{"require_issued, delivered, no customer given", code(func(f *FoundCode) { f.List.RequireIssued = true }), Recipient{}, ReasonOK},
		{"require_issued, its recipient by email", code(func(f *FoundCode) { f.List.RequireIssued = true }), Recipient{Email: " ANN@example.com"}, ReasonOK},
		{"require_issued, its recipient by id", code(func(f *FoundCode) { f.List.RequireIssued = true }), Recipient{ExternalID: "cust-1"}, ReasonOK},
		{"require_issued, someone else", code(func(f *FoundCode) { f.List.RequireIssued = true }), Recipient{Email: "bob@example.com"}, ReasonNotIssued},
		{"not require_issued, someone else", code(nil), Recipient{Email: "bob@example.com"}, ReasonOK},
		{"held by another customer", code(func(f *FoundCode) { f.HoldID, f.HeldUntil, f.HoldCustomer = &holdID, &future, "email:carl@example.com" }), Recipient{Email: "bob@example.com"}, ReasonReserved},
		{"held by an anonymous checkout", code(func(f *FoundCode) { f.HoldID, f.HeldUntil = &holdID, &future }), Recipient{}, ReasonReserved},
		{"held by this customer", code(func(f *FoundCode) { f.HoldID, f.HeldUntil, f.HoldCustomer = &holdID, &future, "email:bob@example.com" }), Recipient{Email: "bob@example.com"}, ReasonOK},
		{"hold ran out", code(func(f *FoundCode) { f.HoldID, f.HeldUntil = &holdID, &past }), Recipient{}, ReasonOK},
		{"archived beats expired", code(func(f *FoundCode) { f.List.ArchivedAt, f.List.ExpiresAt = &past, &past }), Recipient{}, ReasonArchived},
		{"expired beats used", code(func(f *FoundCode) { f.List.ExpiresAt, f.Uses = &past, 1 }), Recipient{}, ReasonExpired},
		{"used beats reserved", code(func(f *FoundCode) { f.Uses, f.HoldID, f.HeldUntil = 1, &holdID, &future }), Recipient{}, ReasonUsed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := judge(tc.code, tc.customer, RecipientKey(tc.customer), now); got != tc.want {
				t.Fatalf("judge = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRecipientKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Recipient
		want string
	}{
		{Recipient{ExternalID: " 42 ", Email: "a@b.c"}, "ext:42"},
		{Recipient{Email: " Ann@Example.COM "}, "email:ann@example.com"},
		{Recipient{Phone: "+49 (170) 123-45"}, "phone:+4917012345"},
		{Recipient{}, ""},
	}
	for _, tc := range tests {
		if got := RecipientKey(tc.in); got != tc.want {
			t.Errorf("RecipientKey(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
