package core

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// TestPartitionBatch: a batch's deliveries are split into parts that share no order and no code,
// each in the batch's order; a batch too small for parts of minWebhookPart stays whole.
func TestPartitionBatch(t *testing.T) {
	t.Parallel()
	list := uuid.New()
	// batch builds n deliveries, delivery i of order orders[i] applying the codes (seqs) codes[i].
	batch := func(orders []string, codes [][]int64) WebhookBatch {
		b := WebhookBatch{Receipts: make([]ReceiptOutcome, len(orders))}
		for i, cs := range codes {
			for _, seq := range cs {
				b.Applications = append(b.Applications, CodeApplication{Receipt: i, Code: FoundCode{List: List{ID: list}, Seq: seq}})
			}
		}
		return b
	}
	distinct := func(n int) ([]string, [][]int64) {
		orders, codes := make([]string, n), make([][]int64, n)
		for i := range n {
			orders[i], codes[i] = fmt.Sprintf("o%d", i), []int64{int64(i)}
		}
		return orders, codes
	}
	tests := []struct {
		name     string
		n        int
		parallel int
		parts    int
		together [][]int // deliveries that must share a part
	}{
		{name: "small batch stays whole", n: 2*minWebhookPart - 1, parallel: 4, parts: 1},
		{name: "distinct orders and codes spread", n: 128, parallel: 4, parts: 4},
		{name: "one transaction asked", n: 128, parallel: 1, parts: 1},
		{name: "as many parts as a batch has room for", n: 3 * minWebhookPart, parallel: 4, parts: 3},
		{name: "an order's deliveries and a code's stay together", n: 128, parallel: 4, parts: 4, together: [][]int{{0, 70, 127}, {5, 6}, {9, 100}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := tc.n
			orders, codes := distinct(n)
			for _, g := range tc.together {
				if len(g) == 3 { // one order over three deliveries
					for _, i := range g {
						orders[i] = "the order"
					}
				} else { // two orders on one code
					codes[g[1]] = []int64{int64(g[0])}
				}
			}
			parts := partitionBatch(batch(orders, codes), orders, tc.parallel)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			partOf := map[int]int{}
			seen := 0
			for p, part := range parts {
				if !slices.IsSorted(part) {
					t.Errorf("part %d is not in the batch's order: %v", p, part)
				}
				for _, i := range part {
					partOf[i] = p
					seen++
				}
				if tc.parts > 1 && (len(part) < n/tc.parts-3 || len(part) > n/tc.parts+3) {
					t.Errorf("part %d holds %d of %d deliveries: uneven", p, len(part), n)
				}
			}
			if seen != n || len(partOf) != n {
				t.Fatalf("the parts hold %d deliveries (%d distinct), want each of %d once", seen, len(partOf), n)
			}
			for _, g := range tc.together {
				for _, i := range g[1:] {
					if partOf[i] != partOf[g[0]] {
						t.Errorf("deliveries %v are split across parts", g)
					}
				}
			}
		})
	}
}
