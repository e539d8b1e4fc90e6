package core

import (
	"time"

	"github.com/google/uuid"
)

// The rules of allocation live in this file: when a list hands out codes at all (it exists, is
// not archived, has started, has not expired), when a recipient gets their earlier code back (the
// list's reassign window; a redeem link's one code ever), how many times a fixed list's code is
// handed out (max_assignments), which code of a unique list may be handed out now (available,
// inside its issue window and its availability, not held by a checkout), and how the list's
// counts move. The store reads what they are decided on (an AllocationLedger) under the
// recipients' advisory locks and the codes' row locks, calls DecideAllocations, and persists the
// decisions in the same transaction; it decides nothing itself. An allocation through the API, a
// redeem link, a message, a group of them or a bulk send's chunk (DecideChunk) is decided by the
// same function.

// RecipientCampaign names one recipient's hand-outs of one campaign: within a list's reassign
// window, or from a redeem link, they get one code.
type RecipientCampaign struct {
	RecipientKey, Campaign string
}

// PriorHandOut is a recipient's and campaign's last hand-out from the list, with its code.
type PriorHandOut struct {
	Seq         int64
	Code        string
	AllocatedAt time.Time
	// AvailableTill and DeliveredAt are the code's, for its expiry (CodeExpiresAt).
	AvailableTill, DeliveredAt *time.Time
}

// OfferedCode is a code the store locked for the transaction: one at a position drawn for a
// request, one a scan found, or a fixed list's one code.
type OfferedCode struct {
	Seq   int64
	Code  string
	State CodeState
	// IssueStart and IssueEnd bound when the code may be handed out; AvailableTill ends it.
	IssueStart, IssueEnd, AvailableTill *time.Time
	// HoldID and HeldUntil are the checkout hold last taken on the code (nil when none).
	HoldID      *uuid.UUID
	HeldUntil   *time.Time
	DeliveredAt *time.Time
}

// Issuable reports whether a unique list's code may be handed out at now: it is still available,
// inside its issue window, not past its availability, and no checkout holds it. The store's scan
// for a free code (store/allocation.go) searches by the same conditions; a code it finds is
// still decided here.
func (c *OfferedCode) Issuable(now time.Time) bool {
	return c.State == StateAvailable &&
		(c.IssueStart == nil || !c.IssueStart.After(now)) && (c.IssueEnd == nil || c.IssueEnd.After(now)) &&
		(c.AvailableTill == nil || c.AvailableTill.After(now)) &&
		(c.HoldID == nil || (c.HeldUntil != nil && !c.HeldUntil.After(now)))
}

// AllocationLedger is what one transaction of allocations is decided on, read by the store under
// the advisory locks of the requests' recipients and campaigns and the row locks of the codes
// offered: what is read is final until the commit. DecideAllocations keeps it current, so a later
// request of the same transaction is decided on what the earlier ones took.
type AllocationLedger struct {
	// List is the list with its rules; nil when it does not exist.
	List *List
	// NextSeq is the list's next free position, and StockState its recorded stock state.
	NextSeq    int64
	StockState string
	// Prior holds each recipient's and campaign's last hand-out from the list, read when the list
	// hands codes back (a reassign window, or a redeem link asking).
	Prior map[RecipientCampaign]PriorHandOut
	// Codes are the codes the store locked, by position: those at the drawn positions that no
	// other transaction held, those the scan found, and a fixed list's code (position 1). A drawn
	// position missing here holds no code or is being taken by another transaction.
	Codes map[int64]*OfferedCode
	// Scanned are the positions of the free codes the scan found, in order, for the requests that
	// draw no position.
	Scanned []int64
	// Available and Delivered are the list's counts as read, when CountsKnown: the store reads
	// them for a fixed list, for a scan, and near a unique list's tail, where stock crossings are.
	Available, Delivered int64
	CountsKnown          bool
}

// NewAllocationLedger returns an empty ledger, for the store to fill.
func NewAllocationLedger() *AllocationLedger {
	return &AllocationLedger{Prior: map[RecipientCampaign]PriorHandOut{}, Codes: map[int64]*OfferedCode{}}
}

// AllocationDecision is what one request does: the answer, and what the store writes for it.
type AllocationDecision struct {
	AllocateResult
	// Take says a code is handed out now (Seq): the store records the allocation, which is the
	// delivered event of the code's timeline, and moves the list's counters (and the redeem link's
	// hand-out count). A unique list's code is marked delivered to the recipient.
	Take bool
	// FirstDelivery says a fixed list's code is handed out for the first time: it is marked
	// delivered, at the transaction's time.
	FirstDelivery bool
	// TakesAvailable says the hand-out takes a code from the list's available count: every one of
	// a unique list, and a fixed list's last under max_assignments.
	TakesAvailable bool
}

// Decide decides one request at now and records what it took in the ledger. Pos is the position
// drawn for it, or 0 for the first free code the scan found.
//
//   - A redeem link hands a recipient its one code back ever, even from a list that no longer
//     hands out new ones.
//   - Otherwise a list that does not exist, is archived, has not started or has expired hands out
//     nothing, not even a code handed out before.
//   - A list with a reassign window hands the recipient and campaign their code back while their
//     last hand-out is within it.
//   - A fixed list hands its one code out up to max_assignments times (0: without limit); the
//     last hand-out takes it from the available count, and the one after is refused (exhausted).
//   - A unique list hands out the code at the drawn position when it is issuable now (else the
//     answer is a miss, and core draws again); with no position, the first issuable code the scan
//     found, or exhausted when none is.
func (l *AllocationLedger) Decide(it AllocationBatchItem, now time.Time) AllocationDecision {
	var d AllocationDecision
	if l.List == nil {
		d.Outcome = OutcomeListNotFound
		return d
	}
	list := l.List
	d.NextSeq, d.LowStockThreshold, d.StockState = l.NextSeq, list.LowStockThreshold, l.StockState
	link := it.Req.RedeemLink != uuid.Nil
	d.HandsBack = link || list.ReassignWindow > 0
	rc := RecipientCampaign{RecipientKey: it.RecipientKey, Campaign: it.Req.Campaign}
	prior, hasPrior := l.Prior[rc]
	handBack := func() AllocationDecision {
		d.Outcome, d.Seq, d.Code, d.Reused = OutcomeOK, prior.Seq, prior.Code, true
		d.ExpiresAt = CodeExpiresAt(*list, prior.AvailableTill, prior.DeliveredAt)
		return d
	}
	if link && hasPrior {
		return handBack()
	}
	if d.Outcome = l.refusal(now); d.Outcome != "" {
		return d
	}
	if l.withinWindow(rc, now) {
		return handBack()
	}
	var code *OfferedCode
	if list.Kind == KindFixed {
		code = l.Codes[1]
		if code == nil || (list.MaxAssignments > 0 && l.Delivered >= list.MaxAssignments) {
			d.Outcome, d.Available, d.AvailableKnown = OutcomeListExhausted, 0, true
			return d
		}
		l.Delivered++
		d.FirstDelivery = code.State == StateAvailable
		d.TakesAvailable = list.MaxAssignments > 0 && l.Delivered == list.MaxAssignments
		if d.FirstDelivery {
			code.State, code.DeliveredAt = StateDelivered, &now
		}
		if d.TakesAvailable {
			l.Available--
		}
		d.Available, d.AvailableKnown = l.Available, l.CountsKnown
	} else {
		if it.Pos > 0 {
			if code = l.Codes[it.Pos]; code == nil || !code.Issuable(now) {
				d.Outcome = OutcomeMiss
				return d
			}
		} else {
			for len(l.Scanned) > 0 && code == nil {
				if c := l.Codes[l.Scanned[0]]; c != nil && c.Issuable(now) {
					code = c
				}
				l.Scanned = l.Scanned[1:]
			}
			if code == nil {
				d.Outcome, d.Available, d.AvailableKnown = OutcomeListExhausted, max(l.Available, 0), l.CountsKnown
				return d
			}
		}
		code.State, code.DeliveredAt = StateDelivered, &now
		l.Available--
		l.Delivered++
		d.TakesAvailable = true
		d.Available, d.AvailableKnown = l.Available, l.CountsKnown
	}
	d.Outcome, d.Seq, d.Code, d.Take = OutcomeOK, code.Seq, code.Code, true
	d.ExpiresAt = CodeExpiresAt(*list, code.AvailableTill, &now)
	l.Prior[rc] = PriorHandOut{Seq: code.Seq, Code: code.Code, AllocatedAt: now, AvailableTill: code.AvailableTill, DeliveredAt: code.DeliveredAt}
	return d
}

// withinWindow reports whether the list's reassign window still holds the recipient's and
// campaign's last hand-out, which they are then handed back.
func (l *AllocationLedger) withinWindow(rc RecipientCampaign, now time.Time) bool {
	prior, ok := l.Prior[rc]
	return ok && l.List.ReassignWindow > 0 && prior.AllocatedAt.After(now.Add(-l.List.ReassignWindow))
}

// refusal is why the list hands out nothing at now: it does not exist, is archived, has not
// started or has expired ("" when it hands out codes).
func (l *AllocationLedger) refusal(now time.Time) string {
	list := l.List
	switch {
	case list == nil:
		return OutcomeListNotFound
	case list.ArchivedAt != nil:
		return OutcomeListArchived
	case list.StartsAt != nil && list.StartsAt.After(now):
		return OutcomeListNotStarted
	case list.ExpiresAt != nil && !list.ExpiresAt.After(now):
		return OutcomeListExpired
	}
	return ""
}

// DecideAllocations decides items in order, each as Decide decides one, at now: a later request
// is decided on what the earlier ones took.
func DecideAllocations(l *AllocationLedger, items []AllocationBatchItem, now time.Time) []AllocationDecision {
	out := make([]AllocationDecision, len(items))
	for i, it := range items {
		out[i] = l.Decide(it, now)
	}
	return out
}
