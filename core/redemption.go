package core

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/internal/groupcommit"
)

// OrderStatus is an order's state as a platform reports it, reduced to what matters here.
type OrderStatus string

// Order statuses. Only paid counts a redemption.
const (
	OrderPending   OrderStatus = "pending"
	OrderPaid      OrderStatus = "paid"
	OrderCancelled OrderStatus = "cancelled"
	OrderRefunded  OrderStatus = "refunded"
)

// ParseOrderStatus accepts the four statuses.
func ParseOrderStatus(s string) (OrderStatus, bool) {
	switch OrderStatus(s) {
	case OrderPending, OrderPaid, OrderCancelled, OrderRefunded:
		return OrderStatus(s), true
	}
	return "", false
}

// OrderEvent is the platform-neutral order event: every platform's webhooks reduce to it.
type OrderEvent struct {
	Platform string
	Shop     string
	OrderID  string
	Status   OrderStatus
	Codes    []string
	Customer Recipient
	Actor    string
	// Note is free text kept on the timeline (manual redemptions).
	Note string
	// Channel is the timeline's channel of the events this order writes; Platform when empty
	// (manual redemptions made at a till say in_store).
	Channel string
	// IgnoreCase says the platform does not keep the codes' case (WooCommerce lowercases them).
	// A code is looked for first among the codes pushed or being pushed to this shop, without
	// regard to case; then, through the indexed lookups of the merchant's lists, as given and in
	// upper case (codes are overwhelmingly upper case), the match in the newest active list
	// winning as FindCode's does. A mixed-case code of a case-sensitive list that was never
	// pushed to the shop (say "Spring-10", sent as "spring-10") is therefore not found: it must
	// be pushed, or sent in its exact case, or kept in a case-insensitive list.
	IgnoreCase bool
}

// EventChannel is the channel the order's timeline events carry: Channel, or Platform.
func (e OrderEvent) EventChannel() string {
	if e.Channel != "" {
		return e.Channel
	}
	return e.Platform
}

// Outcomes of an order event for one code.
const (
	OutcomeRedeemed        = "redeemed"         // counted now
	OutcomeAlreadyCounted  = "already_counted"  // this order and code were counted before
	OutcomeOverUse         = "over_use"         // paid, but the code had no use left: recorded, not counted (now or before)
	OutcomeRecorded        = "recorded"         // a non-paid status, recorded on the timeline
	OutcomeAlreadyRecorded = "already_recorded" // that status of this order was recorded before
	OutcomeUnknownCode     = "not_found"        // no list has the code
)

// CodeOutcome is what an order event did to one of its codes.
type CodeOutcome struct {
	Code    string
	Outcome string
	ListID  uuid.UUID
	Uses    int
	State   CodeState
}

// OrderResult is what an order event did.
type OrderResult struct {
	OrderID string
	Status  OrderStatus
	Results []CodeOutcome
}

// RedemptionStore persists redemption decisions (core decides them: UseLedger.Decide).
type RedemptionStore interface {
	// Redeem applies order events on codes (apps; their Receipt is not used) in one transaction:
	// it takes the row locks of the codes they name, reads into a ledger the codes and what was
	// recorded for their orders on them before, calls decide with it and apps, and persists the
	// decisions decide returns (one per application, in order), which it answers.
	Redeem(ctx context.Context, merchantID uuid.UUID, apps []CodeApplication, decide func(*UseLedger, []CodeApplication) []UseDecision) ([]UseDecision, error)
}

// Redeemer counts redemptions from order events and manual redemptions.
type Redeemer struct {
	Clock
	codes  CodeFinder
	store  RedemptionStore
	groups *groupcommit.Batcher[uuid.UUID, *redemptionCall]
}

// NewRedeemer returns the redemption service.
func NewRedeemer(codes CodeFinder, store RedemptionStore) *Redeemer {
	r := &Redeemer{codes: codes, store: store}
	r.groups = newRedemptionGroups(r)
	return r
}

// maxOrderCodes bounds the codes of one order event (Shopify allows 5 order codes plus shipping).
const maxOrderCodes = 50

// ApplyOrder applies an order event to each of its codes. Only paid counts; it counts once per
// (platform, shop, order, code) whatever the retries and their order; a cancellation or refund
// after payment stays counted and is recorded on the timeline. Text PostgreSQL cannot store (a
// NUL, bytes that are not UTF-8) is dropped from the event's fields (ScrubText): a platform's
// stray character costs that character, never the order.
func (r *Redeemer) ApplyOrder(ctx context.Context, merchantID uuid.UUID, ev OrderEvent) (OrderResult, error) {
	ev, err := CheckOrderEvent(ev)
	if err != nil {
		return OrderResult{}, err
	}
	res := OrderResult{OrderID: ev.OrderID, Status: ev.Status, Results: []CodeOutcome{}}
	seen := map[string]bool{}
	for _, raw := range ev.Codes {
		code, ok := CheckCode(raw)
		if !ok {
			res.Results = append(res.Results, CodeOutcome{Code: code, Outcome: OutcomeUnknownCode})
			continue
		}
		var f FoundCode
		var found bool
		var err error
		if ev.IgnoreCase {
			// The shop's own codes first: a code pushed to it, whatever its case in the list.
			f, found, err = r.codes.FindPushedCode(ctx, merchantID, ev.Platform, ev.Shop, code)
			if err == nil && !found {
				f, found, err = r.findFolded(ctx, merchantID, code)
			}
		} else {
			f, found, err = r.codes.FindCode(ctx, merchantID, code)
		}
		if err != nil {
			return OrderResult{}, err
		}
		if !found || f.State == StateRemoved {
			res.Results = append(res.Results, CodeOutcome{Code: code, Outcome: OutcomeUnknownCode})
			continue
		}
		key := f.List.ID.String() + "|" + f.Code
		if seen[key] {
			continue // the same code twice in one order is one use
		}
		seen[key] = true
		out, err := r.redeem(ctx, merchantID, ev, f)
		if err != nil {
			return OrderResult{}, err
		}
		res.Results = append(res.Results, out)
	}
	return res, nil
}

// CheckOrderEvent is ev as ApplyOrder applies it: its text scrubbed (ScrubText), platform, shop
// and order id trimmed; or the KindInvalid error ApplyOrder answers for it (a platform, shop or
// order id missing or too long, more than 50 codes, an unknown status). Checking twice changes
// nothing.
func CheckOrderEvent(ev OrderEvent) (OrderEvent, error) {
	ev = scrubEvent(ev)
	ev.Platform, ev.Shop, ev.OrderID = strings.TrimSpace(ev.Platform), strings.TrimSpace(ev.Shop), strings.TrimSpace(ev.OrderID)
	switch {
	case ev.Platform == "" || utf8.RuneCountInString(ev.Platform) > 50:
		return OrderEvent{}, Invalid("platform", "is required, at most 50 characters")
	case utf8.RuneCountInString(ev.Shop) > 255:
		return OrderEvent{}, Invalid("shop", "must be at most 255 characters")
	case ev.OrderID == "" || utf8.RuneCountInString(ev.OrderID) > 255:
		return OrderEvent{}, Invalid("order_id", "is required, at most 255 characters")
	case len(ev.Codes) > maxOrderCodes:
		return OrderEvent{}, Invalid("codes", "at most 50 codes per order")
	}
	if _, ok := ParseOrderStatus(string(ev.Status)); !ok {
		return OrderEvent{}, Invalid("status", "must be pending, paid, cancelled or refunded")
	}
	return ev, nil
}

// scrubEvent is ev with ScrubText applied to every text field.
func scrubEvent(ev OrderEvent) OrderEvent {
	ev.Platform, ev.Shop, ev.OrderID = ScrubText(ev.Platform), ScrubText(ev.Shop), ScrubText(ev.OrderID)
	ev.Actor, ev.Note = ScrubText(ev.Actor), ScrubText(ev.Note)
	c := &ev.Customer
	c.ExternalID, c.Email, c.Phone = ScrubText(c.ExternalID), ScrubText(c.Email), ScrubText(c.Phone)
	if len(ev.Codes) > 0 {
		codes := make([]string, len(ev.Codes))
		for i, code := range ev.Codes {
			codes[i] = ScrubText(code)
		}
		ev.Codes = codes
	}
	return ev
}

// findFolded looks up a code a platform sent in lower case: as given, and in upper case. Both
// are probes of the lists' unique lookup index; no scan folds the case of stored codes, so a
// mixed-case code of a case-sensitive list is found only as given.
func (r *Redeemer) findFolded(ctx context.Context, merchantID uuid.UUID, code string) (FoundCode, bool, error) {
	f, found, err := r.codes.FindCode(ctx, merchantID, code)
	if err != nil {
		return FoundCode{}, false, err
	}
	upper := strings.ToUpper(code)
	if upper == code {
		return f, found, nil
	}
	u, uFound, err := r.codes.FindCode(ctx, merchantID, upper)
	switch {
	case err != nil:
		return FoundCode{}, false, err
	case !uFound:
		return f, found, nil
	case !found || preferFound(u, f):
		return u, true, nil
	}
	return f, true, nil
}

// preferFound reports whether a wins over b when a code is in several lists, by FindCode's rule:
// a live code before a removed one, then an active list before an archived one, then the newest
// list.
func preferFound(a, b FoundCode) bool {
	if ar, br := a.State == StateRemoved, b.State == StateRemoved; ar != br {
		return br
	}
	if aa, ba := a.List.ArchivedAt != nil, b.List.ArchivedAt != nil; aa != ba {
		return ba
	}
	return a.List.CreatedAt.After(b.List.CreatedAt)
}

// ListCode returns a live code of one list, as a till needs it (to redeem it, or to draw its QR
// code): ErrListNotFound, or ErrCodeNotFound for a code that is not a valid code, not in the list,
// or removed.
func (r *Redeemer) ListCode(ctx context.Context, merchantID, listID uuid.UUID, raw string) (FoundCode, error) {
	code, ok := CheckCode(raw)
	if !ok {
		return FoundCode{}, ErrCodeNotFound // never sent to the database: it could not be stored
	}
	f, err := r.codes.FindListCode(ctx, merchantID, listID, code)
	if err != nil {
		return FoundCode{}, err
	}
	if f.State == StateRemoved {
		return FoundCode{}, ErrCodeNotFound
	}
	return f, nil
}

// ManualRedemption is a code marked used by hand (a till, a QR scanner).
type ManualRedemption struct {
	OrderID string
	Note    string
	Actor   string
	// Channel is the timeline's channel: ChannelManual (the default) or ChannelInStore (the
	// scanner, or a staff PIN on the redeem page).
	Channel string
}

// Channels of manual redemptions.
const (
	ChannelManual  = "manual"
	ChannelInStore = "in_store"
)

// Redeem marks one code of a list used by hand. Repeating the same order id is harmless; a code
// with no use left answers ErrAlreadyUsed, and so does an order id refused that way before, when
// it is repeated; a code never delivered under require_issued answers ErrNotIssued.
func (r *Redeemer) Redeem(ctx context.Context, merchantID, listID uuid.UUID, code string, m ManualRedemption) (CodeOutcome, error) {
	if utf8.RuneCountInString(m.Note) > 1000 {
		return CodeOutcome{}, Invalid("note", "must be at most 1000 characters")
	}
	f, err := r.ListCode(ctx, merchantID, listID, code)
	if err != nil {
		return CodeOutcome{}, err
	}
	if f.List.RequireIssued && f.State == StateAvailable {
		return CodeOutcome{}, ErrNotIssued
	}
	switch m.Channel {
	case "":
		m.Channel = ChannelManual
	case ChannelManual, ChannelInStore:
	default:
		return CodeOutcome{}, Invalid("channel", "must be manual or in_store")
	}
	if strings.TrimSpace(m.OrderID) == "" {
		m.OrderID = "manual-" + uuid.NewString()
	}
	ev := OrderEvent{Platform: "manual", Channel: m.Channel, OrderID: strings.TrimSpace(m.OrderID), Status: OrderPaid, Actor: m.Actor, Note: m.Note}
	if utf8.RuneCountInString(ev.OrderID) > 255 {
		return CodeOutcome{}, Invalid("order_id", "must be at most 255 characters")
	}
	out, err := r.redeem(ctx, merchantID, ev, f)
	if err != nil {
		return CodeOutcome{}, err
	}
	if out.Outcome == OutcomeOverUse {
		return out, ErrAlreadyUsed
	}
	return out, nil
}

// redeem applies ev to the code f, decided by the rules of codeuse.go at the service's clock,
// in a transaction with the merchant's other events of the moment (redemption_group.go).
func (r *Redeemer) redeem(ctx context.Context, merchantID uuid.UUID, ev OrderEvent, f FoundCode) (CodeOutcome, error) {
	d, err := groupcommit.Do(ctx, r.groups, merchantID, CodeApplication{Event: ev, Code: f})
	if err != nil {
		return CodeOutcome{}, err
	}
	return CodeOutcome{Code: f.Code, ListID: f.List.ID, Outcome: d.Outcome, Uses: d.Uses, State: d.State}, nil
}
