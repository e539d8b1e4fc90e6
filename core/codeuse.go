package core

import (
	"time"

	"github.com/google/uuid"
)

// The rules of redemption live in this file: when a paid order counts a use of a code, when it is
// refused as an over-use, when a repeated event only answers what was decided before, how other
// statuses are recorded, and what a use does to the code, its hold and its list's counters. The
// store reads what they are decided on (a UseLedger) under the codes' row locks, calls Decide for
// each order event in turn, and persists the decisions in the same transaction; it decides
// nothing itself. An order event applied through the API, at a till, by a reconciler or in a
// batch of webhook receipts is decided by the same function.

// CodeRef names one code of a merchant: its list and position.
type CodeRef struct {
	ListID uuid.UUID
	Seq    int64
}

// OrderCodeKey names one order's use of one code: a paid event counts at most once per key,
// whatever the platform retries.
type OrderCodeKey struct {
	Platform, Shop, OrderID string
	Code                    CodeRef
}

// OrderStatusKey is one status of one order on one code: each is recorded on the code's timeline
// once.
type OrderStatusKey struct {
	OrderCodeKey
	Status OrderStatus
}

// LockedCode is a code as the store read it under its row lock.
type LockedCode struct {
	State CodeState
	Uses  int
	// HoldID and HeldUntil are the hold last taken on the code (nil when none): a use ends it.
	HoldID    *uuid.UUID
	HeldUntil *time.Time
}

// UseLedger is what a transaction decides order events on, read under the row locks of the codes
// they name (every decision about a code is taken under its lock, so what is read is final until
// the commit): each code's state, the paid keys decided before and the statuses recorded before.
// Decide keeps it current, so a later event on the same code or order in the same transaction is
// decided on what the earlier ones did.
type UseLedger struct {
	Codes map[CodeRef]*LockedCode
	// Counted holds the decision of every paid key decided before: true when it counted a use,
	// false when it was refused as an over-use.
	Counted map[OrderCodeKey]bool
	// Recorded holds the non-paid statuses recorded before.
	Recorded map[OrderStatusKey]bool
}

// NewUseLedger returns an empty ledger, for the store to fill.
func NewUseLedger() *UseLedger {
	return &UseLedger{Codes: map[CodeRef]*LockedCode{}, Counted: map[OrderCodeKey]bool{}, Recorded: map[OrderStatusKey]bool{}}
}

// UseRules are the rules of a code's list that decide its uses.
type UseRules struct {
	Kind ListKind
	// UseLimit is how many uses the code has in all; 0 is unlimited (FoundCode.UseLimit).
	UseLimit int64
	// RequireIssued flags a use of a code never handed out (it still counts: the shop was paid).
	RequireIssued bool
}

// UseRules are the rules of f's list.
func (f FoundCode) UseRules() UseRules {
	return UseRules{Kind: f.List.Kind, UseLimit: f.UseLimit(), RequireIssued: f.List.RequireIssued}
}

// UseDecision is what one order event does to one code: the outcome answered, and what the store
// writes for it.
type UseDecision struct {
	// Outcome is one of the Outcome constants: redeemed, already_counted, over_use, recorded,
	// already_recorded.
	Outcome string
	// Uses and State are the code's after the event.
	Uses  int
	State CodeState
	// RecordKey says the paid key is recorded now, with Counted as its decision.
	RecordKey bool
	Counted   bool
	// RecordStatus says the order's non-paid status is recorded now.
	RecordStatus bool
	// CountUse says the code's uses go up by one: it is redeemed, and its hold is cleared.
	CountUse bool
	// EndHold is the hold the use ends: the code's hold, when it was still running.
	EndHold *uuid.UUID
	// CountersFrom is the state a unique code left for its first use (available or delivered):
	// its list's counters move one code from it to redeemed. Empty when they do not move.
	CountersFrom CodeState
	// Event is the timeline event written (empty for none), with Details added to the details
	// every event of the order carries.
	Event   string
	Details map[string]any
}

// eventOfStatus is the timeline event a non-paid order status writes.
var eventOfStatus = map[OrderStatus]string{
	OrderPending:   EventPending,
	OrderCancelled: EventCancelled,
	OrderRefunded:  EventRefunded,
}

// Decide decides the order event ev on the code at ref, whose list has rules, at now, and records
// the decision in the ledger. The store must have read the code into the ledger.
//
//   - Paid counts a use once per order and code (OrderCodeKey): a repeated paid event answers the
//     decision recorded the first time, already_counted or over_use, and changes nothing.
//   - A code is used at most rules.UseLimit times (0: no limit). A paid order that finds no use
//     left is an over-use: recorded on the timeline with the uses and the limit, never counted.
//   - A counted use redeems the code, ends its hold when the hold still runs at now, moves a
//     unique list's counters on the code's first use, and flags a use of a code never handed out
//     when the list requires codes to be issued.
//   - Any other status is recorded once per order, code and status, saying whether the order had
//     counted a use before (a refund after payment leaves the use counted).
func (l *UseLedger) Decide(ev OrderEvent, ref CodeRef, rules UseRules, now time.Time) UseDecision {
	code := l.Codes[ref]
	key := OrderCodeKey{Platform: ev.Platform, Shop: ev.Shop, OrderID: ev.OrderID, Code: ref}
	d := UseDecision{Uses: code.Uses, State: code.State}
	if ev.Status != OrderPaid {
		status := OrderStatusKey{OrderCodeKey: key, Status: ev.Status}
		if l.Recorded[status] {
			d.Outcome = OutcomeAlreadyRecorded
			return d
		}
		l.Recorded[status] = true
		d.Outcome, d.RecordStatus = OutcomeRecorded, true
		d.Event, d.Details = eventOfStatus[ev.Status], map[string]any{"after_redemption": l.Counted[key]}
		return d
	}
	if counted, decided := l.Counted[key]; decided {
		d.Outcome = OutcomeOverUse
		if counted {
			d.Outcome = OutcomeAlreadyCounted
		}
		return d
	}
	counts := rules.UseLimit <= 0 || int64(code.Uses) < rules.UseLimit
	l.Counted[key] = counts
	d.RecordKey, d.Counted = true, counts
	if !counts {
		d.Outcome, d.Event = OutcomeOverUse, EventOverUse
		d.Details = map[string]any{"uses": code.Uses, "limit": rules.UseLimit}
		return d
	}
	d.Outcome, d.CountUse, d.Event = OutcomeRedeemed, true, EventRedeemed
	d.Details = map[string]any{"use": code.Uses + 1}
	if rules.RequireIssued && code.State == StateAvailable {
		d.Details["not_issued"] = true // paid with a code never handed out: counted, and flagged
	}
	if code.HoldID != nil && code.HeldUntil != nil && code.HeldUntil.After(now) {
		d.EndHold = code.HoldID
	}
	if rules.Kind == KindUnique && code.State != StateRedeemed {
		d.CountersFrom = code.State
	}
	code.Uses++
	code.State, code.HoldID, code.HeldUntil = StateRedeemed, nil, nil
	d.Uses, d.State = code.Uses, code.State
	return d
}

// DecideApplications decides apps in order, each as Decide decides one, at now: a later event on
// a code or an order is decided on what the earlier ones did.
func DecideApplications(l *UseLedger, apps []CodeApplication, now time.Time) []UseDecision {
	out := make([]UseDecision, len(apps))
	for i, a := range apps {
		out[i] = l.Decide(a.Event, CodeRef{ListID: a.Code.List.ID, Seq: a.Code.Seq}, a.Code.UseRules(), now)
	}
	return out
}
