package api_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// "Mark as used" with a staff PIN on the public redeem page (api/redeem_pin.go).

var pinCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// pinBrowser is a customer's browser on the redeem page: it keeps the page's cookies.
type pinBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newPINBrowser(t *testing.T, base string) *pinBrowser {
	jar, _ := cookiejar.New(nil)
	return &pinBrowser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *pinBrowser) do(method, path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(out)
}

// markUsed opens the PIN form of code and sends pin with the form's token.
func (b *pinBrowser) markUsed(page, code, pin string) (int, http.Header, string) {
	b.t.Helper()
	status, _, body := b.do(http.MethodGet, page+"?"+url.Values{"code": {code}}.Encode(), nil)
	m := pinCSRF.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		b.t.Fatalf("the PIN form: %d %s", status, body)
	}
	return b.do(http.MethodPost, page, url.Values{"csrf_token": {html.UnescapeString(m[1])}, "code": {code}, "pin": {pin}})
}

// TestRedeemPageMarkUsedWithPIN: on a customer's redeem page a staff member types the scanner PIN
// Coupongate made for them: a wrong one is refused beside the field (and changes nothing), the right one marks the code
// used on the channel in_store with the staff member as actor, a second time says when and by
// whom it was used; the form needs its token; wrong PINs from one address are throttled (429 with
// Retry-After). No answer of the page shows the PIN.
func TestRedeemPageMarkUsedWithPIN(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	ctx := context.Background()
	merchant := uuid.MustParse(m.ID)
	list := h.CreateList(t, m, map[string]any{"name": "Counter offer"})
	importByHand(t, h, m, list, "api_key:a", "RPIN-1", "RPIN-2", "RPIN-3")
	link, err := h.App.RedeemLinks.Create(ctx, merchant, uuid.MustParse(list), core.RedeemLinkInput{Name: "Counter", IdentifyBy: core.IdentifyByEmail})
	if err != nil {
		t.Fatal(err)
	}
	pin, err := h.App.Scanner.NewPIN(ctx, merchant, f.staff.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if wrong == pin {
		wrong = "999999"
	}
	page := "/r/" + link.Slug + "/mark-used"
	b := newPINBrowser(t, h.URL)

	// The customer asks for a code on the redeem page; the page with the code links the PIN form.
	_, _, form := b.do(http.MethodGet, "/r/"+link.Slug, nil)
	tok := pinCSRF.FindStringSubmatch(form)
	if tok == nil {
		t.Fatalf("the redeem page has no form: %s", form)
	}
	status, _, body := b.do(http.MethodPost, "/r/"+link.Slug, url.Values{"csrf_token": {html.UnescapeString(tok[1])}, "email": {"dora@example.com"}})
	got := regexp.MustCompile(`id="redeem-code">([^<]*)<`).FindStringSubmatch(body)
	if status != http.StatusOK || got == nil {
		t.Fatalf("hand out: %d %s", status, body)
	}
	out := struct{ Code string }{html.UnescapeString(got[1])}
	if want := `href="` + page + `?code=` + url.QueryEscape(out.Code) + `"`; !strings.Contains(body, want) || !strings.Contains(body, "Shop staff: mark as used") {
		t.Fatalf("the code's page lacks %s:\n%s", want, body)
	}

	status, _, body = b.markUsed(page, out.Code, wrong)
	if status != http.StatusForbidden || !strings.Contains(body, "This PIN is not right") || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("a wrong PIN: %d %s", status, body)
	}
	var item codeItem
	get(t, h, m, codePath(list, out.Code)).JSON(t, &item)
	if item.Uses != 0 {
		t.Fatalf("a wrong PIN used the code: %+v", item)
	}
	if status, _, _ := b.do(http.MethodPost, page, url.Values{"code": {out.Code}, "pin": {pin}}); status != http.StatusForbidden {
		t.Fatalf("without the form's token: %d", status)
	}

	status, _, body = b.markUsed(page, out.Code, pin)
	if status != http.StatusOK || !strings.Contains(body, "Marked as used.") || strings.Contains(body, pin) {
		t.Fatalf("the right PIN: %d %s", status, body)
	}
	get(t, h, m, codePath(list, out.Code)).JSON(t, &item)
	last := item.Timeline[len(item.Timeline)-1]
	if item.Uses != 1 || last.Type != "redeemed" || last.Channel != "in_store" || last.Actor != f.staff.User.Email {
		t.Fatalf("after the PIN: uses %d, last event %+v", item.Uses, last)
	}
	status, _, body = b.markUsed(page, out.Code, pin)
	if status != http.StatusConflict || !strings.Contains(body, "Already used") || !strings.Contains(body, "by "+f.staff.User.Email) {
		t.Fatalf("a second time: %d %s", status, body)
	}
	if status, _, _ := b.markUsed(page, "NOT-HERE", pin); status != http.StatusNotFound {
		t.Fatalf("a code of no list: %d", status)
	}

	for i := 0; i < core.ScannerPINClientFailures-1; i++ { // the first wrong PIN above counted too
		if status, _, _ := b.markUsed(page, "RPIN-2", wrong); status != http.StatusForbidden {
			t.Fatalf("wrong PIN %d: %d", i+2, status)
		}
	}
	status, header, body := b.markUsed(page, "RPIN-2", pin)
	if status != http.StatusTooManyRequests || header.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong PINs") {
		t.Fatalf("after %d wrong PINs: %d %q", core.ScannerPINClientFailures, status, header.Get("Retry-After"))
	}
	get(t, h, m, codePath(list, "RPIN-2")).JSON(t, &item)
	if item.Uses != 0 {
		t.Fatalf("a throttled PIN used the code: %+v", item)
	}
}
