package core

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Validation reasons, as the storefront sees them.
const (
	ReasonOK          = "ok"
	ReasonNotFound    = "not_found"
	ReasonExpired     = "expired"
	ReasonNotStarted  = "not_started"
	ReasonUsed        = "used"
	ReasonNotIssued   = "not_issued"
	ReasonReserved    = "reserved"
	ReasonArchived    = "archived"
	DefaultHoldPeriod = 15 * time.Minute
)

// FoundCode is a code with what validation and redemption need of its list.
type FoundCode struct {
	List          List
	Seq           int64
	Code          string
	State         CodeState
	Uses          int
	AvailableFrom *time.Time
	AvailableTill *time.Time
	DeliveredAt   *time.Time // when it was handed out; nil when it never was
	Holder        Recipient  // who it was delivered to (unique lists)
	HoldID        *uuid.UUID
	HeldUntil     *time.Time
	HoldCustomer  string // recipient key of the customer holding it
}

// UseLimit is how many uses the code has in all; 0 means unlimited (a fixed list without
// max_assignments).
func (f FoundCode) UseLimit() int64 {
	if f.List.Kind == KindFixed {
		return f.List.MaxAssignments * int64(f.List.UsesPerCode)
	}
	return int64(f.List.UsesPerCode)
}

// HeldBy reports whether an active hold exists at now and whether it is the given customer's.
func (f FoundCode) HeldBy(customerKey string, now time.Time) (held, mine bool) {
	if f.HoldID == nil || f.HeldUntil == nil || !f.HeldUntil.After(now) {
		return false, false
	}
	return true, customerKey != "" && customerKey == f.HoldCustomer
}

// ExpiresAt is when the code stops being usable: its own expiry (CodeExpiresAt).
func (f FoundCode) ExpiresAt() *time.Time {
	return CodeExpiresAt(f.List, f.AvailableTill, f.DeliveredAt)
}

// judge decides whether the code may be used now by customer (zero when the storefront does not
// say), and if not, why. The order matters: a storefront shows one reason, the most fundamental.
func judge(f FoundCode, customer Recipient, customerKey string, now time.Time) string {
	switch {
	case f.State == StateRemoved:
		return ReasonNotFound
	case f.List.ArchivedAt != nil:
		return ReasonArchived
	case f.ExpiresAt() != nil && !now.Before(*f.ExpiresAt()):
		return ReasonExpired
	case f.List.StartsAt != nil && now.Before(*f.List.StartsAt),
		f.AvailableFrom != nil && now.Before(*f.AvailableFrom):
		return ReasonNotStarted
	case f.UseLimit() > 0 && int64(f.Uses) >= f.UseLimit():
		return ReasonUsed
	case f.List.RequireIssued && f.State == StateAvailable:
		return ReasonNotIssued
	case f.List.RequireIssued && !customer.IsZero() && !sameRecipient(customer, f.Holder):
		return ReasonNotIssued
	}
	if held, mine := f.HeldBy(customerKey, now); held && !mine {
		return ReasonReserved
	}
	return ReasonOK
}

// sameRecipient reports whether any identifier the customer gave matches the holder's.
func sameRecipient(customer, holder Recipient) bool {
	return (customer.ExternalID != "" && customer.ExternalID == holder.ExternalID) ||
		(customer.Email != "" && strings.EqualFold(strings.TrimSpace(customer.Email), strings.TrimSpace(holder.Email))) ||
		(customer.Phone != "" && normalizePhone(customer.Phone) == normalizePhone(holder.Phone))
}

// Reservation is a storefront hold on a code.
type Reservation struct {
	ID        uuid.UUID
	ExpiresAt time.Time
}

// ValidationRequest is a storefront's question about a code.
type ValidationRequest struct {
	Code     string
	Customer Recipient
	Reserve  bool
	// Client identifies the caller for rate limiting (its address).
	Client string
	Actor  string
}

// Validation is the answer.
type Validation struct {
	Valid       bool
	Reason      string
	Code        string
	ListID      uuid.UUID
	ListName    string
	ExpiresAt   *time.Time
	Reservation *Reservation
}

// CodeFinder looks codes up for validation and redemption.
type CodeFinder interface {
	// FindCode looks a code up across the merchant's lists (matching case-insensitive lists without
	// regard to case); found is false when no list has it.
	FindCode(ctx context.Context, merchantID uuid.UUID, code string) (f FoundCode, found bool, err error)
	// FindListCode looks a code up in one list: ErrListNotFound or ErrCodeNotFound.
	FindListCode(ctx context.Context, merchantID, listID uuid.UUID, code string) (FoundCode, error)
	// FindPushedCode finds, without regard to case, a code that was pushed to the platform's shop:
	// how a platform that lowercases codes (WooCommerce) names a code of a case-sensitive list.
	FindPushedCode(ctx context.Context, merchantID uuid.UUID, platform, shop, code string) (f FoundCode, found bool, err error)
}

// HoldStore places and ends holds.
type HoldStore interface {
	// Hold places (or, for the same customer, renews) a hold on the code as req says. It answers
	// ok=false when another customer's hold active at req.Now or a use got there first.
	Hold(ctx context.Context, merchantID uuid.UUID, f FoundCode, req HoldRequest) (r Reservation, ok bool, err error)
	// Release ends an active hold: ErrReservationGone when there is none with that id.
	Release(ctx context.Context, merchantID, reservationID uuid.UUID, actor string) error
}

// HoldRequest is a hold the validator decided to place: for whom, from when until when, and
// whether it renews the customer's own hold (the code's hold id is kept) or is a new one.
type HoldRequest struct {
	CustomerKey string
	Now, Until  time.Time
	Renew       bool
	Actor       string
}

// FailureLimiter slows down clients that fail validations.
type FailureLimiter interface {
	// Blocked reports how long the client must wait (0: not blocked).
	Blocked(ctx context.Context, merchantID uuid.UUID, client string) (time.Duration, error)
	// Fail records one failed validation.
	Fail(ctx context.Context, merchantID uuid.UUID, client string) error
}

// Validator answers storefront validations and manages holds.
type Validator struct {
	codes   CodeFinder
	holds   HoldStore
	limiter FailureLimiter
	hold    time.Duration
	log     *slog.Logger
	Clock
}

// NewValidator returns the validation service; hold is how long a reservation lasts.
func NewValidator(codes CodeFinder, holds HoldStore, limiter FailureLimiter, hold time.Duration, log *slog.Logger) *Validator {
	if hold <= 0 {
		hold = DefaultHoldPeriod
	}
	return &Validator{codes: codes, holds: holds, limiter: limiter, hold: hold, log: log}
}

// Validate answers whether a code is valid now, and with Reserve holds a valid single-use code.
// Unknown and known codes take the same path (one indexed lookup) so timing tells nothing, and
// every invalid answer counts against the client's failure budget.
func (v *Validator) Validate(ctx context.Context, merchantID uuid.UUID, req ValidationRequest) (Validation, error) {
	if wait, err := v.limiter.Blocked(ctx, merchantID, req.Client); err != nil {
		v.log.WarnContext(ctx, "validation rate limiter unavailable", "err", err)
	} else if wait > 0 {
		return Validation{}, RateLimited(wait)
	}
	code, ok := CheckCode(req.Code)
	out := Validation{Reason: ReasonNotFound, Code: code}
	var f FoundCode
	found := false
	if ok {
		var err error
		if f, found, err = v.codes.FindCode(ctx, merchantID, code); err != nil {
			return Validation{}, err
		}
	}
	now := v.Now().UTC()
	customerKey := RecipientKey(req.Customer)
	if found {
		out.Reason = judge(f, req.Customer, customerKey, now)
		if out.Reason != ReasonNotFound { // a removed code tells nothing about its list
			out.Code, out.ListID, out.ListName, out.ExpiresAt = f.Code, f.List.ID, f.List.Name, f.ExpiresAt()
		}
	}
	if out.Reason == ReasonOK && req.Reserve && f.List.Kind == KindUnique && f.List.UsesPerCode == 1 {
		active, mine := f.HeldBy(customerKey, now)
		r, held, err := v.holds.Hold(ctx, merchantID, f, HoldRequest{CustomerKey: customerKey, Now: now, Until: now.Add(v.hold),
			Renew: active && mine, Actor: req.Actor})
		if err != nil {
			return Validation{}, err
		}
		if held {
			out.Reservation = &r
		} else {
			out.Reason = ReasonReserved
		}
	}
	out.Valid = out.Reason == ReasonOK
	if !out.Valid {
		if err := v.limiter.Fail(ctx, merchantID, req.Client); err != nil {
			v.log.WarnContext(ctx, "validation failure not counted", "err", err)
		}
	}
	return out, nil
}

// Release ends a hold before it runs out.
func (v *Validator) Release(ctx context.Context, merchantID, reservationID uuid.UUID, actor string) error {
	return v.holds.Release(ctx, merchantID, reservationID, actor)
}
