package dashboardtest

import (
	"context"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// TestJourneyRedeemPage: a customer opens a redeem link, asks with their email address and gets
// a code with its QR code (drawn: the page's policy lets the data: image through) and its expiry;
// asking again with the same address shows the same code. The page has no serious accessibility
// violation and cannot be framed.
func TestJourneyRedeemPage(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	l := s.list(t, "Opening day")
	s.addCodes(t, l, "test", "OPEN-1", "OPEN-2", "OPEN-3")
	link, err := s.h.App.RedeemLinks.Create(context.Background(), s.merchant, l.ID, core.RedeemLinkInput{Name: "Flyer",
		Page: core.RedeemPage{Title: "Opening day gift", Text: "Leave your email address and get a code.", Button: "Get my code",
			SuccessText: "Show this code at the till."}})
	if err != nil {
		t.Fatal(err)
	}
	url := s.h.App.RedeemLinks.URL(link)
	b := browsertest.New(t)

	ask := func(email string) string {
		t.Helper()
		b.Navigate(url)
		b.WaitText("main h1", "Opening day gift")
		b.Fill("#email", email)
		b.ClickText("Get my code")
		b.WaitText("main", "Show this code at the till.")
		if !b.Poll(`(() => { const i = document.querySelector("img.redeem-qr"); return !!i && i.complete && i.naturalWidth > 0 })()`) {
			t.Fatal("the QR code is not drawn")
		}
		return b.Text("#redeem-code")
	}

	first := ask("ann@example.com")
	if first == "" {
		t.Fatal("no code shown")
	}
	if csp := lastDocument(t, b, "/r/"+link.Slug).ResponseHeader.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "frame-ancestors 'none';") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	axeClean(t, b, "the code handed out")
	screenshot(t, b, "redeem-code")

	if again := ask("ann@example.com"); again != first {
		t.Fatalf("asking again showed %q, want %q", again, first)
	}
	if other := ask("bob@example.com"); other == first || other == "" {
		t.Fatalf("another address got %q (ann has %q)", other, first)
	}
	b.Navigate(url)
	b.WaitText("main h1", "Opening day gift")
	axeClean(t, b, "the redeem form")
}
