package core_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// step is one order event on the code and what Decide must answer for it.
type step struct {
	order   string
	status  core.OrderStatus
	outcome string
	uses    int // the code's uses after the event
	// details are entries the timeline event must carry (nil: no event is written).
	details map[string]any
}

// TestDecideReadsLikeTheContract: the redemption rules, event by event on one code. A paid order
// counts one use once, whatever the platform retries; a code is used at most its limit, and a
// paid order past it is recorded as an over-use, never counted; other statuses are recorded once
// each, saying whether the order had counted a use.
func TestDecideReadsLikeTheContract(t *testing.T) {
	t.Parallel()
	single := core.UseRules{Kind: core.KindUnique, UseLimit: 1}
	for _, tc := range []struct {
		name  string
		rules core.UseRules
		state core.CodeState
		steps []step
	}{
		{"paid once counts one use", single, core.StateDelivered, []step{
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
		}},
		{"a paid order sent again is counted once", single, core.StateDelivered, []step{
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
			{"A", core.OrderPaid, core.OutcomeAlreadyCounted, 1, nil},
			{"A", core.OrderPaid, core.OutcomeAlreadyCounted, 1, nil},
		}},
		{"pending, then paid", single, core.StateDelivered, []step{
			{"A", core.OrderPending, core.OutcomeRecorded, 0, map[string]any{"after_redemption": false}},
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
		}},
		{"paid, then refunded: the use stays counted", single, core.StateDelivered, []step{
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
			{"A", core.OrderRefunded, core.OutcomeRecorded, 1, map[string]any{"after_redemption": true}},
			{"A", core.OrderRefunded, core.OutcomeAlreadyRecorded, 1, nil},
		}},
		{"cancelled before payment, recorded as not redeemed", single, core.StateDelivered, []step{
			{"A", core.OrderCancelled, core.OutcomeRecorded, 0, map[string]any{"after_redemption": false}},
			{"A", core.OrderCancelled, core.OutcomeAlreadyRecorded, 0, nil},
		}},
		{"a second order on a single-use code is an over-use, recorded and not counted", single, core.StateDelivered, []step{
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
			{"B", core.OrderPaid, core.OutcomeOverUse, 1, map[string]any{"uses": 1, "limit": int64(1)}},
			{"B", core.OrderPaid, core.OutcomeOverUse, 1, nil},
			{"B", core.OrderRefunded, core.OutcomeRecorded, 1, map[string]any{"after_redemption": false}},
		}},
		{"a code of three uses", core.UseRules{Kind: core.KindUnique, UseLimit: 3}, core.StateDelivered, []step{
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
			{"B", core.OrderPaid, core.OutcomeRedeemed, 2, map[string]any{"use": 2}},
			{"C", core.OrderPaid, core.OutcomeRedeemed, 3, map[string]any{"use": 3}},
			{"D", core.OrderPaid, core.OutcomeOverUse, 3, map[string]any{"uses": 3, "limit": int64(3)}},
		}},
		{"a shared code without a limit", core.UseRules{Kind: core.KindFixed}, core.StateDelivered, []step{
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
			{"B", core.OrderPaid, core.OutcomeRedeemed, 2, map[string]any{"use": 2}},
			{"C", core.OrderPaid, core.OutcomeRedeemed, 3, map[string]any{"use": 3}},
		}},
		{"a code never handed out, on a list that requires issuing, counts and is flagged",
			core.UseRules{Kind: core.KindUnique, UseLimit: 1, RequireIssued: true}, core.StateAvailable, []step{
				{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1, "not_issued": true}},
			}},
		{"a code never handed out, on a list that does not require issuing, counts unflagged", single, core.StateAvailable, []step{
			{"A", core.OrderPaid, core.OutcomeRedeemed, 1, map[string]any{"use": 1}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := core.CodeRef{ListID: uuid.New(), Seq: 7}
			l := core.NewUseLedger()
			l.Codes[ref] = &core.LockedCode{State: tc.state}
			now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			for i, s := range tc.steps {
				ev := core.OrderEvent{Platform: "shopify", Shop: "s.myshopify.com", OrderID: s.order, Status: s.status}
				d := l.Decide(ev, ref, tc.rules, now)
				if d.Outcome != s.outcome || d.Uses != s.uses {
					t.Fatalf("step %d (%s %s): %s with %d uses, want %s with %d", i+1, s.order, s.status, d.Outcome, d.Uses, s.outcome, s.uses)
				}
				if (s.details == nil) != (d.Event == "") {
					t.Fatalf("step %d: event %q, want one: %v", i+1, d.Event, s.details != nil)
				}
				for k, v := range s.details {
					if d.Details[k] != v {
						t.Errorf("step %d: details[%s] = %v, want %v (all: %v)", i+1, k, d.Details[k], v, d.Details)
					}
				}
				if _, flagged := d.Details["not_issued"]; flagged != (s.details["not_issued"] != nil) {
					t.Errorf("step %d: not_issued flag %v, want %v", i+1, flagged, !flagged)
				}
				wantWrites := d.Outcome != core.OutcomeAlreadyCounted && d.Outcome != core.OutcomeAlreadyRecorded &&
					!(d.Outcome == core.OutcomeOverUse && d.Event == "")
				if writes := d.RecordKey || d.RecordStatus; writes != wantWrites {
					t.Errorf("step %d: records %v, want %v", i+1, writes, wantWrites)
				}
				if d.CountUse != (d.Outcome == core.OutcomeRedeemed) || (d.RecordKey && d.Counted != d.CountUse) {
					t.Errorf("step %d: %s counts a use %v, key counted %v", i+1, d.Outcome, d.CountUse, d.Counted)
				}
			}
		})
	}
}

// TestDecideMovesCountersOnAUniqueCodesFirstUse: a unique code's list moves it to redeemed on its
// first use, from the state it was in; later uses, and shared codes, move nothing.
func TestDecideMovesCountersOnAUniqueCodesFirstUse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		rules core.UseRules
		state core.CodeState
		want  []core.CodeState // CountersFrom of each paid order in turn
	}{
		{"delivered", core.UseRules{Kind: core.KindUnique, UseLimit: 2}, core.StateDelivered, []core.CodeState{core.StateDelivered, ""}},
		{"never handed out", core.UseRules{Kind: core.KindUnique, UseLimit: 2}, core.StateAvailable, []core.CodeState{core.StateAvailable, ""}},
		{"redeemed before", core.UseRules{Kind: core.KindUnique, UseLimit: 5}, core.StateRedeemed, []core.CodeState{"", ""}},
		{"a shared code", core.UseRules{Kind: core.KindFixed, UseLimit: 5}, core.StateDelivered, []core.CodeState{"", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := core.CodeRef{ListID: uuid.New(), Seq: 1}
			l := core.NewUseLedger()
			l.Codes[ref] = &core.LockedCode{State: tc.state}
			for i, want := range tc.want {
				ev := core.OrderEvent{Platform: "woocommerce", Shop: "shop.example", OrderID: string(rune('A' + i)), Status: core.OrderPaid}
				if d := l.Decide(ev, ref, tc.rules, time.Now()); d.CountersFrom != want || d.State != core.StateRedeemed {
					t.Errorf("order %d: counters from %q, state %s; want from %q, redeemed", i+1, d.CountersFrom, d.State, want)
				}
			}
		})
	}
}

// TestDecideEndsARunningHold: a counted use clears the code's hold and ends it when it still runs
// at now; a hold that ran out is cleared without being ended again; an over-use leaves the hold.
func TestDecideEndsARunningHold(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	hold := uuid.New()
	for _, tc := range []struct {
		name    string
		until   time.Time
		uses    int
		endHold bool
		cleared bool
	}{
		{"running", now.Add(time.Minute), 0, true, true},
		{"ran out", now.Add(-time.Second), 0, false, true},
		{"ends exactly now", now, 0, false, true},
		{"no use left", now.Add(time.Minute), 1, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := core.CodeRef{ListID: uuid.New(), Seq: 1}
			l := core.NewUseLedger()
			until := tc.until
			l.Codes[ref] = &core.LockedCode{State: core.StateDelivered, Uses: tc.uses, HoldID: &hold, HeldUntil: &until}
			d := l.Decide(core.OrderEvent{Platform: "custom", OrderID: "A", Status: core.OrderPaid}, ref,
				core.UseRules{Kind: core.KindUnique, UseLimit: 1}, now)
			if got := d.EndHold != nil && *d.EndHold == hold; got != tc.endHold {
				t.Errorf("hold ended: %v, want %v", got, tc.endHold)
			}
			if cleared := l.Codes[ref].HoldID == nil; cleared != tc.cleared {
				t.Errorf("hold cleared from the code: %v, want %v", cleared, tc.cleared)
			}
		})
	}
}

// TestDecideApplicationsInOrder: a batch's events are decided in order on what the earlier ones
// did: two orders racing for the last use of a code in one batch get one use, the first in the
// batch; the same paid order twice in a batch counts once; other codes are not affected.
func TestDecideApplicationsInOrder(t *testing.T) {
	t.Parallel()
	list := core.List{ID: uuid.New(), Kind: core.KindUnique, UsesPerCode: 1}
	a, b := core.FoundCode{List: list, Seq: 1, Code: "A"}, core.FoundCode{List: list, Seq: 2, Code: "B"}
	l := core.NewUseLedger()
	l.Codes[core.CodeRef{ListID: list.ID, Seq: 1}] = &core.LockedCode{State: core.StateDelivered}
	l.Codes[core.CodeRef{ListID: list.ID, Seq: 2}] = &core.LockedCode{State: core.StateDelivered}
	paid := func(order string) core.OrderEvent {
		return core.OrderEvent{Platform: "shopify", Shop: "s", OrderID: order, Status: core.OrderPaid}
	}
	apps := []core.CodeApplication{
		{Receipt: 0, Event: paid("1"), Code: a},
		{Receipt: 1, Event: paid("2"), Code: a},
		{Receipt: 2, Event: paid("1"), Code: a},
		{Receipt: 3, Event: paid("3"), Code: b},
	}
	got := core.DecideApplications(l, apps, time.Now())
	want := []string{core.OutcomeRedeemed, core.OutcomeOverUse, core.OutcomeAlreadyCounted, core.OutcomeRedeemed}
	for i := range want {
		if got[i].Outcome != want[i] {
			t.Errorf("application %d: %s, want %s", i, got[i].Outcome, want[i])
		}
	}
}
