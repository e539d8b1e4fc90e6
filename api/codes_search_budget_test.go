package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/coupongate/coupongate/internal/apptest"
)

// TestStateSearchReadsABoundedStretch checks that a search narrowed by state reads at most
// 10,000 codes per page (no index holds the state): on a larger list the first page comes back
// short with a cursor, and paging on finds the rest, each code once, in list and in code order.
func TestStateSearchReadsABoundedStretch(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Budget Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Big"})
	codes := make([]string, 10_010)
	for i := range codes {
		codes[i] = fmt.Sprintf("B-%05d", i+1)
	}
	importByHand(t, h, m, list, "api_key:a", codes...)
	redeemByHand(t, h, m, list, "B-00005")
	redeemByHand(t, h, m, list, "B-10005")

	for _, q := range []url.Values{{"state": {"redeemed"}}, {"state": {"redeemed"}, "q": {"B-"}}} {
		q.Set("limit", "50")
		first := get(t, h, m, "/api/v1/lists/"+list+"/codes?"+q.Encode())
		var p struct {
			Items      []codeItem `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}
		if first.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", q.Encode(), first.Status, first.Body)
		}
		first.JSON(t, &p)
		if len(p.Items) != 1 || p.Items[0].Code != "B-00005" || p.NextCursor == "" {
			t.Fatalf("%s: first page %v, next %q; want B-00005 and a cursor", q.Encode(), codesOf(p.Items), p.NextCursor)
		}
		got := codesOf(searchAll(t, h, m, list, q, 50))
		if fmt.Sprint(got) != "[B-00005 B-10005]" {
			t.Fatalf("%s: paging found %v", q.Encode(), got)
		}
	}
	if n := len(searchAll(t, h, m, list, url.Values{"state": {"available"}}, 500)); n != 10_008 {
		t.Fatalf("%d available codes, want 10008", n)
	}
}
