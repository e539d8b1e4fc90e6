package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// TestPushBookkeeping: claims take the list's codes in order past the cursor, removed codes left
// out, each once; outcomes count once however often they are recorded; a stopped push claims
// nothing; each outcome is its code's timeline event.
func TestPushBookkeeping(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	m, _, err := core.NewMerchants(db).Create(ctx, "Push Shop")
	if err != nil {
		t.Fatal(err)
	}
	l, err := core.NewLists(db).Create(ctx, m.ID, core.ListInput{Name: "Pushed"})
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]string, 250)
	for i := range codes {
		codes[i] = fmt.Sprintf("PB-%03d", i)
	}
	if _, err := db.AddCodes(ctx, l, codes); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `UPDATE codes SET state = 'removed' WHERE merchant_id = $1 AND list_id = $2 AND code IN ('PB-005', 'PB-120')`,
		m.ID, l.ID); err != nil {
		t.Fatal(err)
	}
	conn := uuid.New()
	if _, err := db.Pool().Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, 'woocommerce', 'https://shop.example')`,
		m.ID, conn); err != nil {
		t.Fatal(err)
	}
	ref := core.PushRef{MerchantID: m.ID, ListID: l.ID, ConnectionID: conn}
	if _, _, err := db.CreatePush(ctx, core.Push{MerchantID: m.ID, ListID: l.ID, ConnectionID: conn, State: core.PushPending,
		Discount: core.Discount{Title: "Ten", ValueType: core.ValuePercentage, Value: 10}}); err != nil {
		t.Fatal(err)
	}

	first, atEnd, stopped, err := db.ClaimPushBatch(ctx, ref, 100)
	if err != nil || atEnd || stopped || len(first) != 100 {
		t.Fatalf("first claim: %d codes, atEnd %v, stopped %v, %v", len(first), atEnd, stopped, err)
	}
	rest, atEnd, _, err := db.ClaimPushBatch(ctx, ref, 1000)
	if err != nil || !atEnd || len(rest) != 148 {
		t.Fatalf("second claim: %d codes, atEnd %v, %v", len(rest), atEnd, err)
	}
	var got []string
	for _, c := range slices.Concat(first, rest) {
		got = append(got, c.Code)
	}
	want := slices.DeleteFunc(slices.Clone(codes), func(c string) bool { return c == "PB-005" || c == "PB-120" })
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v…, want the list's live codes in order", got[:5])
	}
	if again, atEnd, _, err := db.ClaimPushBatch(ctx, ref, 100); err != nil || len(again) != 0 || !atEnd {
		t.Fatalf("a third claim took %d codes (atEnd %v, %v)", len(again), atEnd, err)
	}

	outcomes := make([]core.PushOutcome, len(first))
	for i, c := range first {
		outcomes[i] = core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: strconv.Itoa(1000 + i)}
	}
	outcomes[7] = core.PushOutcome{Seq: first[7].Seq, Error: "invalid coupon"}
	for range 2 { // recorded twice (a rerun): counted once
		if err := db.FinishPushCodes(ctx, ref, outcomes); err != nil {
			t.Fatal(err)
		}
	}
	p, err := db.GetPush(ctx, ref)
	if err != nil || p.Pushed != 99 || p.Failed != 1 || p.Pending != 148 {
		t.Fatalf("push after the outcomes: pushed %d, failed %d, pending %d (%v)", p.Pushed, p.Failed, p.Pending, err)
	}

	for _, tc := range []struct {
		code, event, key, value string
	}{
		{first[0].Code, core.EventPushed, "remote_id", "1000"},
		{first[7].Code, core.EventPushFailed, "error", "invalid coupon"},
	} {
		c, err := db.GetCode(ctx, l, tc.code)
		if err != nil {
			t.Fatal(err)
		}
		var events []core.Event
		for _, e := range c.Timeline {
			if e.Type == core.EventPushed || e.Type == core.EventPushFailed {
				events = append(events, e)
			}
		}
		if len(events) != 1 || events[0].Type != tc.event || events[0].Actor != "woocommerce" || events[0].At.IsZero() ||
			!jsonHas(events[0].Details, tc.key, tc.value) || !jsonHas(events[0].Details, "shop", "https://shop.example") {
			t.Fatalf("%s's push events: %+v", tc.code, events)
		}
	}
	if c, err := db.GetCode(ctx, l, rest[0].Code); err != nil || slices.ContainsFunc(c.Timeline, func(e core.Event) bool { return e.Type == core.EventPushed }) {
		t.Fatalf("a code still submitted has a pushed event: %+v (%v)", c.Timeline, err)
	}

	if err := db.SetPushState(ctx, ref, core.PushStopped, "disconnected"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `UPDATE list_connections SET next_seq = 0 WHERE merchant_id = $1 AND list_id = $2`, m.ID, l.ID); err != nil {
		t.Fatal(err)
	}
	if claimed, _, stopped, err := db.ClaimPushBatch(ctx, ref, 100); err != nil || !stopped || len(claimed) != 0 {
		t.Fatalf("a stopped push claimed %d codes (stopped %v, %v)", len(claimed), stopped, err)
	}
}

// jsonHas reports whether the JSON object raw has key with the string value.
func jsonHas(raw []byte, key, value string) bool {
	var m map[string]any
	return json.Unmarshal(raw, &m) == nil && m[key] == value
}
