package api_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// Finding codes, the code page and customers (api/dashboard_codes.go), over HTTP as a browser
// without JavaScript uses them.

// dcPage is the path of a code's page, as the dashboard links it.
func dcPage(listID, code string) string {
	return "/app/lists/" + listID + "/codes/" + url.PathEscape(code)
}

var (
	dcRowLink = regexp.MustCompile(`<a class="cell-name code-text" href="([^"]+)">([^<]*)</a>`)
	dcMore    = regexp.MustCompile(`data-load-more="#code-rows" href="([^"]+)"`)
)

// dcRows are the codes a search page lists (unescaped) and the address of "Load more" ("" when
// there is none).
func dcRows(t testing.TB, r apptest.Response) (codes []string, next string) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("search page: %d %s", r.Status, r.Body)
	}
	for _, m := range dcRowLink.FindAllStringSubmatch(string(r.Body), -1) {
		codes = append(codes, html.UnescapeString(m[2]))
	}
	if m := dcMore.FindStringSubmatch(string(r.Body)); m != nil {
		next = html.UnescapeString(m[1])
	}
	return codes, next
}

// dcGet is a signed-in GET.
func (f *dashFixture) dcGet(t *testing.T, who core.SignedIn, path string) apptest.Response {
	t.Helper()
	return f.do(t, dashRequest{path: path, cookies: sessionOf(who)})
}

// dcPost is a signed-in form post with the session's CSRF token.
func (f *dashFixture) dcPost(t *testing.T, who core.SignedIn, path string, form url.Values) apptest.Response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", who.Session.CSRFToken)
	return f.do(t, dashRequest{method: http.MethodPost, path: path, form: form, cookies: sessionOf(who)})
}

// tmplEscape escapes text as html/template writes it in HTML text and attributes.
func tmplEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}

func mustContain(t *testing.T, what string, r apptest.Response, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(string(r.Body), w) {
			t.Fatalf("%s: the page lacks %q (status %d):\n%s", what, w, r.Status, r.Body)
		}
	}
}

// TestDashboardFindCodes: one box finds a code, the codes starting with a prefix, or a
// customer's codes; the state filter narrows; "Load more" pages through every code once; /app/codes
// takes a whole code to its page in whichever list holds it.
func TestDashboardFindCodes(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	list := h.CreateList(t, m, map[string]any{"name": "Spring sale"})
	other := h.CreateList(t, m, map[string]any{"name": "Autumn sale"})
	codes := numbered("FIND-", 120)
	importByHand(t, h, m, list, "api_key:a", codes...)
	importByHand(t, h, m, other, "api_key:a", "SHARED-1", "ONLY-AUTUMN")
	importByHand(t, h, m, list, "api_key:a", "SHARED-1")
	alice := handOut(t, h, m, list, map[string]any{"email": "alice@example.com"}, "spring")
	bob := handOut(t, h, m, other, map[string]any{"email": "alice@example.com"}, "autumn")
	redeemByHand(t, h, m, list, "FIND-0100")
	base := "/app/lists/" + list + "/codes"

	// "Load more" pages through the list 50 at a time: every code once, in list order.
	var all []string
	next := base
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		var rows []string
		rows, next = dcRows(t, f.dcGet(t, f.staff, next))
		if next != "" && len(rows) != 50 {
			t.Fatalf("a page of %d rows before the last", len(rows))
		}
		all = append(all, rows...)
	}
	want := append(append([]string(nil), codes...), "SHARED-1")
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("paging served %d codes: %v", len(all), all)
	}

	for _, tc := range []struct {
		name, query string
		want        []string
		says        string
	}{
		{"a whole code", "q=FIND-0007", []string{"FIND-0007"}, "Codes that start with"},
		{"a prefix", "q=FIND-011", []string{"FIND-0110", "FIND-0111", "FIND-0112", "FIND-0113", "FIND-0114", "FIND-0115", "FIND-0116", "FIND-0117", "FIND-0118", "FIND-0119"}, ""},
		{"a recipient", "q=" + url.QueryEscape("Alice@Example.com"), []string{alice}, "Codes handed to"},
		{"a recipient read as a code", "q=" + url.QueryEscape("alice@example.com") + "&by=code", nil, "No code found"},
		{"delivered", "state=delivered", []string{alice}, ""},
		{"redeemed", "state=redeemed", []string{"FIND-0100"}, ""},
		{"a prefix and a state", "q=FIND-01&state=available", nil, ""},
		{"removed", "state=removed", nil, "No code of this list is in this state"},
		{"nothing", "q=NOPE", nil, "No code of this list starts with “NOPE”"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.dcGet(t, f.staff, base+"?"+tc.query)
			got, _ := dcRows(t, r)
			want := tc.want
			if tc.name == "a prefix and a state" {
				for _, c := range codes {
					if strings.HasPrefix(c, "FIND-01") && c != "FIND-0100" && c != alice {
						want = append(want, c)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: %v, want %v", tc.query, got, want)
			}
			if tc.says != "" {
				mustContain(t, tc.query, r, tc.says)
			}
		})
	}
	if r := f.dcGet(t, f.staff, base+"?state=used"); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Choose a state from the list.") {
		t.Fatalf("an unknown state: %d %s", r.Status, r.Body)
	}

	// Across lists: a whole code in one list opens its page; in two, both are listed with their list.
	r := f.dcGet(t, f.staff, "/app/codes?q=ONLY-AUTUMN")
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != dcPage(other, "ONLY-AUTUMN") {
		t.Fatalf("a code of one list: %d %q", r.Status, r.Header.Get("Location"))
	}
	r = f.dcGet(t, f.staff, "/app/codes?q=SHARED-1")
	if got, _ := dcRows(t, r); len(got) != 2 {
		t.Fatalf("a code of two lists: %v", got)
	}
	mustContain(t, "a code of two lists", r, dcPage(list, "SHARED-1"), dcPage(other, "SHARED-1"), "Spring sale", "Autumn sale")
	r = f.dcGet(t, f.staff, "/app/codes?q=alice%40example.com")
	got, _ := dcRows(t, r)
	sort.Strings(got)
	wantBoth := []string{alice, bob}
	sort.Strings(wantBoth)
	if fmt.Sprint(got) != fmt.Sprint(wantBoth) {
		t.Fatalf("a customer across lists: %v, want %v", got, wantBoth)
	}
	mustContain(t, "a customer across lists", r, `href="/app/customers?q=alice%40example.com"`)
	mustContain(t, "nothing across lists", f.dcGet(t, f.staff, "/app/codes?q=NOPE-NOPE"), "No code or customer found")
}

// TestDashboardCodePage: the code page's facts, QR code and timeline; "Mark as used" puts the
// person on the timeline, a second one says when and by whom it was used; staff may mark codes
// used but not remove them; removal asks first and takes only unused codes.
func TestDashboardCodePage(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	list := h.CreateList(t, m, map[string]any{"name": "Till list"})
	importByHand(t, h, m, list, "api_key:importer", "TILL-1", "TILL-2", "TILL-3")
	given := handOut(t, h, m, list, map[string]any{"email": "carol@example.com", "external_id": "c-7"}, "winter")
	page := dcPage(list, given)

	r := f.dcGet(t, f.staff, page)
	mustContain(t, "the code page", r, "<h1 class=\"code-text\">"+given+"</h1>", "delivered", "0 of 1", "carol@example.com", "winter",
		`src="`+page+`/qr.svg"`, "Mark as used", "Imported (import 1)", "api_key:importer", "Handed out to carol@example.com")
	if strings.Contains(string(r.Body), "/remove") {
		t.Fatal("staff see a Remove action")
	}
	if qr := f.dcGet(t, f.staff, page+"/qr.svg"); qr.Status != http.StatusOK || qr.Header.Get("Content-Type") != "image/svg+xml" ||
		!strings.HasPrefix(string(qr.Body), "<svg") {
		t.Fatalf("QR code: %d %q", qr.Status, qr.Header.Get("Content-Type"))
	}
	if qr := f.do(t, dashRequest{path: page + "/qr.png"}); qr.Status != http.StatusSeeOther {
		t.Fatalf("QR code without a session: %d", qr.Status)
	}

	// Staff mark it used, with an order and a note.
	r = f.dcPost(t, f.staff, page+"/mark-used", url.Values{"order_id": {"1001"}, "note": {"paid at the till"}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != page+"?done=used" {
		t.Fatalf("mark as used: %d %q %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	r = f.dcGet(t, f.staff, page+"?done=used")
	mustContain(t, "after marking", r, "Marked as used.", "redeemed", "1 of 1", "Used (use 1)", f.staff.User.Email, "paid at the till",
		"<td class=\"wrap\">1001</td>", "Used up: last used on")
	if strings.Index(string(r.Body), "Imported (import 1)") > strings.Index(string(r.Body), "Used (use 1)") {
		t.Fatal("the timeline is not oldest first")
	}

	// A second mark (another till, the same moment) says when and by whom.
	r = f.dcPost(t, f.owner, page+"/mark-used", nil)
	if r.Status != http.StatusConflict {
		t.Fatalf("a second mark: %d %s", r.Status, r.Body)
	}
	mustContain(t, "a second mark", r, "Already used: on "+time.Now().UTC().Format("2 Jan 2006"), "by "+f.staff.User.Email+" (order 1001). Nothing was changed.")

	// Removal: owners only, unused codes only, asked first.
	unused := dcPage(list, "TILL-3")
	for _, req := range []dashRequest{{path: unused + "/remove"}, {method: http.MethodPost, path: unused + "/remove"}} {
		req.cookies = sessionOf(f.staff)
		if req.method == http.MethodPost {
			req.form = url.Values{"csrf_token": {f.staff.Session.CSRFToken}}
		}
		if r := f.do(t, req); r.Status != http.StatusForbidden {
			t.Fatalf("staff %s remove: %d", req.method, r.Status)
		}
	}
	r = f.dcGet(t, f.owner, unused)
	mustContain(t, "an unused code for the owner", r, `href="`+unused+`/remove">Remove</a>`)
	r = f.dcGet(t, f.owner, unused+"/remove")
	mustContain(t, "the question", r, "Remove this code?", `action="`+unused+`/remove"`, "Cancel")
	r = f.dcPost(t, f.owner, unused+"/remove", nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != unused+"?done=removed" {
		t.Fatalf("remove: %d %q %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	r = f.dcGet(t, f.owner, unused+"?done=removed")
	mustContain(t, "a removed code", r, "The code was removed", "badge-code-removed", "<td class=\"wrap\">Removed</td>", f.owner.User.Email)
	if strings.Contains(string(r.Body), "Mark as used") || strings.Contains(string(r.Body), "qr.svg") {
		t.Fatal("a removed code offers to be marked used or shows a QR code")
	}
	if r := f.dcPost(t, f.owner, page+"/remove", nil); r.Status != http.StatusConflict ||
		!strings.Contains(string(r.Body), "only unused codes can be removed") {
		t.Fatalf("removing a used code: %d %s", r.Status, r.Body)
	}
	if r := f.dcGet(t, f.owner, dcPage(list, "NO-SUCH")); r.Status != http.StatusNotFound {
		t.Fatalf("a code the list does not have: %d", r.Status)
	}

	// Inside the admin the QR code is fetched by the script with the ID token.
	bearer := map[string]string{"Authorization": "Bearer " + idToken(f.shop, time.Minute, testShopifySecret)}
	r = f.do(t, dashRequest{path: dcPage(list, "TILL-2"), header: bearer})
	mustContain(t, "embedded code page", r, `data-auth-src="`+dcPage(list, "TILL-2")+`/qr.svg"`)
	if qr := f.do(t, dashRequest{path: dcPage(list, "TILL-2") + "/qr.svg", header: bearer}); qr.Status != http.StatusOK {
		t.Fatalf("QR code with a bearer token: %d", qr.Status)
	}
	if r := f.do(t, dashRequest{method: http.MethodPost, path: dcPage(list, "TILL-2") + "/mark-used", header: bearer, form: url.Values{}}); r.Status != http.StatusSeeOther {
		t.Fatalf("mark as used inside the admin: %d %s", r.Status, r.Body)
	}
	mustContain(t, "marked inside the admin", f.dcGet(t, f.owner, dcPage(list, "TILL-2")), "shopify:"+f.shop+"/user/42")
}

// TestDashboardCodeForms: the code page's forms refuse a missing or wrong CSRF token and change
// nothing.
func TestDashboardCodeForms(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	list := f.h.CreateList(t, f.merchant, map[string]any{"name": "CSRF"})
	importByHand(t, f.h, f.merchant, list, "api_key:a", "CSRF-1")
	page := dcPage(list, "CSRF-1")
	for _, action := range []string{"/mark-used", "/remove"} {
		for _, form := range []url.Values{{}, {"csrf_token": {"wrong"}}, {"csrf_token": {f.staff.Session.CSRFToken}}} {
			r := f.do(t, dashRequest{method: http.MethodPost, path: page + action, form: form, cookies: sessionOf(f.owner)})
			if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "nothing was changed") {
				t.Fatalf("%s with %v: %d %s", action, form, r.Status, r.Body)
			}
		}
	}
	mustContain(t, "after refused forms", f.dcGet(t, f.owner, page), "badge-code-available", "0 of 1")
	// A note too long is said beside the field.
	r := f.dcPost(t, f.owner, page+"/mark-used", url.Values{"note": {strings.Repeat("n", 1001)}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a long note: %d", r.Status)
	}
	mustContain(t, "a long note", r, `id="error-note"`, "The note must be at most 1,000 characters.", `aria-describedby="error-note"`)
}

// TestDashboardCodesEscaped: codes holding '/', '+', '%' or markup have their own pages and
// actions, and everything people typed shows as text.
func TestDashboardCodesEscaped(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	hostile := `<svg/onload=alert(1)>`
	list := h.CreateList(t, m, map[string]any{"name": hostile})
	odd := []string{hostile, "A/B", "C+D", "E%2F", "50%", ".", ".."}
	importByHand(t, h, m, list, "api_key:"+hostile, odd...)
	escaped := html.EscapeString(hostile)
	if r := f.dcGet(t, f.staff, "/app/codes?q="+url.QueryEscape(hostile)); r.Header.Get("Location") != dcPage(list, hostile) {
		t.Fatalf("the whole code across lists: %d %q", r.Status, r.Header.Get("Location"))
	}

	r := f.dcGet(t, f.staff, "/app/lists/"+list+"/codes")
	got, _ := dcRows(t, r)
	if fmt.Sprint(got) != fmt.Sprint(odd) {
		t.Fatalf("codes listed: %q", got)
	}
	for _, code := range odd {
		t.Run(code, func(t *testing.T) {
			// The page's own link to the code, as the browser follows it.
			link := regexp.MustCompile(`href="([^"]+)">` + regexp.QuoteMeta(tmplEscape(code)) + `</a>`).FindStringSubmatch(string(r.Body))
			if link == nil {
				t.Fatalf("no link to %q", code)
			}
			u := html.UnescapeString(link[1])
			if code == "." || code == ".." {
				if !strings.Contains(u, "/codes/_?code=") {
					t.Fatalf("a dot code's address %q would be resolved away", u)
				}
			}
			page := f.dcGet(t, f.staff, u)
			mustContain(t, "the code page of "+code, page, `<h1 class="code-text">`+tmplEscape(code)+`</h1>`)
			if strings.Contains(string(page.Body), hostile) {
				t.Fatal("markup is not escaped")
			}
			action := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindStringSubmatch(string(page.Body))
			if action == nil {
				t.Fatal("no Mark as used form")
			}
			done := f.dcPost(t, f.staff, html.UnescapeString(action[1]), nil)
			if done.Status != http.StatusSeeOther {
				t.Fatalf("mark %q used: %d %s", code, done.Status, done.Body)
			}
			after := f.dcGet(t, f.staff, done.Header.Get("Location"))
			mustContain(t, "after marking "+code, after, "Marked as used.", `<h1 class="code-text">`+tmplEscape(code)+`</h1>`)
		})
	}
	for _, path := range []string{
		"/app/lists/" + list + "/codes?q=" + url.QueryEscape(hostile),
		"/app/codes?q=" + url.QueryEscape(hostile+"x"),
		"/app/customers?q=" + url.QueryEscape(hostile),
		dcPage(list, hostile),
	} {
		r := f.dcGet(t, f.owner, path)
		if r.Status != http.StatusOK || strings.Contains(string(r.Body), hostile) || !strings.Contains(string(r.Body), escaped) {
			t.Fatalf("%s: %d, markup not shown as text:\n%s", path, r.Status, r.Body)
		}
	}
}

// TestDashboardCustomers: a customer by email, phone or id, with every code they got across
// lists, each linking to its page.
func TestDashboardCustomers(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	h, m := f.h, f.merchant
	spring := h.CreateList(t, m, map[string]any{"name": "Spring"})
	summer := h.CreateList(t, m, map[string]any{"name": "Summer"})
	importByHand(t, h, m, spring, "api_key:a", numbered("SP-", 3)...)
	importByHand(t, h, m, summer, "api_key:a", numbered("SU-", 3)...)
	a := handOut(t, h, m, spring, map[string]any{"email": "dana@example.com"}, "")
	b := handOut(t, h, m, summer, map[string]any{"email": "dana@example.com"}, "summer")
	c := handOut(t, h, m, summer, map[string]any{"phone": "+44 20 7946 0000"}, "")
	d := handOut(t, h, m, spring, map[string]any{"external_id": "cust-9"}, "")
	redeemByHand(t, h, m, summer, b)

	for _, tc := range []struct {
		q     string
		codes map[string]string // code → its list
	}{
		{"DANA@example.com", map[string]string{a: spring, b: summer}},
		{"+442079460000", map[string]string{c: summer}},
		{"cust-9", map[string]string{d: spring}},
	} {
		r := f.dcGet(t, f.staff, "/app/customers?q="+url.QueryEscape(tc.q))
		got, _ := dcRows(t, r)
		if len(got) != len(tc.codes) {
			t.Fatalf("%s: %v", tc.q, got)
		}
		for code, list := range tc.codes {
			mustContain(t, tc.q, r, `href="`+dcPage(list, code)+`"`)
		}
	}
	r := f.dcGet(t, f.staff, "/app/customers?q=dana%40example.com")
	mustContain(t, "dana", r, "2 codes for dana@example.com", "Spring", "Summer", "badge-code-redeemed", "summer")
	if strings.Index(string(r.Body), b) > strings.Index(string(r.Body), a) {
		t.Fatal("not newest first") // b was handed out after a
	}
	mustContain(t, "nobody", f.dcGet(t, f.staff, "/app/customers?q=nobody%40example.com"), "No codes for nobody@example.com")
	mustContain(t, "the empty page", f.dcGet(t, f.staff, "/app/customers"), `<label for="customer-q">Email, phone or customer id</label>`)
}
