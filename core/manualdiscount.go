package core

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// EventManualDiscount is the timeline event of a code whose text a platform order carried as the
// title of a manual discount (a staff or draft-order discount): nobody entered the code, so it is
// recorded for the merchant to see and never counted as a use.
const EventManualDiscount = "manual_discount"

// ManualDiscountEvent is a platform order's manual discounts, reduced to their titles.
type ManualDiscountEvent struct {
	Platform string
	Shop     string
	OrderID  string
	// Titles are the manual discounts' titles, as the platform reports them.
	Titles   []string
	Customer Recipient
	Actor    string
}

// ManualDiscountStore records manual discounts on codes' timelines.
type ManualDiscountStore interface {
	// RecordManualDiscount adds one EventManualDiscount to f's timeline per (platform, shop,
	// order, code), atomically: recorded is false when that order's manual discount was recorded
	// for the code before. It never changes the code's uses, state or counts.
	RecordManualDiscount(ctx context.Context, merchantID uuid.UUID, ev ManualDiscountEvent, title string, f FoundCode) (recorded bool, err error)
}

// ManualDiscounts records the manual discounts of platform orders whose title is one of the
// merchant's codes.
type ManualDiscounts struct {
	codes CodeFinder
	store ManualDiscountStore
}

// NewManualDiscounts returns the manual discount recorder.
func NewManualDiscounts(codes CodeFinder, store ManualDiscountStore) *ManualDiscounts {
	return &ManualDiscounts{codes: codes, store: store}
}

// Record looks each title up as an order's code would be (FindCode: across the merchant's lists,
// by each list's case rule; a removed code is not found) and records EventManualDiscount on each
// code found, once per order and code whatever the retries. A title that is no valid code or no
// code of the merchant answers OutcomeUnknownCode; a recorded one OutcomeRecorded, or
// OutcomeAlreadyRecorded when it was recorded before. Uses are never counted.
func (m *ManualDiscounts) Record(ctx context.Context, merchantID uuid.UUID, ev ManualDiscountEvent) ([]CodeOutcome, error) {
	ev.Platform, ev.Shop, ev.OrderID = strings.TrimSpace(ev.Platform), strings.TrimSpace(ev.Shop), strings.TrimSpace(ev.OrderID)
	switch {
	case ev.Platform == "" || utf8.RuneCountInString(ev.Platform) > 50:
		return nil, Invalid("platform", "is required, at most 50 characters")
	case utf8.RuneCountInString(ev.Shop) > 255:
		return nil, Invalid("shop", "must be at most 255 characters")
	case ev.OrderID == "" || utf8.RuneCountInString(ev.OrderID) > 255:
		return nil, Invalid("order_id", "is required, at most 255 characters")
	case len(ev.Titles) > maxOrderCodes:
		return nil, Invalid("titles", "at most 50 manual discounts per order")
	}
	out := []CodeOutcome{}
	seen := map[string]bool{}
	for _, raw := range ev.Titles {
		code, ok := CheckCode(raw)
		if !ok {
			out = append(out, CodeOutcome{Code: code, Outcome: OutcomeUnknownCode})
			continue
		}
		f, found, err := m.codes.FindCode(ctx, merchantID, code)
		if err != nil {
			return nil, err
		}
		if !found || f.State == StateRemoved {
			out = append(out, CodeOutcome{Code: code, Outcome: OutcomeUnknownCode})
			continue
		}
		key := f.List.ID.String() + "|" + f.Code
		if seen[key] {
			continue
		}
		seen[key] = true
		recorded, err := m.store.RecordManualDiscount(ctx, merchantID, ev, code, f)
		if err != nil {
			return nil, err
		}
		o := CodeOutcome{Code: f.Code, ListID: f.List.ID, Outcome: OutcomeAlreadyRecorded, Uses: f.Uses, State: f.State}
		if recorded {
			o.Outcome = OutcomeRecorded
		}
		out = append(out, o)
	}
	return out, nil
}
