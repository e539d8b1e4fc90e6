package core

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// AllocationRequest asks for a code for one recipient and campaign.
type AllocationRequest struct {
	Recipient Recipient
	Campaign  string
	// Channel says how the code reaches the recipient: api (default), email, sms, push, shopify…
	Channel string
	Actor   string
	// RedeemLink, when set, is the redeem link handing the code out: the recipient gets one code
	// from the campaign ever, however often and however concurrently asked (whatever the list's
	// reassign window), and the link's hand-out count goes up by each new code.
	RedeemLink uuid.UUID
}

// Allocation is a code handed to a recipient.
type Allocation struct {
	ListID    uuid.UUID
	Seq       int64
	Code      string
	Recipient Recipient
	Campaign  string
	ExpiresAt *time.Time
	// Reused is true when the recipient and campaign already had this code within the list's
	// reassign window.
	Reused bool
}

// Allocation outcomes (Decide).
const (
	OutcomeOK             = "ok"
	OutcomeMiss           = "miss"
	OutcomeListNotFound   = "list_not_found"
	OutcomeListArchived   = "list_archived"
	OutcomeListNotStarted = "list_not_started"
	OutcomeListExpired    = "list_expired"
	OutcomeListExhausted  = "list_exhausted"
)

// AllocateResult is what one allocation did.
type AllocateResult struct {
	Outcome   string
	Seq       int64
	Code      string
	ExpiresAt *time.Time
	Reused    bool
	// Available is the list's available count after the allocation, when AvailableKnown: the
	// store counts only near the list's tail, where a stock crossing can happen.
	Available      int64
	AvailableKnown bool
	// NextSeq is the list's next free position: positions at or past it hold no code yet.
	NextSeq           int64
	LowStockThreshold int64
	StockState        string
	// HandsBack is true when the list hands a recipient's code back (a reassign window, or a
	// redeem link asking): a group's duplicates are served from it.
	HandsBack bool
}

// AllocationBatchItem is one request of a transaction of allocations: a recipient and campaign
// (distinct within the transaction), and the position drawn for it, or 0 for the first free code.
// A transaction's requests all name the same redeem link, or none.
type AllocationBatchItem struct {
	Pos          int64
	RecipientKey string
	Req          AllocationRequest
}

// AllocationStore locks and reads what allocations are decided on, persists the decisions, and
// records stock crossings.
type AllocationStore interface {
	// Allocate runs one transaction of allocations of the list (see allocationrules.go): it takes
	// the advisory locks of the items' recipients and campaigns, locks the codes at their positions
	// (skipping those another transaction holds), the first free codes for the items at position
	// 0, or a fixed list's code, and reads the list, the recipients' prior hand-outs and the
	// list's counts into a ledger; then it calls decide and persists its decisions (one per item,
	// in order) before it commits. At now it searches for free codes, and it stamps hand-outs.
	Allocate(ctx context.Context, merchantID, listID uuid.UUID, items []AllocationBatchItem, now time.Time,
		decide func(*AllocationLedger) []AllocationDecision) ([]AllocationDecision, error)
	// RecordStockCrossings moves the list's stock state down to where its available count now is
	// (ok → low → out) and records one domain event per state entered. It returns the events'
	// types; a crossing already recorded records nothing.
	RecordStockCrossings(ctx context.Context, merchantID, listID uuid.UUID) ([]string, error)
}

// AllocationCursor is a per-list counter over code positions, shared by every gateway process
// (Redis). It is only a hint: each position is decided on the code locked there (Decide), so a
// lost or reset cursor costs speed, never correctness.
type AllocationCursor interface {
	// Next draws the next position of the list.
	Next(ctx context.Context, listID uuid.UUID) (int64, error)
	// AtLeast moves the cursor forward to pos when it is behind.
	AtLeast(ctx context.Context, listID uuid.UUID, pos int64) error
	// AtMost moves the cursor back to pos when it is past it (after the list ran out, so that codes
	// added later are handed out in order).
	AtMost(ctx context.Context, listID uuid.UUID, pos int64) error
}

// maxMisses is how many drawn positions may turn out taken before falling back to a scan.
const maxMisses = 8

// Allocator hands out codes: each code to exactly one recipient, under any concurrency, across
// processes.
type Allocator struct {
	Clock
	store  AllocationStore
	cursor AllocationCursor
	log    *slog.Logger
	groups *allocationGroups
}

// NewAllocator returns the allocation service.
func NewAllocator(store AllocationStore, cursor AllocationCursor, log *slog.Logger) *Allocator {
	a := &Allocator{store: store, cursor: cursor, log: log}
	a.groups = newAllocationGroups(a)
	return a
}

// Allocate hands a code of the list to the recipient. The same recipient and campaign within the
// list's reassign window get the same code back (Reused).
func (a *Allocator) Allocate(ctx context.Context, merchantID, listID uuid.UUID, req AllocationRequest) (Allocation, error) {
	req.Recipient = Recipient{
		ExternalID: strings.TrimSpace(req.Recipient.ExternalID), Email: strings.TrimSpace(req.Recipient.Email),
		Phone: strings.TrimSpace(req.Recipient.Phone),
	}
	req.Campaign = strings.TrimSpace(req.Campaign)
	if req.Channel == "" {
		req.Channel = "api"
	}
	key := RecipientKey(req.Recipient)
	switch {
	case key == "":
		return Allocation{}, Invalid("recipient", "needs one of external_id, email or phone")
	case utf8.RuneCountInString(key) > 320:
		return Allocation{}, Invalid("recipient", "identifiers must be at most 300 characters")
	case utf8.RuneCountInString(req.Campaign) > 200:
		return Allocation{}, Invalid("campaign", "must be at most 200 characters")
	}
	res, err := a.groups.allocate(ctx, merchantID, listID, key, req)
	if err != nil {
		return Allocation{}, err
	}
	switch res.Outcome {
	case OutcomeOK:
	case OutcomeListNotFound:
		return Allocation{}, ErrListNotFound
	case OutcomeListArchived:
		return Allocation{}, ErrListArchived
	case OutcomeListNotStarted:
		return Allocation{}, ErrListNotStarted
	case OutcomeListExpired:
		return Allocation{}, ErrListExpired
	case OutcomeListExhausted:
		return Allocation{}, ErrListExhausted
	default:
		return Allocation{}, &Error{Kind: KindInternal, Code: "internal_error", Message: "unexpected allocation outcome " + res.Outcome}
	}
	return Allocation{ListID: listID, Seq: res.Seq, Code: res.Code, Recipient: req.Recipient, Campaign: req.Campaign,
		ExpiresAt: res.ExpiresAt, Reused: res.Reused}, nil
}

// allocate draws positions from the cursor until one holds a free code, then falls back to the
// scan, which also decides exhaustion.
func (a *Allocator) allocate(ctx context.Context, merchantID, listID uuid.UUID, key string, req AllocationRequest) (AllocateResult, error) {
	for miss := 0; miss < maxMisses; miss++ {
		pos, err := a.cursor.Next(ctx, listID)
		if err != nil {
			// Redis is down: allocation goes on without the cursor, slower but right.
			a.log.WarnContext(ctx, "allocation cursor unavailable; scanning instead", "err", err)
			break
		}
		res, err := a.allocateOne(ctx, merchantID, listID, pos, key, req)
		if err != nil {
			return AllocateResult{}, err
		}
		if res.Outcome != OutcomeMiss {
			return res, nil
		}
		if pos >= res.NextSeq {
			break // past the last code: drawing further is pointless
		}
	}
	res, err := a.allocateOne(ctx, merchantID, listID, 0, key, req)
	if err != nil {
		return AllocateResult{}, err
	}
	switch {
	case res.Outcome == OutcomeOK && !res.Reused:
		// Jump the cursor past the code the scan found (after a Redis reset it restarts at 1).
		if err := a.cursor.AtLeast(ctx, listID, res.Seq); err != nil {
			a.log.WarnContext(ctx, "allocation cursor not moved", "err", err)
		}
	case res.Outcome == OutcomeListExhausted && res.NextSeq > 0:
		if err := a.cursor.AtMost(ctx, listID, res.NextSeq-1); err != nil {
			a.log.WarnContext(ctx, "allocation cursor not moved", "err", err)
		}
	}
	return res, nil
}

// allocateOne decides one request in a transaction of its own: at position pos, or with pos 0
// the first free code.
func (a *Allocator) allocateOne(ctx context.Context, merchantID, listID uuid.UUID, pos int64, key string, req AllocationRequest) (AllocateResult, error) {
	res, err := a.decide(ctx, merchantID, listID, []AllocationBatchItem{{Pos: pos, RecipientKey: key, Req: req}})
	if err != nil {
		return AllocateResult{}, err
	}
	return res[0], nil
}

// decide runs one transaction of allocations, decided by the rules of allocationrules.go at the
// service's clock, and answers each item's result.
func (a *Allocator) decide(ctx context.Context, merchantID, listID uuid.UUID, items []AllocationBatchItem) ([]AllocateResult, error) {
	now := a.Now().UTC().Truncate(time.Microsecond) // as PostgreSQL keeps it
	ds, err := a.store.Allocate(ctx, merchantID, listID, items, now, func(l *AllocationLedger) []AllocationDecision {
		return DecideAllocations(l, items, now)
	})
	if err != nil {
		return nil, err
	}
	out := make([]AllocateResult, len(ds))
	for i, d := range ds {
		out[i] = d.AllocateResult
	}
	return out, nil
}

// crossesStock reports whether the available count the allocation answered lies past the list's
// stock state (a reused code answers no count, so never).
func (r AllocateResult) crossesStock() bool {
	return r.AvailableKnown && ((r.Available < r.LowStockThreshold && r.StockState == "ok") ||
		(r.Available == 0 && r.StockState != "out"))
}

// recordStock records low-stock and exhausted crossings. It runs after the allocation committed,
// in its own transaction, and only when the counts suggest a crossing; the sweeper catches any
// crossing two racing allocations both missed.
func (a *Allocator) recordStock(ctx context.Context, merchantID, listID uuid.UUID, res AllocateResult) {
	if !res.crossesStock() {
		return
	}
	events, err := a.store.RecordStockCrossings(context.WithoutCancel(ctx), merchantID, listID)
	if err != nil {
		a.log.WarnContext(ctx, "stock crossing not recorded yet; the sweeper will", "err", err)
		return
	}
	for _, e := range events {
		a.log.InfoContext(ctx, "stock event", "type", e, "list_id", listID)
	}
}
