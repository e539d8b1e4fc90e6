package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestRedeemLinkPages: an owner lists a list's redeem links with the codes handed out through each,
// creates one (a wrong address told beside its box), edits and deletes it; names are shown
// escaped; forms need their CSRF token; staff get 403.
func TestRedeemLinkPages(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Pages Shop")
	owner := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	staff := lpSignIn(t, h, m, "staff@example.com", core.RoleStaff)
	list := lpCreateList(t, owner, url.Values{"name": {"Summer"}, "kind": {"unique"}})
	seedCodes(t, h, m, list, "SUM", 3)
	base := "/app/lists/" + list + "/redeem-links"

	lpWant(t, "no link yet", owner.get(t, base), http.StatusOK, "No redeem link yet", "New redeem link", `aria-current="page">Redeem links`)
	r := owner.post(t, base, url.Values{"name": {"Flyer"}, "identify_by": {"email"}, "redirect": {"url"}, "redirect_url": {"javascript:alert(1)"}})
	lpWant(t, "a wrong address", r, http.StatusUnprocessableEntity)
	lpFieldError(t, r, "rl-url", "redirect_url", "Give an address starting with https:// (or http://) of at most 2,000 characters.")
	if r := owner.postRaw(t, base, url.Values{"name": {"No token"}}); r.Status != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d", r.Status)
	}
	hostile := "<svg/onload=alert(1)>"
	if loc := lpLocation(t, owner.post(t, base, url.Values{"name": {hostile}, "identify_by": {"email"}, "redirect": {"none"},
		"title": {"Summer gift"}, "exhausted_text": {"All gone"}})); loc != base {
		t.Fatalf("created link goes to %q", loc)
	}
	r = owner.get(t, base)
	if strings.Contains(string(r.Body), hostile) || !strings.Contains(lpPage(r), hostile) {
		t.Fatal("the link's name is not shown escaped")
	}
	links, _, err := h.App.RedeemLinks.List(t.Context(), uuid.MustParse(m.ID), uuid.MustParse(list), core.Page{})
	if err != nil || len(links) != 1 {
		t.Fatalf("links: %v %v", links, err)
	}
	link := links[0]
	if code := codeOf(newVisitor(t, h).ask("/r/"+link.Slug, "ann@example.com", nil)); code == "" {
		t.Fatal("no code handed out")
	}
	lpWant(t, "the list of links", owner.get(t, base), http.StatusOK, h.App.RedeemLinks.URL(link), "Email address", `<td class="num">1</td>`)

	edit := base + "/" + link.ID.String()
	lpWant(t, "the edit form", owner.get(t, edit), http.StatusOK, "1 handed out", `value="Summer gift"`, "All gone")
	if loc := lpLocation(t, owner.post(t, edit, url.Values{"name": {"Flyer"}, "identify_by": {"email"}, "redirect": {"none"},
		"title": {"Autumn gift"}})); loc != base {
		t.Fatalf("saved link goes to %q", loc)
	}
	if p := newVisitor(t, h).get("/r/" + link.Slug); !strings.Contains(p.Body, "Autumn gift") {
		t.Fatalf("the page after the edit: %s", p.Body)
	}

	for _, path := range []string{base, edit} {
		lpWant(t, "staff GET "+path, staff.get(t, path), http.StatusForbidden)
	}
	lpWant(t, "staff delete", staff.post(t, edit+"/delete", nil), http.StatusForbidden)
	if loc := lpLocation(t, owner.post(t, edit+"/delete", nil)); loc != base {
		t.Fatalf("deleted link goes to %q", loc)
	}
	lpWant(t, "after the delete", owner.get(t, base), http.StatusOK, "No redeem link yet")
	if p := newVisitor(t, h).get("/r/" + link.Slug); p.Status != http.StatusNotFound {
		t.Fatalf("the deleted link's page: %d", p.Status)
	}
}
