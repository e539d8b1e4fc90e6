package core

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
)

// The scanner (issue 12): owners and staff mark codes used in a shop, with the dashboard's
// scanner page (/app/scan) or, on a customer's redeem page, with their scanner PIN. Both are
// manual redemptions on the channel in_store with the person as actor. Owners may limit which
// lists a staff member can scan; a scanner PIN is four to eight digits, stored as an argon2id
// hash, and failed PINs are throttled like sign-ins.

// Scanner PIN bounds and throttling: after ScannerPINFailures wrong PINs in ScannerPINWindow from
// one client address, or for one merchant from anywhere, PINs answer 429 until the window ends.
const (
	ScannerPINMinDigits = 4
	ScannerPINMaxDigits = 8
	ScannerPINFailures  = SignInFailures
	ScannerPINWindow    = SignInWindow
)

// ScannerSettings are one person's scanner settings.
type ScannerSettings struct {
	// HasPIN says a scanner PIN is set.
	HasPIN bool
	// Lists are the lists the person may scan; nil means every list.
	Lists []uuid.UUID
}

// ScannerPIN is a person with the hash of their scanner PIN.
type ScannerPIN struct {
	User  User
	Hash  string
	Lists []uuid.UUID
}

// ScannerStore keeps the scanner's settings on dashboard users.
type ScannerStore interface {
	// ScannerSettings returns a current user's settings, or ErrUserNotFound.
	ScannerSettings(ctx context.Context, merchantID, userID uuid.UUID) (ScannerSettings, error)
	// SetScannerPIN stores the hash of a current user's PIN ("" clears it), or ErrUserNotFound.
	SetScannerPIN(ctx context.Context, merchantID, userID uuid.UUID, hash string) error
	// SetScanLists stores the lists a current user may scan (nil: every list), or ErrUserNotFound.
	SetScanLists(ctx context.Context, merchantID, userID uuid.UUID, lists []uuid.UUID) error
	// ScannerPINs returns the merchant's current users who have a PIN.
	ScannerPINs(ctx context.Context, merchantID uuid.UUID) ([]ScannerPIN, error)
}

// Errors of the scanner.
var (
	ErrScanListRefused = newError(KindForbidden, "scan_list_refused",
		"You may not scan codes of this list: an owner of the team limited the lists you scan.")
	ErrScannerPINWrong = newError(KindUnauthorized, "scanner_pin_wrong",
		"This PIN is not right, so the code was not marked as used.")
	ErrScanExpired = newError(KindConflict, "code_expired",
		"This code has expired, so it was not marked as used.")
)

func scannerPINRateLimited(wait time.Duration) *Error {
	return &Error{Kind: KindRateLimited, Code: "rate_limited", RetryAfter: wait,
		Message: "Too many wrong PINs. Wait a few minutes, then try again."}
}

// Scanner decides what the scanner may do and marks codes used in the shop.
type Scanner struct {
	store    ScannerStore
	redeemer *Redeemer
	limiter  FailureLimiter
	params   PasswordParams
	log      *slog.Logger
}

// NewScanner returns the service. limiter throttles wrong PINs (ScannerPINFailures per
// ScannerPINWindow); params are the argon2id costs of new PIN hashes.
func NewScanner(store ScannerStore, redeemer *Redeemer, limiter FailureLimiter, params PasswordParams, log *slog.Logger) *Scanner {
	return &Scanner{store: store, redeemer: redeemer, limiter: limiter, params: params, log: log}
}

// ScanScope is what one person may scan.
type ScanScope struct {
	// All is true for owners and for staff an owner did not limit.
	All   bool
	Lists []uuid.UUID
}

// Allows reports whether the scope covers the list.
func (s ScanScope) Allows(listID uuid.UUID) bool { return s.All || slices.Contains(s.Lists, listID) }

// Settings returns a person's scanner settings.
func (s *Scanner) Settings(ctx context.Context, merchantID, userID uuid.UUID) (ScannerSettings, error) {
	return s.store.ScannerSettings(ctx, merchantID, userID)
}

// Scope is what the person may scan: owners (and people signed in from the Shopify admin, who
// have no user: user nil) every list, staff the lists an owner chose for them, or every list.
func (s *Scanner) Scope(ctx context.Context, merchantID uuid.UUID, role Role, user *User) (ScanScope, error) {
	if role == RoleOwner || user == nil {
		return ScanScope{All: true}, nil
	}
	set, err := s.store.ScannerSettings(ctx, merchantID, user.ID)
	if err != nil {
		return ScanScope{}, err
	}
	return scopeOf(user.Role, set.Lists), nil
}

func scopeOf(role Role, lists []uuid.UUID) ScanScope {
	if role == RoleOwner || lists == nil {
		return ScanScope{All: true}
	}
	return ScanScope{Lists: lists}
}

// SetScanLists limits the lists a person may scan; nil (or an empty set) lifts the limit.
// Owners always scan every list.
func (s *Scanner) SetScanLists(ctx context.Context, merchantID, userID uuid.UUID, lists []uuid.UUID) error {
	if len(lists) == 0 {
		lists = nil
	} else {
		lists = slices.Clone(lists)
		slices.SortFunc(lists, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		lists = slices.Compact(lists)
	}
	return s.store.SetScanLists(ctx, merchantID, userID, lists)
}

// SetPIN sets a person's scanner PIN (typed twice): four to eight digits, stored hashed. A PIN
// another person of the team already has is refused, so that a PIN names one person.
func (s *Scanner) SetPIN(ctx context.Context, merchantID, userID uuid.UUID, pin, confirm string) error {
	if !validPIN(pin) {
		return Invalid("pin", "Choose a PIN of four to eight digits.")
	}
	if pin != confirm {
		return Invalid("pin_confirm", "The two PINs are not the same.")
	}
	pins, err := s.store.ScannerPINs(ctx, merchantID)
	if err != nil {
		return err
	}
	for _, p := range pins {
		if p.User.ID != userID && CheckPassword(pin, p.Hash) {
			return Invalid("pin", "Choose another PIN: this one cannot be used.")
		}
	}
	hash, err := HashPassword(pin, s.params)
	if err != nil {
		return err
	}
	return s.store.SetScannerPIN(ctx, merchantID, userID, hash)
}

// ClearPIN removes a person's scanner PIN.
func (s *Scanner) ClearPIN(ctx context.Context, merchantID, userID uuid.UUID) error {
	return s.store.SetScannerPIN(ctx, merchantID, userID, "")
}

func validPIN(pin string) bool {
	if len(pin) < ScannerPINMinDigits || len(pin) > ScannerPINMaxDigits {
		return false
	}
	for _, r := range pin {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// MarkUsed redeems a code of a list in the shop (channel in_store) with actor, when scope
// covers the list (else ErrScanListRefused) and the code has not expired (else ErrScanExpired).
// Other errors are the manual redemption's.
func (s *Scanner) MarkUsed(ctx context.Context, merchantID uuid.UUID, scope ScanScope, listID uuid.UUID, code, actor string) (CodeOutcome, error) {
	if !scope.Allows(listID) {
		return CodeOutcome{}, ErrScanListRefused
	}
	f, err := s.redeemer.ListCode(ctx, merchantID, listID, code)
	if err != nil {
		return CodeOutcome{}, err
	}
	if f.State == StateAvailable || f.State == StateDelivered {
		if end := CodeExpiresAt(f.List, f.AvailableTill, f.DeliveredAt); end != nil && !time.Now().Before(*end) {
			return CodeOutcome{}, ErrScanExpired
		}
	}
	return s.redeemer.Redeem(ctx, merchantID, listID, code, ManualRedemption{Actor: actor, Channel: ChannelInStore})
}

// MarkUsedWithPIN redeems a code of a list in the shop for the person whose scanner PIN was
// typed (on a customer's redeem page): the person is the actor. A wrong PIN answers
// ErrScannerPINWrong and counts against the client address and the merchant; after
// ScannerPINFailures in ScannerPINWindow PINs answer 429. The person's list limit applies.
func (s *Scanner) MarkUsedWithPIN(ctx context.Context, merchantID, listID uuid.UUID, code, pin, client string) (User, CodeOutcome, error) {
	keys := []string{"scanner-pin-addr:" + client, "scanner-pin-merchant"}
	for _, k := range keys {
		wait, err := s.limiter.Blocked(ctx, merchantID, k)
		if err != nil {
			s.log.WarnContext(ctx, "scanner PIN limiter unavailable", "err", err)
		} else if wait > 0 {
			return User{}, CodeOutcome{}, scannerPINRateLimited(wait)
		}
	}
	var who *ScannerPIN
	if validPIN(pin) {
		pins, err := s.store.ScannerPINs(ctx, merchantID)
		if err != nil {
			return User{}, CodeOutcome{}, err
		}
		for i := range pins {
			if CheckPassword(pin, pins[i].Hash) {
				who = &pins[i]
				break
			}
		}
	}
	if who == nil {
		for _, k := range keys {
			if err := s.limiter.Fail(ctx, merchantID, k); err != nil {
				s.log.WarnContext(ctx, "scanner PIN failure not counted", "err", err)
			}
		}
		return User{}, CodeOutcome{}, ErrScannerPINWrong
	}
	out, err := s.MarkUsed(ctx, merchantID, scopeOf(who.User.Role, who.Lists), listID, code, who.User.Email)
	return who.User, out, err
}
