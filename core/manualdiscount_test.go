package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// manualFinder knows the codes of one case-insensitive list; REMOVED is a removed code.
type manualFinder struct {
	CodeFinder
	list List
}

func (f manualFinder) FindCode(_ context.Context, _ uuid.UUID, code string) (FoundCode, bool, error) {
	switch strings.ToUpper(code) {
	case "FAKE30":
		return FoundCode{List: f.list, Seq: 1, Code: "FAKE30", State: StateAvailable}, true, nil
	case "REMOVED":
		return FoundCode{List: f.list, Seq: 2, Code: "REMOVED", State: StateRemoved}, true, nil
	}
	return FoundCode{}, false, nil
}

// manualStore records once per (order, list, seq).
type manualStore struct{ seen map[string]bool }

func (s *manualStore) RecordManualDiscount(_ context.Context, _ uuid.UUID, ev ManualDiscountEvent, _ string, f FoundCode) (bool, error) {
	key := ev.Platform + ":" + ev.Shop + ":" + ev.OrderID + "|" + f.List.ID.String() + "|" + f.Code
	if s.seen[key] {
		return false, nil
	}
	s.seen[key] = true
	return true, nil
}

func TestManualDiscountsRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewManualDiscounts(manualFinder{list: List{ID: uuid.New(), CaseInsensitive: true}}, &manualStore{seen: map[string]bool{}})
	ev := func(order string, titles ...string) ManualDiscountEvent {
		return ManualDiscountEvent{Platform: "shopify", Shop: "a.myshopify.com", OrderID: order, Titles: titles, Actor: "shopify:orders/paid"}
	}
	tests := []struct {
		name    string
		ev      ManualDiscountEvent
		want    []string // code:outcome
		invalid bool
	}{
		{"a code's text is recorded", ev("1", "FAKE30"), []string{"FAKE30:recorded"}, false},
		{"again for the same order", ev("1", " fake30 "), []string{"FAKE30:already_recorded"}, false},
		{"another order", ev("2", "fake30", "FAKE30"), []string{"FAKE30:recorded"}, false},
		{"free text, a removed code, an unknown code", ev("3", "Staff 10% off", "REMOVED", "NOPE"),
			[]string{"Staff 10% off:not_found", "REMOVED:not_found", "NOPE:not_found"}, false},
		{"no order id", ev(" ", "FAKE30"), nil, true},
		{"too many titles", ev("4", slices.Repeat([]string{"X"}, 51)...), nil, true},
	}
	// Not parallel: the cases share one store and run in order ("again for the same order" needs the first).
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := m.Record(ctx, uuid.New(), tt.ev)
			var ce *Error
			if tt.invalid {
				if !errors.As(err, &ce) || ce.Kind != KindInvalid {
					t.Fatalf("want an invalid error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range out {
				got = append(got, o.Code+":"+o.Outcome)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
