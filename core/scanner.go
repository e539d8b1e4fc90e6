package core

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
)

// The scanner (issue 12): owners and staff mark codes used in a shop, with the dashboard's
// scanner page (/app/scan) or, on a customer's redeem page, with their scanner PIN. Both are
// manual redemptions on the channel in_store with the person as actor. Owners may limit which
// lists a staff member can scan.
//
// Scanner PINs are made by Coupongate, never chosen: six random digits (crypto/rand), unique
// within the merchant, shown once to the person (or to the owner who made it for them). A chosen
// PIN would have to be refused when a teammate has it, which tells the chooser a teammate's PIN.
// A PIN is stored as HMAC-SHA256 under a key derived from APP_SECRET ("scanner-pin") over the
// merchant and the PIN, with a unique index on (merchant, digest): finding the person a PIN names
// is one indexed read. A slow password hash would add nothing here: 10^6 guesses exhaust six
// digits whatever each costs, so the guessing is bounded by the throttle instead.

// Scanner PIN length and throttling. Wrong PINs are counted per client address and per merchant
// over ScannerPINWindow; past either limit PINs answer 429 until the window ends.
//
// One address gets ScannerPINClientFailures guesses per window. The merchant's limit is far
// higher (ScannerPINMerchantFailures), so that one visitor cannot lock every staff member out with
// a handful of wrong PINs. A guesser spread over many addresses still gets at most
// ScannerPINMerchantFailures guesses per window; with N staff PINs among 10^6, each guess hits one
// with probability N/10^6, so a window's guesses succeed with probability at most about
// 100·N/10^6 = N/10^4 (one in a thousand for a team of ten), and the attempt is slow and loud.
const (
	ScannerPINDigits           = 6
	ScannerPINClientFailures   = 10
	ScannerPINMerchantFailures = 100
	ScannerPINWindow           = 15 * time.Minute
)

// ScannerSettings are one person's scanner settings.
type ScannerSettings struct {
	// HasPIN says a scanner PIN is set.
	HasPIN bool
	// Lists are the lists the person may scan; nil means every list.
	Lists []uuid.UUID
}

// ScannerPIN is the person a scanner PIN names, with the lists they may scan.
type ScannerPIN struct {
	User  User
	Lists []uuid.UUID
}

// ScannerStore keeps the scanner's settings on dashboard users.
type ScannerStore interface {
	// ScannerSettings returns a current user's settings, or ErrUserNotFound.
	ScannerSettings(ctx context.Context, merchantID, userID uuid.UUID) (ScannerSettings, error)
	// SetScannerPIN stores the digest of a current user's PIN (nil clears it): ErrUserNotFound,
	// or ErrScannerPINTaken when another user of the merchant has the same digest.
	SetScannerPIN(ctx context.Context, merchantID, userID uuid.UUID, digest []byte) error
	// SetScanLists stores the lists a current user may scan (nil: every list), or ErrUserNotFound.
	SetScanLists(ctx context.Context, merchantID, userID uuid.UUID, lists []uuid.UUID) error
	// ScannerPINOwner returns the merchant's current user whose PIN has the digest; ok is false
	// when there is none.
	ScannerPINOwner(ctx context.Context, merchantID uuid.UUID, digest []byte) (p ScannerPIN, ok bool, err error)
}

// Errors of the scanner.
var (
	ErrScanListRefused = newError(KindForbidden, "scan_list_refused",
		"You may not scan codes of this list: an owner of the team limited the lists you scan.")
	ErrScannerPINWrong = newError(KindUnauthorized, "scanner_pin_wrong",
		"This PIN is not right, so the code was not marked as used.")
	ErrScanExpired = newError(KindConflict, "code_expired",
		"This code has expired, so it was not marked as used.")
	// ErrScannerPINTaken is the store's answer to a digest another person of the merchant has;
	// NewPIN draws another PIN, so it never reaches a person.
	ErrScannerPINTaken = newError(KindConflict, "scanner_pin_taken", "This scanner PIN is taken.")
)

func scannerPINRateLimited(wait time.Duration) *Error {
	return &Error{Kind: KindRateLimited, Code: "rate_limited", RetryAfter: wait,
		Message: "Too many wrong PINs. Wait a few minutes, then try again."}
}

// ScannerLimits throttle wrong scanner PINs: PerClient counts ScannerPINClientFailures per
// ScannerPINWindow for one client address, PerMerchant ScannerPINMerchantFailures for the
// merchant from anywhere.
type ScannerLimits struct {
	PerClient   FailureLimiter
	PerMerchant FailureLimiter
}

// Scanner decides what the scanner may do and marks codes used in the shop.
type Scanner struct {
	store    ScannerStore
	redeemer *Redeemer
	limits   ScannerLimits
	pinKey   []byte
	rand     io.Reader
	log      *slog.Logger
}

// NewScanner returns the service. limits throttle wrong PINs; secret is APP_SECRET, from which
// the key of the PIN digests is derived (HKDF-SHA256, label "scanner-pin"), so a digest read
// from the database cannot be checked against the 10^6 PINs without it.
func NewScanner(store ScannerStore, redeemer *Redeemer, limits ScannerLimits, secret string, log *slog.Logger) *Scanner {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "coupongate scanner-pin v1", 32)
	if err != nil { // only for a length HKDF cannot give; 32 bytes it always can
		panic("core: scanner PIN key: " + err.Error())
	}
	return &Scanner{store: store, redeemer: redeemer, limits: limits, pinKey: key, rand: rand.Reader, log: log}
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

// NewPIN gives a person a new scanner PIN and returns it: six random digits that no other
// person of the merchant has. The PIN replaces the person's previous one (which stops working)
// and is not kept in the clear, so this is the only time anyone sees it.
func (s *Scanner) NewPIN(ctx context.Context, merchantID, userID uuid.UUID) (string, error) {
	for range 20 { // a team of a thousand collides on one draw in a thousand
		pin, err := s.drawPIN()
		if err != nil {
			return "", err
		}
		err = s.store.SetScannerPIN(ctx, merchantID, userID, s.pinDigest(merchantID, pin))
		if errors.Is(err, ErrScannerPINTaken) {
			continue
		}
		if err != nil {
			return "", err
		}
		return pin, nil
	}
	return "", errors.New("core: no free scanner PIN in 20 draws")
}

// ClearPIN removes a person's scanner PIN.
func (s *Scanner) ClearPIN(ctx context.Context, merchantID, userID uuid.UUID) error {
	return s.store.SetScannerPIN(ctx, merchantID, userID, nil)
}

// drawPIN draws ScannerPINDigits uniform random digits: four random bytes, drawn again when they
// fall in the last, incomplete run of 10^6 below 2^32, so every PIN is equally likely.
func (s *Scanner) drawPIN() (string, error) {
	const space = 1_000_000 // 10^ScannerPINDigits
	const limit = (1 << 32) / space * space
	var b [4]byte
	for {
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return "", fmt.Errorf("core: draw a scanner PIN: %w", err)
		}
		if n := binary.BigEndian.Uint32(b[:]); n < limit {
			return fmt.Sprintf("%0*d", ScannerPINDigits, n%space), nil
		}
	}
}

// pinDigest is the stored form of a merchant's PIN: HMAC-SHA256 over the merchant and the PIN.
func (s *Scanner) pinDigest(merchantID uuid.UUID, pin string) []byte {
	m := hmac.New(sha256.New, s.pinKey)
	m.Write(merchantID[:])
	m.Write([]byte(pin))
	return m.Sum(nil)
}

func validPIN(pin string) bool {
	if len(pin) != ScannerPINDigits {
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
// ErrScannerPINWrong and counts against the client address and the merchant (ScannerLimits);
// past either limit PINs answer 429. The person's list limit applies.
func (s *Scanner) MarkUsedWithPIN(ctx context.Context, merchantID, listID uuid.UUID, code, pin, client string) (User, CodeOutcome, error) {
	checks := []struct {
		limiter FailureLimiter
		key     string
	}{{s.limits.PerClient, "scanner-pin-addr:" + client}, {s.limits.PerMerchant, "scanner-pin-merchant"}}
	for _, c := range checks {
		wait, err := c.limiter.Blocked(ctx, merchantID, c.key)
		if err != nil {
			s.log.WarnContext(ctx, "scanner PIN limiter unavailable", "err", err)
		} else if wait > 0 {
			return User{}, CodeOutcome{}, scannerPINRateLimited(wait)
		}
	}
	var who ScannerPIN
	found := false
	if validPIN(pin) {
		var err error
		who, found, err = s.store.ScannerPINOwner(ctx, merchantID, s.pinDigest(merchantID, pin))
		if err != nil {
			return User{}, CodeOutcome{}, err
		}
	}
	if !found {
		for _, c := range checks {
			if err := c.limiter.Fail(ctx, merchantID, c.key); err != nil {
				s.log.WarnContext(ctx, "scanner PIN failure not counted", "err", err)
			}
		}
		return User{}, CodeOutcome{}, ErrScannerPINWrong
	}
	out, err := s.MarkUsed(ctx, merchantID, scopeOf(who.User.Role, who.Lists), listID, code, who.User.Email)
	return who.User, out, err
}
