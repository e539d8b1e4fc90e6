package core_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// ask is one request of a transaction and what Decide must answer for it.
type ask struct {
	who     string // the recipient's key
	pos     int64  // the position drawn; 0 takes the first free code
	outcome string
	seq     int64 // the code handed out (0: none)
	reused  bool
}

// TestAllocationDecideReadsLikeTheContract: the allocation rules, request by request on one
// ledger. A list hands out codes only between its start and end and until it is archived; a
// recipient asking again within the reassign window gets the same code, and from a redeem link
// the same code ever; a fixed list's code goes out at most max_assignments times; a unique list's
// code goes to one recipient, only while it is issuable.
func TestAllocationDecideReadsLikeTheContract(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	free := func(seq int64) *core.OfferedCode {
		return &core.OfferedCode{Seq: seq, Code: "C" + string(rune('A'+seq)), State: core.StateAvailable}
	}
	unique := core.List{Kind: core.KindUnique, ReassignWindow: 24 * time.Hour}
	noWindow := core.List{Kind: core.KindUnique}
	link := uuid.New()
	type ledger struct {
		list      *core.List
		codes     []*core.OfferedCode
		scanned   []int64
		prior     map[string]core.PriorHandOut // by recipient key, campaign ""
		available int64
		delivered int64
	}
	with := func(l core.List, mod func(*core.List)) *core.List { mod(&l); return &l }
	for _, tc := range []struct {
		name   string
		ledger ledger
		link   bool
		asks   []ask
	}{
		{"a list that does not exist hands out nothing", ledger{}, false, []ask{
			{"a", 1, core.OutcomeListNotFound, 0, false},
		}},
		{"an archived list hands out nothing", ledger{list: with(unique, func(l *core.List) { l.ArchivedAt = at(-time.Hour) }), codes: []*core.OfferedCode{free(1)}}, false, []ask{
			{"a", 1, core.OutcomeListArchived, 0, false},
		}},
		{"a list before its start hands out nothing", ledger{list: with(unique, func(l *core.List) { l.StartsAt = at(time.Minute) }), codes: []*core.OfferedCode{free(1)}}, false, []ask{
			{"a", 1, core.OutcomeListNotStarted, 0, false},
		}},
		{"a list past its end hands out nothing", ledger{list: with(unique, func(l *core.List) { l.ExpiresAt = at(0) }), codes: []*core.OfferedCode{free(1)}}, false, []ask{
			{"a", 1, core.OutcomeListExpired, 0, false},
		}},
		{"each recipient gets a code of their own", ledger{list: &unique, codes: []*core.OfferedCode{free(1), free(2)}, available: 2}, false, []ask{
			{"a", 1, core.OutcomeOK, 1, false},
			{"b", 2, core.OutcomeOK, 2, false},
		}},
		{"asking again within the reassign window hands the same code back", ledger{list: &unique, codes: []*core.OfferedCode{free(2)},
			prior: map[string]core.PriorHandOut{"a": {Seq: 1, Code: "CB", AllocatedAt: now.Add(-23 * time.Hour)}}}, false, []ask{
			{"a", 2, core.OutcomeOK, 1, true},
		}},
		{"asking again after the window gets a new code", ledger{list: &unique, codes: []*core.OfferedCode{free(2)},
			prior: map[string]core.PriorHandOut{"a": {Seq: 1, Code: "CB", AllocatedAt: now.Add(-24 * time.Hour)}}}, false, []ask{
			{"a", 2, core.OutcomeOK, 2, false},
		}},
		{"a list without a window hands every request a new code", ledger{list: &noWindow, codes: []*core.OfferedCode{free(1), free(2)}}, false, []ask{
			{"a", 1, core.OutcomeOK, 1, false},
			{"a", 2, core.OutcomeOK, 2, false},
		}},
		{"a code handed out in the transaction is handed back to the same recipient", ledger{list: &unique, codes: []*core.OfferedCode{free(1), free(2)}}, false, []ask{
			{"a", 1, core.OutcomeOK, 1, false},
			{"a", 2, core.OutcomeOK, 1, true},
		}},
		{"a redeem link hands its one code back ever, even from an archived list", ledger{
			list:  with(noWindow, func(l *core.List) { l.ArchivedAt = at(-time.Hour) }),
			prior: map[string]core.PriorHandOut{"a": {Seq: 7, Code: "CH", AllocatedAt: now.Add(-400 * 24 * time.Hour)}}}, true, []ask{
			{"a", 1, core.OutcomeOK, 7, true},
			{"b", 1, core.OutcomeListArchived, 0, false},
		}},
		{"an archived list does not hand a code back within the window either", ledger{list: with(unique, func(l *core.List) { l.ArchivedAt = at(-time.Hour) }),
			prior: map[string]core.PriorHandOut{"a": {Seq: 1, Code: "CB", AllocatedAt: now.Add(-time.Hour)}}}, false, []ask{
			{"a", 2, core.OutcomeListArchived, 0, false},
		}},
		{"a code already handed out is a miss, and core draws again", ledger{list: &unique, codes: []*core.OfferedCode{
			{Seq: 1, Code: "CB", State: core.StateDelivered}, {Seq: 2, Code: "CC", State: core.StateRedeemed}}}, false, []ask{
			{"a", 1, core.OutcomeMiss, 0, false},
			{"b", 2, core.OutcomeMiss, 0, false},
		}},
		{"a position another transaction is taking (not locked here) is a miss", ledger{list: &unique}, false, []ask{
			{"a", 5, core.OutcomeMiss, 0, false},
		}},
		{"a code outside its issue window or past its availability is not handed out", ledger{list: &unique, codes: []*core.OfferedCode{
			{Seq: 1, Code: "CB", State: core.StateAvailable, IssueStart: at(time.Minute)},
			{Seq: 2, Code: "CC", State: core.StateAvailable, IssueEnd: at(0)},
			{Seq: 3, Code: "CD", State: core.StateAvailable, AvailableTill: at(0)},
			{Seq: 4, Code: "CE", State: core.StateAvailable, IssueStart: at(0), IssueEnd: at(time.Second), AvailableTill: at(time.Second)}}}, false, []ask{
			{"a", 1, core.OutcomeMiss, 0, false},
			{"b", 2, core.OutcomeMiss, 0, false},
			{"c", 3, core.OutcomeMiss, 0, false},
			{"d", 4, core.OutcomeOK, 4, false},
		}},
		{"a code a checkout holds waits until the hold ends", ledger{list: &unique, codes: []*core.OfferedCode{
			{Seq: 1, Code: "CB", State: core.StateAvailable, HoldID: new(uuid.New()), HeldUntil: at(time.Minute)},
			{Seq: 2, Code: "CC", State: core.StateAvailable, HoldID: new(uuid.New()), HeldUntil: at(0)}}}, false, []ask{
			{"a", 1, core.OutcomeMiss, 0, false},
			{"b", 2, core.OutcomeOK, 2, false},
		}},
		{"the scan hands out the first issuable codes, then the list is exhausted", ledger{list: &unique, available: 3, codes: []*core.OfferedCode{
			{Seq: 3, Code: "CD", State: core.StateAvailable, IssueStart: at(time.Hour)}, free(4), free(9)}, scanned: []int64{3, 4, 9}}, false, []ask{
			{"a", 0, core.OutcomeOK, 4, false},
			{"b", 0, core.OutcomeOK, 9, false},
			{"c", 0, core.OutcomeListExhausted, 0, false},
		}},
		{"a fixed list's code goes out up to max_assignments times", ledger{
			list: &core.List{Kind: core.KindFixed, MaxAssignments: 3}, codes: []*core.OfferedCode{{Seq: 1, Code: "SUMMER", State: core.StateDelivered}},
			available: 1, delivered: 1}, false, []ask{
			{"a", 0, core.OutcomeOK, 1, false},
			{"b", 0, core.OutcomeOK, 1, false},
			{"c", 0, core.OutcomeListExhausted, 0, false},
		}},
		{"a fixed list without a limit never runs out", ledger{
			list: &core.List{Kind: core.KindFixed}, codes: []*core.OfferedCode{free(1)}, available: 1, delivered: 1_000_000}, false, []ask{
			{"a", 0, core.OutcomeOK, 1, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := core.NewAllocationLedger()
			l.List, l.Scanned, l.Available, l.Delivered, l.CountsKnown = tc.ledger.list, tc.ledger.scanned, tc.ledger.available, tc.ledger.delivered, true
			for _, c := range tc.ledger.codes {
				l.Codes[c.Seq] = c
			}
			for who, p := range tc.ledger.prior {
				l.Prior[core.RecipientCampaign{RecipientKey: who}] = p
			}
			for i, a := range tc.asks {
				req := core.AllocationRequest{}
				if tc.link {
					req.RedeemLink = link
				}
				d := l.Decide(core.AllocationBatchItem{Pos: a.pos, RecipientKey: a.who, Req: req}, now)
				if d.Outcome != a.outcome || d.Seq != a.seq || d.Reused != a.reused {
					t.Fatalf("request %d (%s at %d): %s code %d reused %v, want %s code %d reused %v",
						i+1, a.who, a.pos, d.Outcome, d.Seq, d.Reused, a.outcome, a.seq, a.reused)
				}
				if d.Take != (a.outcome == core.OutcomeOK && !a.reused) {
					t.Errorf("request %d: take %v for %s reused %v", i+1, d.Take, a.outcome, a.reused)
				}
			}
		})
	}
}

// TestAllocationDecideMovesTheCounts: what the store writes follows from the decisions. A unique
// list's hand-outs each take one code from the available count; a fixed list's code is marked
// delivered on its first hand-out and leaves the available count with its last one; the answers
// carry the count left, for the stock crossings.
func TestAllocationDecideMovesTheCounts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

	l := core.NewAllocationLedger()
	l.List, l.Available, l.CountsKnown = &core.List{Kind: core.KindUnique, ValidFor: time.Hour}, 5, true
	for seq := int64(1); seq <= 3; seq++ {
		l.Codes[seq] = &core.OfferedCode{Seq: seq, Code: "U", State: core.StateAvailable}
	}
	ds := core.DecideAllocations(l, []core.AllocationBatchItem{{Pos: 1, RecipientKey: "a"}, {Pos: 2, RecipientKey: "b"}, {Pos: 3, RecipientKey: "c"}}, now)
	for i, want := range []int64{4, 3, 2} {
		if d := ds[i]; !d.Take || !d.TakesAvailable || !d.AvailableKnown || d.Available != want {
			t.Errorf("unique hand-out %d: take %v (from available %v), available %d (known %v), want %d", i+1, d.Take, d.TakesAvailable, d.Available, d.AvailableKnown, want)
		}
		if d := ds[i]; d.ExpiresAt == nil || !d.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Errorf("unique hand-out %d expires %v, want an hour after it (valid_for)", i+1, d.ExpiresAt)
		}
	}

	f := core.NewAllocationLedger()
	f.List, f.Available, f.Delivered, f.CountsKnown = &core.List{Kind: core.KindFixed, MaxAssignments: 2}, 1, 0, true
	f.Codes[1] = &core.OfferedCode{Seq: 1, Code: "SUMMER", State: core.StateAvailable}
	ds = core.DecideAllocations(f, []core.AllocationBatchItem{{RecipientKey: "a"}, {RecipientKey: "b"}, {RecipientKey: "c"}}, now)
	for i, want := range []struct {
		outcome      string
		first, takes bool
		available    int64
	}{
		{core.OutcomeOK, true, false, 1},
		{core.OutcomeOK, false, true, 0},
		{core.OutcomeListExhausted, false, false, 0},
	} {
		d := ds[i]
		if d.Outcome != want.outcome || d.FirstDelivery != want.first || d.TakesAvailable != want.takes || d.Available != want.available {
			t.Errorf("fixed hand-out %d: %s first %v takes %v available %d, want %+v", i+1, d.Outcome, d.FirstDelivery, d.TakesAvailable, d.Available, want)
		}
	}
}
