package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// newList makes a merchant and a unique list through core.
func newList(t *testing.T, caseInsensitive bool) (core.List, *core.Lists) {
	t.Helper()
	db := open(t)
	ctx := context.Background()
	m, _, err := core.NewMerchants(db).Create(ctx, "Insert Shop")
	if err != nil {
		t.Fatal(err)
	}
	lists := core.NewLists(db)
	l, err := lists.Create(ctx, m.ID, core.ListInput{Name: "insert", CaseInsensitive: caseInsensitive})
	if err != nil {
		t.Fatal(err)
	}
	return l, lists
}

func TestAddCodesKeepsNewCodesAndRejectsDuplicates(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	tests := []struct {
		name            string
		caseInsensitive bool
		batches         [][]string
		added           []int
		available       int64
	}{
		{"clean slices take the COPY path", false, [][]string{{"A", "B", "C"}, {"D"}}, []int{3, 1}, 4},
		{"a duplicate of the list falls back", false, [][]string{{"A", "B"}, {"B", "C", "D"}, {"E"}}, []int{2, 2, 1}, 5},
		{"a repeat within one slice falls back", false, [][]string{{"X", "Y", "X"}}, []int{2}, 2},
		{"case-insensitive lists compare lower-cased", true, [][]string{{"abc"}, {"ABC", "Abd"}}, []int{1, 1}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, lists := newList(t, tc.caseInsensitive)
			for i, batch := range tc.batches {
				n, err := db.AddCodes(ctx, l, batch)
				if err != nil {
					t.Fatal(err)
				}
				if n != tc.added[i] {
					t.Fatalf("slice %d added %d, want %d", i, n, tc.added[i])
				}
			}
			got, err := lists.Get(ctx, l.MerchantID, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			var rows int64
			_ = db.Pool().QueryRow(ctx, `SELECT count(*) FROM codes WHERE merchant_id = $1 AND list_id = $2`, l.MerchantID, l.ID).Scan(&rows)
			if got.Counts.Available != tc.available || rows != tc.available {
				t.Fatalf("available %d, rows %d; want %d", got.Counts.Available, rows, tc.available)
			}
		})
	}
}

func TestAddCodesPositionsAreDenseAndOrdered(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	l, _ := newList(t, false)
	codes := make([]string, 5000)
	for i := range codes {
		codes[i] = fmt.Sprint("P-", i)
	}
	if _, err := db.AddCodes(ctx, l, codes); err != nil {
		t.Fatal(err)
	}
	var minSeq, maxSeq, n int64
	var first string
	_ = db.Pool().QueryRow(ctx, `SELECT min(seq), max(seq), count(*) FROM codes WHERE merchant_id = $1 AND list_id = $2`, l.MerchantID, l.ID).Scan(&minSeq, &maxSeq, &n)
	_ = db.Pool().QueryRow(ctx, `SELECT code FROM codes WHERE merchant_id = $1 AND list_id = $2 AND seq = 1`, l.MerchantID, l.ID).Scan(&first)
	if minSeq != 1 || maxSeq != 5000 || n != 5000 || first != "P-0" {
		t.Fatalf("positions %d..%d for %d codes, first %q", minSeq, maxSeq, n, first)
	}
	if _, err := db.AddCodes(ctx, core.List{MerchantID: l.MerchantID, ID: uuid.New()}, []string{"Z"}); err == nil {
		t.Fatal("adding to a list that does not exist succeeded")
	}
}
