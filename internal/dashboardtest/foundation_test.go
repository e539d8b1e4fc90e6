package dashboardtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// TestJourneyInviteSignOutSignIn: an invite link → set a password → the lists page → sign out →
// a wrong password is refused with a sentence → the right one signs in again. Outside the admin
// every page forbids framing.
func TestJourneyInviteSignOutSignIn(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	email, link := s.invite(t, "owner", core.RoleOwner)
	b := browsertest.New(t)

	acceptInvite(b, link)
	b.WaitText("main h1", "Lists")
	b.WaitText("main", "Create your first list of codes")
	if got := b.Text(".topbar .who span"); got != email {
		t.Fatalf("the top bar names %q, want %q", got, email)
	}
	doc := lastDocument(t, b, "/app")
	if csp := doc.ResponseHeader.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "frame-ancestors 'none';") {
		t.Fatalf("Content-Security-Policy outside the admin: %q", csp)
	}
	screenshot(t, b, "lists-empty")

	b.ClickText("Sign out")
	b.WaitText("main h1", "Sign in")
	// The invite link is used up.
	b.Navigate(link)
	b.WaitText("main h1", "This invite link does not work")

	signIn(b, s.h.URL, email, "not the password at all")
	b.WaitText(".banner-critical", "The email address or the password is not right.")
	if got := lastDocument(t, b, "/app/sign-in"); got.Method != http.MethodPost || got.Status != http.StatusUnauthorized {
		t.Fatalf("the refused sign-in: %s %d", got.Method, got.Status)
	}
	signIn(b, s.h.URL, strings.ToUpper(email), password)
	b.WaitText("main h1", "Lists")
	if !strings.HasSuffix(b.Location(), "/app") {
		t.Fatalf("signed in at %s", b.Location())
	}
}

// TestJourneyFormsNeedTheirToken: a form posted with a missing or wrong CSRF token is refused with
// the 403 page and changes nothing.
func TestJourneyFormsNeedTheirToken(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	email := s.member(t, "owner", core.RoleOwner)
	b := browsertest.New(t)

	// The sign-in form's own token.
	b.Navigate(s.h.URL + "/app/sign-in")
	b.WaitText("main h1", "Sign in")
	browsertest.Eval[bool](b, `(document.querySelector('input[name=csrf_token]').value = "forged", true)`)
	b.Fill("#email", email)
	b.Fill("#password", password)
	b.ClickText("Sign in")
	b.WaitText("main h1", "You cannot open this page")
	b.WaitText("main", "This form is out of date or did not come from this dashboard")
	if got := lastDocument(t, b, "/app/sign-in"); got.Status != http.StatusForbidden {
		t.Fatalf("sign-in with a forged token: %d", got.Status)
	}

	signIn(b, s.h.URL, email, password)
	b.WaitText("main h1", "Lists")
	for _, tamper := range []struct{ name, js string }{
		{"a wrong token", `(document.querySelector('form[action="/app/sign-out"] input[name=csrf_token]').value = "wrong", true)`},
		{"no token", `(document.querySelector('form[action="/app/sign-out"] input[name=csrf_token]').remove(), true)`},
	} {
		browsertest.Eval[bool](b, tamper.js)
		b.ClickText("Sign out")
		b.WaitText("main", "This form is out of date")
		if got := lastDocument(t, b, "/app/sign-out"); got.Method != http.MethodPost || got.Status != http.StatusForbidden {
			t.Fatalf("%s: sign-out answered %d", tamper.name, got.Status)
		}
		// Still signed in.
		b.Navigate(s.h.URL + "/app")
		b.WaitText("main h1", "Lists")
	}
	b.ClickText("Sign out")
	b.WaitText("main h1", "Sign in")
}

// TestJourneyWhatPeopleTypedIsText: a list named <svg/onload=alert(1)> shows as text, on the page
// and in the rows "Load more" brings, and runs nothing.
func TestJourneyWhatPeopleTypedIsText(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	const hostile = `<svg/onload=alert(1)>`
	for i := range 50 {
		s.list(t, "Spring "+string(rune('A'+i%26))+string(rune('a'+i/26)))
	}
	s.list(t, hostile)
	email := s.member(t, "owner", core.RoleOwner)
	b := browsertest.New(t)
	signIn(b, s.h.URL, email, password)
	b.WaitText("main h1", "Lists")
	// The heading arrives before the whole table on a busy machine: wait for the page to be complete.
	b.Poll(`document.readyState === "complete"`)
	if n := b.Count("#list-rows tr"); n != 50 {
		t.Fatalf("%d rows on the first page, want 50", n)
	}
	next := browsertest.Eval[string](b, `document.querySelector("a[data-load-more]").getAttribute("href")`)
	loads := len(b.Exchanges())
	b.ClickText("Load more")
	b.WaitText("#list-rows", hostile)
	if n := b.Count("#list-rows tr"); n != 51 || b.Count("main a[data-load-more]") != 0 {
		t.Fatalf("after Load more: %d rows, %d Load more links", n, b.Count("main a[data-load-more]"))
	}
	for _, x := range b.Exchanges()[loads:] {
		if x.Type == "Document" {
			t.Fatalf("Load more loaded a page: %s", x.URL)
		}
	}
	if got := browsertest.Eval[string](b, `[...document.querySelectorAll("#list-rows a.cell-name")].pop().textContent`); got != hostile {
		t.Fatalf("the last list reads %q", got)
	}
	if n := b.Count("svg"); n != 0 {
		t.Fatalf("%d svg elements: the name became markup", n)
	}
	// Without the script, "Load more" is a page of its own, escaped as well.
	b.Navigate(s.h.URL + next)
	b.WaitText("#list-rows", hostile)
	if n := b.Count("#list-rows tr"); n != 1 || b.Count("svg") != 0 {
		t.Fatalf("the second page: %d rows, %d svg elements", n, b.Count("svg"))
	}
	if d := b.Dialogs(); len(d) != 0 {
		t.Fatalf("dialogs opened: %v", d)
	}
}

// TestJourneyEmbedded: inside the Shopify admin, a document load without an ID token goes to the
// bounce page, which gets one from App Bridge and reloads; clicks then fetch pages with the bearer
// token (no reload, no bounce), a refused token is retried once with a fresh one, and every page
// may be framed only by the shop's admin.
func TestJourneyEmbedded(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	s.list(t, "Summer")
	b := browsertest.New(t)
	host := "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvam91cm5leQ"

	b.Navigate(s.h.URL + "/app?embedded=1&shop=" + s.shop + "&host=" + host)
	b.WaitText("main h1", "Lists")
	b.WaitText("#list-rows", "Summer")
	bounce := lastDocument(t, b, "/auth/session-token")
	if bounce.Status != http.StatusOK || !strings.Contains(bounce.URL, "shopify-reload=") {
		t.Fatalf("the bounce page: %d %s", bounce.Status, bounce.URL)
	}
	page := lastDocument(t, b, "id_token=")
	frame := "frame-ancestors https://" + s.shop + " https://admin.shopify.com;"
	for _, x := range []browsertest.Exchange{bounce, page} {
		if csp := x.ResponseHeader.Get("Content-Security-Policy"); !strings.HasPrefix(csp, frame) {
			t.Fatalf("Content-Security-Policy of %s: %q", x.URL, csp)
		}
	}
	if !strings.Contains(page.URL, "/app?") || page.Status != http.StatusOK || s.bridge.Loads() != 2 {
		t.Fatalf("after the bounce: %s %d, App Bridge loaded %d times", page.URL, page.Status, s.bridge.Loads())
	}

	// A click inside the app fetches the page with the ID token; the document stays.
	browsertest.Eval[bool](b, `(window.__sameDocument = true)`)
	before := len(b.Exchanges())
	b.Click(`.nav a[href="/app/settings"]`)
	b.WaitURL("/app/settings?")
	b.Click(`.nav a[href="/app"]`)
	b.WaitURL("/app?")
	b.WaitText("main h1", "Lists")
	b.WaitText("#list-rows", "Summer")
	if !browsertest.Eval[bool](b, `window.__sameDocument === true`) || s.bridge.Loads() != 2 {
		t.Fatal("the click reloaded the document")
	}
	fetched := 0
	for _, x := range b.Exchanges()[before:] {
		switch {
		case x.Type == "Document" || strings.Contains(x.URL, "/auth/session-token"):
			t.Fatalf("the click loaded %s %s", x.Type, x.URL)
		case x.Type == "Fetch" && strings.Contains(x.URL, "/app"):
			fetched++
			if !strings.HasPrefix(x.Header.Get("Authorization"), "Bearer ") || x.Header.Get("X-Coupongate-Fragment") != "1" {
				t.Fatalf("the fetch of %s carried %v", x.URL, x.Header)
			}
		}
	}
	if fetched != 2 || !strings.Contains(b.Location(), "embedded=1") || !strings.Contains(b.Location(), "shop="+s.shop) {
		t.Fatalf("%d fetches, now at %s", fetched, b.Location())
	}

	// A token the gateway refuses answers 401 with the retry header; the next one works.
	browsertest.Eval[bool](b, `(window.__appBridgeSpoil = 1, document.querySelector("main h1").dataset.stale = "1", true)`)
	before = len(b.Exchanges())
	b.Click(`.nav a[href="/app"]`)
	b.WaitGone("main h1[data-stale]")
	b.WaitText("#list-rows", "Summer")
	var statuses []int
	for _, x := range b.Exchanges()[before:] {
		if x.Type == "Fetch" {
			statuses = append(statuses, x.Status)
			if x.Status == http.StatusUnauthorized && x.ResponseHeader.Get("X-Shopify-Retry-Invalid-Session-Request") != "1" {
				t.Fatalf("the 401 lacks the retry header: %v", x.ResponseHeader)
			}
		}
	}
	if len(statuses) != 2 || statuses[0] != http.StatusUnauthorized || statuses[1] != http.StatusOK {
		t.Fatalf("the fetches answered %v, want 401 then 200", statuses)
	}
	screenshot(t, b, "lists-embedded")
}

// TestJourneyStaffRefusedOwnersPages: a staff member signs in and is refused the owners' pages
// with a page saying so.
func TestJourneyStaffRefusedOwnersPages(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	_, link := s.invite(t, "staff", core.RoleStaff)
	b := browsertest.New(t)
	acceptInvite(b, link)
	b.WaitURL("/app/codes")
	for _, path := range []string{"/app/settings/team", "/app/lists"} {
		b.Navigate(s.h.URL + path)
		b.WaitText("main h1", "You cannot open this page")
		b.WaitText("main", "Only an owner of the team can open this page")
		if got := lastDocument(t, b, path); got.Status != http.StatusForbidden {
			t.Fatalf("%s answered %d", path, got.Status)
		}
	}
	// Staff see only their entries in the navigation.
	if got := browsertest.Eval[string](b, `[...document.querySelectorAll(".nav a")].map(a => a.textContent).join(",")`); got != "Customers,Find a code,Scan" {
		t.Fatalf("staff navigation: %s", got)
	}
}
