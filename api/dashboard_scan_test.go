package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
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
	f := newDashFixture(t, nil)
	list := f.h.CreateList(t, f.merchant, map[string]any{"name": "Refusals"})
	importByHand(t, f.h, f.merchant, list, "api_key:a", "REF-1")
	noToken := f.do(t, dashRequest{method: http.MethodPost, path: "/app/scan/mark-used",
		form: url.Values{"list_id": {list}, "code": {"REF-1"}}, cookies: sessionOf(f.staff)})
	if noToken.Status != http.StatusForbidden {
		t.Fatalf("mark used without the token: %d", noToken.Status)
	}
	if r := f.do(t, dashRequest{method: http.MethodPost, path: "/app/scan/pin", form: url.Values{"pin": {"1234"}, "pin_confirm": {"1234"}},
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

// TestDashboardScannerPIN: a staff member sets their PIN (four to eight digits, twice; errors
// beside the field), an owner sets another's; a PIN another person has is refused; the PIN marks a
// code used in the shop with its owner as actor; wrong PINs are throttled, after which even the
// right one waits.
func TestDashboardScannerPIN(t *testing.T) {
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	ctx := context.Background()
	merchant := uuid.MustParse(m.ID)
	list := h.CreateList(t, m, map[string]any{"name": "PIN list"})
	importByHand(t, h, m, list, "api_key:a", "PIN-1", "PIN-2")

	for _, tc := range []struct{ pin, confirm, says string }{
		{"12a4", "12a4", "Choose a PIN of four to eight digits."},
		{"123", "123", "Choose a PIN of four to eight digits."},
		{"123456789", "123456789", "Choose a PIN of four to eight digits."},
		{"1234", "1243", "The two PINs are not the same."},
	} {
		r := f.dcPost(t, f.staff, "/app/scan/pin", url.Values{"pin": {tc.pin}, "pin_confirm": {tc.confirm}})
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("PIN %q: %d", tc.pin, r.Status)
		}
		mustContain(t, "PIN "+tc.pin, r, tc.says, `aria-invalid="true"`)
	}
	r := f.dcPost(t, f.staff, "/app/scan/pin", url.Values{"pin": {"4821"}, "pin_confirm": {"4821"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("set PIN: %d %s", r.Status, r.Body)
	}
	mustContain(t, "PIN saved", f.dcGet(t, f.staff, r.Header.Get("Location")), "Saved.", "You have a scanner PIN.")
	var hash string
	if err := h.App.DB.Pool().QueryRow(ctx, `SELECT scanner_pin_hash FROM dashboard_users WHERE merchant_id = $1 AND id = $2`,
		merchant, f.staff.User.ID).Scan(&hash); err != nil || !containsRaw(hash, "$argon2id$") || containsRaw(hash, "4821") {
		t.Fatalf("stored PIN %q, %v", hash, err)
	}

	// An owner sets another person's PIN; the staff member's PIN is taken.
	other := f.member(t, "other", core.RoleStaff)
	page := "/app/settings/team/" + other.User.ID.String() + "/scanner"
	r = f.dcPost(t, f.owner, page, url.Values{"what": {"pin"}, "pin": {"4821"}, "pin_confirm": {"4821"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a taken PIN: %d", r.Status)
	}
	mustContain(t, "a taken PIN", r, "Choose another PIN")
	if r = f.dcPost(t, f.owner, page, url.Values{"what": {"pin"}, "pin": {"99887766"}, "pin_confirm": {"99887766"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("owner sets a PIN: %d %s", r.Status, r.Body)
	}

	who, out, err := h.App.Scanner.MarkUsedWithPIN(ctx, merchant, uuid.MustParse(list), "PIN-1", "99887766", "203.0.113.9")
	if err != nil || who.ID != other.User.ID || out.Outcome != core.OutcomeRedeemed {
		t.Fatalf("mark used with a PIN: %+v %+v %v", who, out, err)
	}
	var got codeItem
	get(t, h, m, codePath(list, "PIN-1")).JSON(t, &got)
	if last := got.Timeline[len(got.Timeline)-1]; last.Type != "redeemed" || last.Channel != "in_store" || last.Actor != other.User.Email {
		t.Fatalf("PIN redemption: %+v", last)
	}

	// Wrong PINs: refused, then throttled; the right PIN waits too, and PIN-2 stays unused.
	for i := 0; i < core.ScannerPINFailures; i++ {
		if _, _, err := h.App.Scanner.MarkUsedWithPIN(ctx, merchant, uuid.MustParse(list), "PIN-2", "0000", "203.0.113.7"); !errors.Is(err, core.ErrScannerPINWrong) {
			t.Fatalf("wrong PIN %d: %v", i+1, err)
		}
	}
	_, _, err = h.App.Scanner.MarkUsedWithPIN(ctx, merchant, uuid.MustParse(list), "PIN-2", "4821", "203.0.113.7")
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Kind != core.KindRateLimited || ce.RetryAfter <= 0 {
		t.Fatalf("the right PIN after %d wrong ones: %v", core.ScannerPINFailures, err)
	}
	get(t, h, m, codePath(list, "PIN-2")).JSON(t, &got)
	if got.Uses != 0 {
		t.Fatalf("a throttled PIN used the code: %+v", got)
	}
}

func resp(status int, body string) apptest.Response {
	return apptest.Response{Status: status, Body: []byte(body)}
}

func containsRaw(s, sub string) bool { return strings.Contains(s, sub) }
