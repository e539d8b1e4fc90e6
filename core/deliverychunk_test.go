package core_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// TestDecideChunkReadsLikeTheContract: a bulk send's chunk, decided on one ledger. A list that
// hands out nothing refuses the whole chunk; a recipient who has a delivery keeps it and takes no
// code; the others get the free codes in the order the store found them, a code handed back
// within the reassign window, or a fixed list's code up to max_assignments; whoever is left gets
// a waiting delivery; the counts and the last position handed out follow. The store is asked to
// lock one free code for each recipient who will ask for a new one, and none for a fixed list.
func TestDecideChunkReadsLikeTheContract(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	free := func(seq int64) *core.OfferedCode {
		return &core.OfferedCode{Seq: seq, Code: "C" + string(rune('A'+seq)), State: core.StateAvailable}
	}
	unique := &core.List{Kind: core.KindUnique, ReassignWindow: 24 * time.Hour, LowStockThreshold: 10}
	fixed := &core.List{Kind: core.KindFixed, MaxAssignments: 2}
	archived := &core.List{Kind: core.KindUnique, ArchivedAt: &now}
	// want is one recipient's delivery: its status and code, and whether the chunk made it.
	type want struct {
		status, code string
		created      bool
	}
	for _, tc := range []struct {
		name      string
		list      *core.List
		codes     []*core.OfferedCode // offered, and scanned in this order
		scanned   []int64
		prior     map[string]core.PriorHandOut // by recipient key
		existing  map[int]core.Delivery
		available int64
		delivered int64
		outcome   string
		want      []want // for recipients a, b, c
		left      int64  // the available count after the chunk
		lastSeq   int64
		wanted    int // the free codes the store is to lock first (CodesWanted)
	}{
		{name: "a list that does not exist refuses the chunk", outcome: core.OutcomeListNotFound},
		{name: "an archived list refuses the chunk", list: archived, codes: []*core.OfferedCode{free(1)}, scanned: []int64{1},
			outcome: core.OutcomeListArchived},
		{name: "each recipient gets the next free code", list: unique, codes: []*core.OfferedCode{free(4), free(2), free(7)},
			scanned: []int64{4, 2, 7}, available: 20, outcome: core.OutcomeOK, wanted: 3,
			want: []want{{"queued", "CE", true}, {"queued", "CC", true}, {"queued", "CH", true}}, left: 17, lastSeq: 7},
		{name: "a recipient with a delivery keeps it and takes no code", list: unique, codes: []*core.OfferedCode{free(1), free(2)},
			scanned: []int64{1, 2}, available: 2, existing: map[int]core.Delivery{1: {Status: "sent", Code: "OLD"}}, outcome: core.OutcomeOK, wanted: 2,
			want: []want{{"queued", "CB", true}, {"sent", "OLD", false}, {"queued", "CC", true}}, left: 0, lastSeq: 2},
		{name: "a recipient within the reassign window gets the code back", list: unique, codes: []*core.OfferedCode{free(3)},
			scanned: []int64{3}, available: 1, prior: map[string]core.PriorHandOut{"email:b@example.com": {Seq: 1, Code: "EARLIER", AllocatedAt: now.Add(-time.Hour)}},
			outcome: core.OutcomeOK, wanted: 2, want: []want{{"queued", "CD", true}, {"queued", "EARLIER", true}, {"waiting", "", true}}, left: 0, lastSeq: 3},
		{name: "a code no longer issuable is passed over, and who is left waits", list: unique,
			codes:   []*core.OfferedCode{free(1), {Seq: 2, Code: "HELD", State: core.StateAvailable, HoldID: new(uuid.New()), HeldUntil: new(now.Add(time.Minute))}},
			scanned: []int64{2, 1}, available: 2, outcome: core.OutcomeOK, wanted: 3,
			want: []want{{"queued", "CB", true}, {"waiting", "", true}, {"waiting", "", true}}, left: 1, lastSeq: 1},
		{name: "a fixed list's code goes out up to max_assignments", list: fixed, codes: []*core.OfferedCode{{Seq: 1, Code: "WELCOME", State: core.StateAvailable}},
			available: 1, outcome: core.OutcomeOK,
			want: []want{{"queued", "WELCOME", true}, {"queued", "WELCOME", true}, {"waiting", "", true}}, left: 0, lastSeq: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &core.ChunkLedger{AllocationLedger: core.NewAllocationLedger(), Existing: tc.existing}
			l.List, l.Scanned, l.Available, l.Delivered, l.CountsKnown = tc.list, tc.scanned, tc.available, tc.delivered, true
			for _, c := range tc.codes {
				code := *c
				l.Codes[c.Seq] = &code
			}
			for key, p := range tc.prior {
				l.Prior[core.RecipientCampaign{RecipientKey: key}] = p
			}
			c := core.DeliveryChunk{MerchantID: uuid.New(), ListID: uuid.New(), JobID: uuid.New(), Channel: core.ChannelEmail, CreatedAt: now,
				Recipients: []core.MessageRecipient{{Email: "a@example.com"}, {Email: "B@example.com"}, {Email: "c@example.com"}},
				IDs:        []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}}
			if n := l.CodesWanted(c); n != tc.wanted {
				t.Errorf("wants %d free codes, want %d", n, tc.wanted)
			}
			d := core.DecideChunk(l, c)
			if d.Outcome != tc.outcome {
				t.Fatalf("outcome %q, want %q", d.Outcome, tc.outcome)
			}
			if tc.outcome != core.OutcomeOK {
				if len(d.Deliveries) != 0 || len(d.Allocations) != 0 {
					t.Fatalf("a refused chunk decided %d deliveries and %d allocations", len(d.Deliveries), len(d.Allocations))
				}
				return
			}
			for i, w := range tc.want {
				got := d.Deliveries[i]
				if got.Status != w.status || got.Code != w.code || d.Created[i] != w.created {
					t.Errorf("recipient %d: %s %q (made %v), want %s %q (made %v)", i, got.Status, got.Code, d.Created[i], w.status, w.code, w.created)
				}
				if w.created && (got.ID != c.IDs[i] || got.CreatedAt != now || got.JobID == nil || *got.JobID != c.JobID) {
					t.Errorf("recipient %d's new delivery: %+v", i, got)
				}
				// A code is taken (an allocation row, the counters) only by a new hand-out.
				takes := w.created && w.status == core.DeliveryQueued && !d.Allocations[i].Reused
				if d.Allocations[i].Take != takes {
					t.Errorf("recipient %d: take %v, want %v", i, d.Allocations[i].Take, takes)
				}
			}
			if d.Available != tc.left || d.LastSeq != tc.lastSeq {
				t.Errorf("available %d, last position %d; want %d and %d", d.Available, d.LastSeq, tc.left, tc.lastSeq)
			}
		})
	}
}
