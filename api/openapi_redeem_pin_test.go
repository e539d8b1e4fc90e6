package api_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// oaRedeemPINScenario calls the redeem pages (/r/{slug}, a personal link /r/{slug}/{token}, the
// staff PIN form /r/{slug}/mark-used) as a customer's browser does, for the OpenAPI conformance
// test: a code asked for with an email, a personal link, a wrong PIN, the right one, the same code
// again, a code of no list, an unknown link.
func oaRedeemPINScenario(t *testing.T, h *apptest.Harness) {
	ctx := context.Background()
	m := h.NewMerchant(t, "OpenAPI Redeem Shop")
	merchant := uuid.MustParse(m.ID)
	list := h.CreateList(t, m, map[string]any{"name": "Counter"})
	importByHand(t, h, m, list, "api_key:a", "OAPIN-1", "OAPIN-2")
	r := oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/redeem-links", APIKey: m.APIKey,
		JSON: map[string]any{"name": "Counter", "identify_by": "email"}}, http.StatusCreated)
	created := r.Map(t)
	slug := created["slug"].(string)
	link, err := h.App.RedeemLinks.Get(ctx, merchant, uuid.MustParse(created["id"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	personal, ok := h.App.RedeemLinks.PersonalURL(link, core.Recipient{Email: "fay@example.com"})
	if !ok {
		t.Fatal("no personal link")
	}
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: personal[strings.Index(personal, "/r/"):]}, http.StatusOK)
	var token string
	_, token, err = h.App.Users.Invite(ctx, merchant, core.InviteInput{Email: "till-" + uuid.NewString()[:8] + "@example.com", Role: core.RoleStaff})
	if err != nil {
		t.Fatal(err)
	}
	staff, err := h.App.Users.AcceptInvite(ctx, token, dashPassword, dashPassword)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := h.App.Scanner.NewPIN(ctx, merchant, staff.User.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The page's form token rides in a cookie and in the form (double submit).
	var cookie string
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	get := func(path string, want int) string {
		t.Helper()
		r := oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: path, Header: http.Header{"Cookie": {cookie}}}, want)
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "cg_rcsrf" {
				cookie = c.Name + "=" + c.Value
			}
		}
		if m := csrf.FindStringSubmatch(string(r.Body)); m != nil {
			return html.UnescapeString(m[1])
		}
		return ""
	}
	post := func(path string, form url.Values, want int) string {
		t.Helper()
		r := oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: path, Body: strings.NewReader(form.Encode()),
			ContentType: "application/x-www-form-urlencoded", Header: http.Header{"Cookie": {cookie}}}, want)
		return string(r.Body)
	}
	page := "/r/" + slug
	tok := get(page, http.StatusOK)
	body := post(page, url.Values{"csrf_token": {tok}, "email": {"erin@example.com"}}, http.StatusOK)
	m1 := regexp.MustCompile(`id="redeem-code">([^<]*)<`).FindStringSubmatch(body)
	if m1 == nil {
		t.Fatalf("no code on the redeem page: %s", body)
	}
	code := html.UnescapeString(m1[1])
	// The code's QR image, as the page links it.
	if qr := regexp.MustCompile(`class="redeem-qr" src="([^"]+)"`).FindStringSubmatch(body); qr == nil {
		t.Fatalf("no QR image on the redeem page: %s", body)
	} else {
		get(html.UnescapeString(qr[1]), http.StatusOK)
	}
	mark := page + "/mark-used"
	form := func(code, pin string) url.Values {
		return url.Values{"csrf_token": {get(mark+"?"+url.Values{"code": {code}}.Encode(), http.StatusOK)}, "code": {code}, "pin": {pin}}
	}
	post(mark, form(code, "0000"), http.StatusForbidden)
	post(mark, form(code, pin), http.StatusOK)
	post(mark, form(code, pin), http.StatusConflict)
	post(mark, form("NOT-A-CODE", pin), http.StatusNotFound)
	get("/r/"+strings.Repeat("x", 22)+"/mark-used?code=A", http.StatusNotFound)
}
