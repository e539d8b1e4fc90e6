package dashboardtest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

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

// TestRedeemPageUseItInTheShop: a link that says shopify opens the shop's discount address with
// the code once the list is pushed to the connected Shopify shop, and its redirect_url before.
func TestRedeemPageUseItInTheShop(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ctx := context.Background()
	l := s.list(t, "Pushed")
	s.addCodes(t, l, "test", "SHOP-1", "SHOP-2")
	link, err := s.h.App.RedeemLinks.Create(ctx, s.merchant, l.ID, core.RedeemLinkInput{Name: "Shop",
		Redirect: core.RedirectShopify, RedirectURL: "https://fallback.example/"})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(email string) string {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		page := func(resp *http.Response, err error) string {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		u := s.h.App.RedeemLinks.URL(link)
		token := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page(c.Get(u)))[1]
		return page(c.PostForm(u, url.Values{"csrf_token": {token}, "email": {email}}))
	}
	if p := ask("before@example.com"); !strings.Contains(p, `href="https://fallback.example/"`) {
		t.Fatalf("before the push: %s", p)
	}
	var connID uuid.UUID
	if err := s.h.App.DB.Pool().QueryRow(ctx, `SELECT id FROM connections WHERE merchant_id = $1 AND shop = $2`, s.merchant, s.shop).Scan(&connID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.h.App.Connections.StartPush(ctx, s.merchant, l.ID, core.PushInput{ConnectionID: connID,
		Discount: core.Discount{Title: "10%", ValueType: core.ValuePercentage, Value: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.h.App.DB.Pool().Exec(ctx, `UPDATE list_connections SET state = 'active' WHERE merchant_id = $1 AND list_id = $2`, s.merchant, l.ID); err != nil {
		t.Fatal(err)
	}
	p := ask("after@example.com")
	code := regexp.MustCompile(`id="redeem-code">([^<]*)<`).FindStringSubmatch(p)
	if code == nil || !strings.Contains(p, `href="https://`+s.shop+`/discount/`+code[1]+`"`) || !strings.Contains(p, "Use it in the shop") {
		t.Fatalf("after the push: %s", p)
	}
}
