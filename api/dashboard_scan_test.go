package api_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The scanner (api/dashboard_scan.go), over HTTP as a browser without a camera uses it: the code
// typed.

// scanLookup is the scanner's page for a typed code.
func (f *dashFixture) scanLookup(t *testing.T, who core.SignedIn, code string) (int, string) {
	t.Helper()
	r := f.dcGet(t, who, "/app/scan?"+url.Values{"code": {code}}.Encode())
	return r.Status, string(r.Body)
}

// TestDashboardScan: a typed code shows its state, list, recipient and uses; "Mark as used"
// redeems it on the channel in_store with the person as actor; a second scan says "Already used"
// with when and by whom; unknown and removed codes say so in large type.
func TestDashboardScan(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	list := h.CreateList(t, m, map[string]any{"name": "Front <svg/onload=alert(1)> desk"})
	importByHand(t, h, m, list, "api_key:a", "SCAN-1", "SCAN-2", "SCAN-GONE")
	code := handOut(t, h, m, list, map[string]any{"email": "alice@example.com"}, "spring")
	if err := h.App.Codes.Remove(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(list), "SCAN-GONE", "test"); err != nil {
		t.Fatal(err)
	}

	status, body := f.scanLookup(t, f.staff, code)
	if status != http.StatusOK {
		t.Fatalf("scan: %d %s", status, body)
	}
	mustContain(t, "a code ready to use", resp(status, body), "Ready to use", tmplEscape("Front <svg/onload=alert(1)> desk"),
		"alice@example.com", "0 of 1", "Mark as used", `name="list_id" value="`+list+`"`)
	if containsRaw(body, "<svg/onload") {
		t.Fatal("the list's name is not escaped")
	}

	r := f.dcPost(t, f.staff, "/app/scan/mark-used", url.Values{"list_id": {list}, "code": {code}})
	done := "/app/scan?" + url.Values{"code": {code}, "done": {"used"}}.Encode()
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != done {
		t.Fatalf("mark used: %d %s %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	mustContain(t, "after marking", f.dcGet(t, f.staff, r.Header.Get("Location")), "Marked as used.", "1 of 1")

	var got codeItem
	get(t, h, m, codePath(list, code)).JSON(t, &got)
	last := got.Timeline[len(got.Timeline)-1]
	if got.State != "redeemed" || last.Type != "redeemed" || last.Channel != "in_store" || last.Actor != f.staff.User.Email {
		t.Fatalf("after the scan: state %s, last event %+v", got.State, last)
	}

	// A second scan, by someone else: already used, when and by whom; marking again changes nothing.
	status, body = f.scanLookup(t, f.owner, code)
	mustContain(t, "a second scan", resp(status, body), "Already used", "by "+f.staff.User.Email)
	if containsRaw(body, ">Mark as used<") {
		t.Fatal("a used code offers Mark as used")
	}
	r = f.dcPost(t, f.owner, "/app/scan/mark-used", url.Values{"list_id": {list}, "code": {code}})
	if r.Status != http.StatusConflict {
		t.Fatalf("marking a used code: %d", r.Status)
	}
	mustContain(t, "marking a used code", r, "Already used", "by "+f.staff.User.Email)

	for _, tc := range []struct {
		code   string
		status int
		says   string
	}{
		{"NO-SUCH-CODE", http.StatusNotFound, "Unknown code"},
		{"SCAN-GONE", http.StatusOK, "Removed"},
		{"SCAN-2", http.StatusOK, "Ready to use"},
	} {
		status, body := f.scanLookup(t, f.staff, tc.code)
		if status != tc.status {
			t.Fatalf("%s: %d, want %d", tc.code, status, tc.status)
		}
		mustContain(t, tc.code, resp(status, body), `class="scan-verdict`, tc.says)
	}

	// An expired code says so and cannot be marked, even by a form sent anyway.
	old := h.CreateList(t, m, map[string]any{"name": "Last year"})
	importByHand(t, h, m, old, "api_key:a", "OLD-1")
	if _, err := h.App.DB.Pool().Exec(context.Background(), `UPDATE code_lists SET expires_at = now() - interval '1 hour'
		WHERE merchant_id = $1 AND id = $2`, uuid.MustParse(m.ID), uuid.MustParse(old)); err != nil {
		t.Fatal(err)
	}
	status, body = f.scanLookup(t, f.staff, "OLD-1")
	mustContain(t, "an expired code", resp(status, body), `scan-verdict-critical">Expired<`)
	if containsRaw(body, ">Mark as used<") {
		t.Fatal("an expired code offers Mark as used")
	}
	r = f.dcPost(t, f.staff, "/app/scan/mark-used", url.Values{"list_id": {old}, "code": {"OLD-1"}})
	if r.Status != http.StatusConflict {
		t.Fatalf("marking an expired code: %d", r.Status)
	}
	mustContain(t, "marking an expired code", r, "This code has expired")

	// The API's manual redemption takes the channel too.
	r = h.Admin(t, m, http.MethodPost, codePath(list, "SCAN-2")+"/redeem", map[string]any{"channel": "in_store"})
	if r.Status != http.StatusOK {
		t.Fatalf("API redeem in_store: %d %s", r.Status, r.Body)
	}
	get(t, h, m, codePath(list, "SCAN-2")).JSON(t, &got)
	if last := got.Timeline[len(got.Timeline)-1]; last.Channel != "in_store" {
		t.Fatalf("API redeem in_store: %+v", last)
	}
	if r := h.Admin(t, m, http.MethodPost, codePath(list, "SCAN-1")+"/redeem", map[string]any{"channel": "carrier pigeon"}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("API redeem with an unknown channel: %d", r.Status)
	}
}

// TestDashboardScanListLimit: an owner limits a staff member to some lists; a code of another
// list is refused (403) on lookup and on marking; no limit means every list.
func TestDashboardScanListLimit(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	shopList := h.CreateList(t, m, map[string]any{"name": "Shop floor"})
	eventList := h.CreateList(t, m, map[string]any{"name": "Event"})
	importByHand(t, h, m, shopList, "api_key:a", "FLOOR-1")
	importByHand(t, h, m, eventList, "api_key:a", "EVENT-1")
	page := "/app/settings/team/" + f.staff.User.ID.String() + "/scanner"

	r := f.dcPost(t, f.owner, page, url.Values{"what": {"lists"}, "list": {eventList}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("limit lists: %d %s", r.Status, r.Body)
	}
	mustContain(t, "the staff member's scanner page", f.dcGet(t, f.owner, r.Header.Get("Location")),
		"Saved.", "Only the lists checked", `value="`+eventList+`" checked`)

	if status, body := f.scanLookup(t, f.staff, "FLOOR-1"); status != http.StatusForbidden || !containsRaw(body, "Not yours to scan") {
		t.Fatalf("a list the staff member may not scan: %d %s", status, body)
	}
	if r := f.dcPost(t, f.staff, "/app/scan/mark-used", url.Values{"list_id": {shopList}, "code": {"FLOOR-1"}}); r.Status != http.StatusForbidden {
		t.Fatalf("marking in a list the staff member may not scan: %d", r.Status)
	}
	if status, body := f.scanLookup(t, f.staff, "EVENT-1"); status != http.StatusOK || !containsRaw(body, "Ready to use") {
		t.Fatalf("the list the staff member may scan: %d", status)
	}
	if status, _ := f.scanLookup(t, f.owner, "FLOOR-1"); status != http.StatusOK {
		t.Fatalf("owners scan every list: %d", status)
	}

	// No list checked: every list again.
	if r := f.dcPost(t, f.owner, page, url.Values{"what": {"lists"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("lift the limit: %d", r.Status)
	}
	if r := f.dcPost(t, f.staff, "/app/scan/mark-used", url.Values{"list_id": {shopList}, "code": {"FLOOR-1"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("after the limit was lifted: %d %s", r.Status, r.Body)
	}
}

// TestDashboardScanRefusals: pages answer 403 without the form's token and to staff on an owner's
// page, and the signed-out go to sign in.
func TestDashboardScanRefusals(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	list := f.h.CreateList(t, f.merchant, map[string]any{"name": "Refusals"})
	importByHand(t, f.h, f.merchant, list, "api_key:a", "REF-1")
	noToken := f.do(t, dashRequest{method: http.MethodPost, path: "/app/scan/mark-used",
		form: url.Values{"list_id": {list}, "code": {"REF-1"}}, cookies: sessionOf(f.staff)})
	if noToken.Status != http.StatusForbidden {
		t.Fatalf("mark used without the token: %d", noToken.Status)
	}
	if r := f.do(t, dashRequest{method: http.MethodPost, path: "/app/scan/pin", form: url.Values{},
		cookies: sessionOf(f.staff)}); r.Status != http.StatusForbidden {
		t.Fatalf("set a PIN without the token: %d", r.Status)
	}
	for _, p := range []string{"/app/settings/team/" + f.staff.User.ID.String() + "/scanner", "/app/settings/team/" + f.owner.User.ID.String() + "/scanner"} {
		if r := f.dcGet(t, f.staff, p); r.Status != http.StatusForbidden {
			t.Fatalf("staff on %s: %d", p, r.Status)
		}
		if r := f.dcPost(t, f.staff, p, url.Values{"what": {"lists"}}); r.Status != http.StatusForbidden {
			t.Fatalf("staff posting %s: %d", p, r.Status)
		}
	}
	if r := f.do(t, dashRequest{path: "/app/scan"}); r.Status != http.StatusSeeOther {
		t.Fatalf("signed out: %d", r.Status)
	}
	var got codeItem
	get(t, f.h, f.merchant, codePath(list, "REF-1")).JSON(t, &got)
	if got.Uses != 0 {
		t.Fatalf("a refused request used the code: %+v", got)
	}
}

// newPINShown is the one place a page shows a new scanner PIN: the answer to the form that made it.
var newPINShown = regexp.MustCompile(`id="new-pin">([0-9]+)<`)

// pinShown returns the new PIN an answer shows, six digits.
func pinShown(t *testing.T, what string, r apptest.Response) string {
	t.Helper()
	m := newPINShown.FindStringSubmatch(string(r.Body))
	if r.Status != http.StatusOK || m == nil || len(m[1]) != core.ScannerPINDigits {
		t.Fatalf("%s: %d, no six-digit PIN shown: %s", what, r.Status, r.Body)
	}
	return m[1]
}

// TestDashboardScannerPIN: Coupongate makes a person's scanner PIN (six digits), shown once in the
// answer to "New scanner PIN" and stored only as a digest; the PIN marks a code used in the shop
// with its person as actor; a new PIN replaces the old one, which stops working; an owner makes a
// PIN for a staff member and sees it once; no page shows a PIN afterwards; "Remove PIN" ends it.
func TestDashboardScannerPIN(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	ctx := context.Background()
	merchant := uuid.MustParse(m.ID)
	list := h.CreateList(t, m, map[string]any{"name": "PIN list"})
	listID := uuid.MustParse(list)
	importByHand(t, h, m, list, "api_key:a", "PIN-1", "PIN-2", "PIN-3")
	markUsed := func(code, pin string) (core.User, error) {
		t.Helper()
		who, _, err := h.App.Scanner.MarkUsedWithPIN(ctx, merchant, listID, code, pin, "203.0.113.9")
		return who, err
	}

	mustContain(t, "no PIN yet", f.dcGet(t, f.staff, "/app/scan/pin"), "You have no scanner PIN yet.", "New scanner PIN")
	first := pinShown(t, "the staff member's new PIN", f.dcPost(t, f.staff, "/app/scan/pin", nil))
	var digest []byte
	if err := h.App.DB.Pool().QueryRow(ctx, `SELECT scanner_pin_digest FROM dashboard_users WHERE merchant_id = $1 AND id = $2`,
		merchant, f.staff.User.ID).Scan(&digest); err != nil || len(digest) != 32 || bytes.Contains(digest, []byte(first)) {
		t.Fatalf("stored PIN %x, %v", digest, err)
	}
	r := f.dcGet(t, f.staff, "/app/scan/pin")
	mustContain(t, "PIN set", r, "You have a scanner PIN.", "Remove PIN")
	if strings.Contains(string(r.Body), first) {
		t.Fatalf("the PIN page shows the PIN again: %s", r.Body)
	}

	// A new PIN replaces the old one (drawn again in the one-in-a-million case it is the same).
	second := first
	for i := 0; i < 3 && second == first; i++ {
		second = pinShown(t, "a second new PIN", f.dcPost(t, f.staff, "/app/scan/pin", nil))
	}
	if _, err := markUsed("PIN-1", first); !errors.Is(err, core.ErrScannerPINWrong) {
		t.Fatalf("the replaced PIN: %v", err)
	}
	if who, err := markUsed("PIN-1", second); err != nil || who.ID != f.staff.User.ID {
		t.Fatalf("the new PIN: %+v %v", who, err)
	}
	var got codeItem
	get(t, h, m, codePath(list, "PIN-1")).JSON(t, &got)
	if last := got.Timeline[len(got.Timeline)-1]; got.Uses != 1 || last.Type != "redeemed" || last.Channel != "in_store" || last.Actor != f.staff.User.Email {
		t.Fatalf("PIN redemption: uses %d, %+v", got.Uses, got.Timeline)
	}

	// An owner makes a PIN for another staff member: shown to the owner in that answer only.
	other := f.member(t, "other", core.RoleStaff)
	page := "/app/settings/team/" + other.User.ID.String() + "/scanner"
	mustContain(t, "their page before", f.dcGet(t, f.owner, page), "This person has no scanner PIN yet.")
	r = f.dcPost(t, f.owner, page, url.Values{"what": {"pin"}})
	theirs := pinShown(t, "the owner makes a PIN", r)
	mustContain(t, "the owner makes a PIN", r, "New scanner PIN of "+other.User.Email, "not shown again")
	if theirs == second {
		t.Fatalf("two people got the PIN %s", theirs)
	}
	if who, err := markUsed("PIN-2", theirs); err != nil || who.ID != other.User.ID {
		t.Fatalf("the PIN the owner made: %+v %v", who, err)
	}
	get(t, h, m, codePath(list, "PIN-2")).JSON(t, &got)
	if last := got.Timeline[len(got.Timeline)-1]; last.Actor != other.User.Email {
		t.Fatalf("PIN redemption by the other: %+v", last)
	}

	// No page shows anyone's PIN afterwards, to anyone.
	for _, v := range []struct {
		who  core.SignedIn
		path string
	}{
		{f.owner, page}, {f.owner, "/app/settings/team/" + f.staff.User.ID.String() + "/scanner"}, {f.owner, "/app/settings/team"},
		{f.staff, "/app/scan/pin"}, {other, "/app/scan/pin"}, {other, "/app/scan"},
	} {
		r := f.dcGet(t, v.who, v.path)
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %d", v.path, r.Status)
		}
		for _, pin := range []string{second, theirs} {
			if strings.Contains(string(r.Body), pin) || newPINShown.Match(r.Body) {
				t.Fatalf("%s shows a PIN: %s", v.path, r.Body)
			}
		}
	}

	// Remove PIN: by the owner for the staff member, and by a person for themselves.
	if r := f.dcPost(t, f.owner, page, url.Values{"what": {"clear_pin"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("the owner removes the PIN: %d", r.Status)
	}
	r = f.dcPost(t, f.staff, "/app/scan/pin", url.Values{"clear": {"1"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("remove my PIN: %d", r.Status)
	}
	mustContain(t, "PIN removed", f.dcGet(t, f.staff, r.Header.Get("Location")), "Your scanner PIN was removed.", "You have no scanner PIN yet.")
	for _, pin := range []string{second, theirs} {
		if _, err := markUsed("PIN-3", pin); !errors.Is(err, core.ErrScannerPINWrong) {
			t.Fatalf("a removed PIN: %v", err)
		}
	}
}

// TestScannerPINThrottle: ten wrong PINs from one address make that address wait, even with the
// right PIN, but staff elsewhere go on; past the merchant's hundred wrong PINs in the window,
// every address waits.
func TestScannerPINThrottle(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	ctx := context.Background()
	merchant := uuid.MustParse(m.ID)
	list := h.CreateList(t, m, map[string]any{"name": "Throttle"})
	listID := uuid.MustParse(list)
	importByHand(t, h, m, list, "api_key:a", "THR-1", "THR-2", "THR-3")
	pin, err := h.App.Scanner.NewPIN(ctx, merchant, f.staff.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if wrong == pin {
		wrong = "999999"
	}
	markUsed := func(code, pin, addr string) error {
		t.Helper()
		_, _, err := h.App.Scanner.MarkUsedWithPIN(ctx, merchant, listID, code, pin, addr)
		return err
	}
	limited := func(what string, err error) {
		t.Helper()
		var ce *core.Error
		if !errors.As(err, &ce) || ce.Kind != core.KindRateLimited || ce.RetryAfter <= 0 {
			t.Fatalf("%s: %v, want 429", what, err)
		}
	}

	for i := range core.ScannerPINClientFailures {
		if err := markUsed("THR-1", wrong, "203.0.113.7"); !errors.Is(err, core.ErrScannerPINWrong) {
			t.Fatalf("wrong PIN %d: %v", i+1, err)
		}
	}
	limited("the right PIN from the guessing address", markUsed("THR-1", pin, "203.0.113.7"))
	var got codeItem
	get(t, h, m, codePath(list, "THR-1")).JSON(t, &got)
	if got.Uses != 0 {
		t.Fatalf("a throttled PIN used the code: %+v", got)
	}
	if err := markUsed("THR-2", pin, "198.51.100.1"); err != nil {
		t.Fatalf("staff at another address after one address's wrong PINs: %v", err)
	}

	// Guesses spread over addresses meet the merchant's limit.
	for i := core.ScannerPINClientFailures; i < core.ScannerPINMerchantFailures; i++ {
		addr := "192.0.2." + strconv.Itoa(i%200)
		if err := markUsed("THR-3", wrong, addr); !errors.Is(err, core.ErrScannerPINWrong) {
			t.Fatalf("wrong PIN %d from %s: %v", i+1, addr, err)
		}
	}
	limited("the right PIN after the merchant's wrong PINs", markUsed("THR-3", pin, "198.51.100.2"))
	get(t, h, m, codePath(list, "THR-3")).JSON(t, &got)
	if got.Uses != 0 {
		t.Fatalf("a throttled PIN used the code: %+v", got)
	}
}

func resp(status int, body string) apptest.Response {
	return apptest.Response{Status: status, Body: []byte(body)}
}

func containsRaw(s, sub string) bool { return strings.Contains(s, sub) }
