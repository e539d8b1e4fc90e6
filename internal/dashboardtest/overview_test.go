package dashboardtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// TestJourneyListsAtAGlance: an owner with a few lists signs in and reads each one's status,
// counts and expiry on the lists page: the list running low is marked "Low stock", the list that
// handed out its last code reads exhausted, an archived list archived, the fixed code says so.
// The page is the README's picture of the lists page (lists.png).
func TestJourneyListsAtAGlance(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ctx := context.Background()
	app := s.h.App
	expires := time.Date(time.Now().Year()+1, time.June, 30, 23, 59, 0, 0, time.UTC)
	codes := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%05d", prefix, i+1)
		}
		return out
	}
	create := func(in core.ListInput) core.List {
		t.Helper()
		l, err := app.Lists.Create(ctx, s.merchant, in)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	handOut := func(l core.List, n int, redeem int) {
		t.Helper()
		for i := range n {
			a, err := app.Allocator.Allocate(ctx, s.merchant, l.ID, core.AllocationRequest{
				Recipient: core.Recipient{Email: fmt.Sprintf("customer-%d@example.com", i)}, Campaign: "newsletter", Actor: "api_key:shop"})
			if err != nil {
				t.Fatal(err)
			}
			if i < redeem {
				if _, err := app.Redeemer.Redeem(ctx, s.merchant, l.ID, a.Code, core.ManualRedemption{
					OrderID: fmt.Sprintf("#%d", 1001+i), Actor: "api_key:shop"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	spring := create(core.ListInput{Name: "Spring welcome", Description: "Newsletter sign-ups", LowStockThreshold: 100, ExpiresAt: &expires})
	s.addCodes(t, spring, "api_key:import", codes("SPRING", 2400)...)
	handOut(spring, 60, 24)
	summer := create(core.ListInput{Name: "Summer sale", LowStockThreshold: 100})
	s.addCodes(t, summer, "api_key:import", codes("SUMMER", 120)...)
	handOut(summer, 84, 31)
	create(core.ListInput{Name: "Staff discount", Kind: core.KindFixed, FixedCode: "STAFF10", MaxAssignments: 500})
	vip := create(core.ListInput{Name: "VIP early access"})
	s.addCodes(t, vip, "api_key:import", codes("VIP", 25)...)
	handOut(vip, 25, 9)
	old := create(core.ListInput{Name: "Black Friday (last year)"})
	s.addCodes(t, old, "api_key:import", codes("BF", 40)...)
	archived := true
	if _, err := app.Lists.Update(ctx, s.merchant, old.ID, core.ListPatch{Archived: &archived}); err != nil {
		t.Fatal(err)
	}
	owner := s.member(t, "owner", core.RoleOwner)
	b := browsertest.New(t)

	signIn(b, s.h.URL, owner, password)
	b.WaitText("main h1", "Lists")
	b.WaitText("#list-rows", "Black Friday")
	row := func(name string) string {
		t.Helper()
		got := browsertest.Eval[string](b, fmt.Sprintf(`(() => {
			const r = [...document.querySelectorAll("#list-rows tr")].find(r => r.querySelector("a.cell-name").textContent === %q);
			return r ? [...r.cells].map(c => c.innerText.trim().replace(/\s+/g, " ")).join(" | ") : "";
		})()`, name))
		if got == "" {
			t.Fatalf("no row for %q", name)
		}
		return got
	}
	for _, want := range []struct{ name, row string }{
		{"Spring welcome", "Spring welcome | active | 2,340 | 36 | 24 | " + expires.Format("2 Jan 2006")},
		{"Summer sale", "Summer sale | active Low stock | 36 | 53 | 31 | Never"},
		{"Staff discount", "Staff discount One fixed code | active | 1 | 0 | 0 | Never"},
		{"VIP early access", "VIP early access | exhausted | 0 | 16 | 9 | Never"},
		{"Black Friday (last year)", "Black Friday (last year) | archived | 40 | 0 | 0 | Never"},
	} {
		if got := row(want.name); !strings.HasPrefix(got, want.row) {
			t.Errorf("the row of %s reads %q, want %q", want.name, got, want.row)
		}
	}
	if n := b.Count("#list-rows .badge-low"); n != 1 {
		t.Errorf("%d lists marked Low stock, want 1", n)
	}
	screenshot(t, b, "lists")
}
