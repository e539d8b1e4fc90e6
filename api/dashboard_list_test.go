package api_test

import (
	"context"
	"encoding/csv"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The pages of one list (api/dashboard_list.go), tested over HTTP as a browser without JavaScript
// uses them: a session cookie, forms with the session's CSRF token, redirects after posts.

// lpBrowser is a person signed in to the dashboard: the session cookie and its CSRF token.
type lpBrowser struct {
	h      *apptest.Harness
	email  string
	cookie string
	csrf   string
}

// lpSignIn invites a person to m's team with role and accepts the invite, as the invite page does.
// The address is email made unique (an address belongs to one team only, and the package's tests
// share a database): owner@example.com becomes owner+<random>@example.com.
func lpSignIn(t testing.TB, h *apptest.Harness, m apptest.Merchant, email string, role core.Role) lpBrowser {
	t.Helper()
	ctx := context.Background()
	email = strings.Replace(email, "@", "+"+uuid.NewString()[:8]+"@", 1)
	_, token, err := h.App.Users.Invite(ctx, uuid.MustParse(m.ID), core.InviteInput{Email: email, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.App.Users.AcceptInvite(ctx, token, "a long enough password", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	return lpBrowser{h: h, email: email, cookie: s.Token, csrf: s.Session.CSRFToken}
}

func (b lpBrowser) do(t testing.TB, req apptest.Request) apptest.Response {
	t.Helper()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Cookie", "cg_session="+b.cookie)
	return b.h.Do(t, req)
}

func (b lpBrowser) get(t testing.TB, path string) apptest.Response {
	t.Helper()
	return b.do(t, apptest.Request{Method: http.MethodGet, Path: path})
}

// post sends a form with the session's CSRF token.
func (b lpBrowser) post(t testing.TB, path string, form url.Values) apptest.Response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.csrf)
	return b.postRaw(t, path, form)
}

// postRaw sends the form as it is.
func (b lpBrowser) postRaw(t testing.TB, path string, form url.Values) apptest.Response {
	t.Helper()
	return b.do(t, apptest.Request{Method: http.MethodPost, Path: path, Body: strings.NewReader(form.Encode()),
		ContentType: "application/x-www-form-urlencoded"})
}

// upload sends the import page's file form: multipart, the CSRF token in the action's query.
func (b lpBrowser) upload(t testing.TB, path, filename, content string) apptest.Response {
	t.Helper()
	body, ct := multipartFile(t, "file", filename, []byte(content))
	return b.do(t, apptest.Request{Method: http.MethodPost, Path: path + "?csrf_token=" + url.QueryEscape(b.csrf), Body: body, ContentType: ct})
}

// lpPage is a page's text as a person reads it (entities decoded, tags kept).
func lpPage(r apptest.Response) string { return html.UnescapeString(string(r.Body)) }

// lpWant fails unless the page answered status and reads every one of texts.
func lpWant(t testing.TB, what string, r apptest.Response, status int, texts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
	page := lpPage(r)
	for _, s := range texts {
		if !strings.Contains(page, s) {
			t.Errorf("%s: the page does not read %q:\n%s", what, s, page)
		}
	}
}

// lpFieldError checks that field's error reads message, beside its control (aria-describedby).
func lpFieldError(t testing.TB, r apptest.Response, inputID, field, message string) {
	t.Helper()
	page := lpPage(r)
	if !strings.Contains(page, `<p class="field-error-message" id="error-`+field+`">`+message+`</p>`) {
		t.Errorf("no error %q beside %s:\n%s", message, field, page)
	}
	re := regexp.MustCompile(`id="` + inputID + `"[^>]*aria-describedby="[^"]*error-` + field + `"`)
	if !re.MatchString(page) {
		t.Errorf("the control %s is not described by its error", inputID)
	}
}

// lpLocation is a 303's target.
func lpLocation(t testing.TB, r apptest.Response) string {
	t.Helper()
	if r.Status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303: %s", r.Status, r.Body)
	}
	return r.Header.Get("Location")
}

// lpCreateList creates a list through the form and returns its id.
func lpCreateList(t testing.TB, b lpBrowser, form url.Values) string {
	t.Helper()
	loc := lpLocation(t, b.post(t, "/app/lists/new", form))
	id, ok := strings.CutPrefix(loc, "/app/lists/")
	if !ok {
		t.Fatalf("created list goes to %q", loc)
	}
	return id
}

func lpCSV(t testing.TB, r apptest.Response) [][]string {
	t.Helper()
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("not a CSV download: %d %v %s", r.Status, r.Header, r.Body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, r.Body)
	}
	return rows
}

func TestListPagesCreateAndEdit(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)

	lpWant(t, "new list form", b.get(t, "/app/lists/new"), http.StatusOK,
		"Create list", `<label for="list-name">Name</label>`, `<label for="list-description">Description</label>`,
		"Unique codes", "One fixed code", "How many times the code may be handed out", "Uses per code",
		"Only valid once handed out", "Start (UTC)", "Expiry (UTC)", "Times are in UTC", "Low-stock warning",
		"Same code again for", "Case-insensitive codes")

	t.Run("field errors beside the fields", func(t *testing.T) {
		for _, c := range []struct {
			name              string
			form              url.Values
			input, field, msg string
		}{
			{"no name", url.Values{"name": {"  "}, "kind": {"unique"}}, "list-name", "name", "Give the list a name of at most 200 characters."},
			{"uses not a number", url.Values{"name": {"X"}, "kind": {"unique"}, "uses_per_code": {"many"}}, "list-uses", "uses_per_code",
				"Enter how many times each code can be used: a whole number from 1 to 1,000,000."},
			{"expiry before start", url.Values{"name": {"X"}, "kind": {"unique"}, "starts_at": {"2026-05-01T10:00"}, "expires_at": {"2026-04-01T10:00"}},
				"list-expires", "expires_at", "The expiry must be after the start."},
			{"not a date", url.Values{"name": {"X"}, "kind": {"unique"}, "starts_at": {"next week"}}, "list-starts", "starts_at",
				"Enter the start as a date and time, such as 2026-01-31 09:00 (UTC)."},
			{"issued with many uses", url.Values{"name": {"X"}, "kind": {"unique"}, "uses_per_code": {"3"}, "require_issued": {"1"}},
				"list-require-issued", "require_issued", "“Only valid once handed out” works with 1 use per code only."},
			{"fixed without its code", url.Values{"name": {"X"}, "kind": {"fixed"}, "fixed_code": {"two words"}}, "list-fixed-code", "fixed_code",
				"Enter the code: 1 to 100 characters, without spaces."},
			{"negative low stock", url.Values{"name": {"X"}, "kind": {"unique"}, "low_stock_threshold": {"-4"}}, "list-low-stock", "low_stock_threshold",
				"Enter the low-stock warning as a whole number of codes, or leave it empty for none."},
			{"window too long", url.Values{"name": {"X"}, "kind": {"unique"}, "reassign_amount": {"5000"}, "reassign_unit": {"days"}}, "list-reassign", "reassign_window",
				"Enter the window as a whole number, at most 10 years."},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := b.post(t, "/app/lists/new", c.form)
				lpWant(t, c.name, r, http.StatusUnprocessableEntity, "Some values are not right")
				lpFieldError(t, r, c.input, c.field, c.msg)
				// What was typed is kept.
				if name := c.form.Get("name"); name == "X" && !strings.Contains(lpPage(r), `id="list-name" name="name" type="text" required maxlength="200" value="X"`) {
					t.Errorf("the name typed is not kept")
				}
			})
		}
		lists, _, err := h.App.Lists.List(context.Background(), uuid.MustParse(m.ID), core.Page{})
		if err != nil || len(lists) != 0 {
			t.Fatalf("a refused form made lists: %v %v", lists, err)
		}
	})

	var id string
	t.Run("create", func(t *testing.T) {
		id = lpCreateList(t, b, url.Values{"name": {"Summer 2026"}, "description": {"Newsletter codes"}, "kind": {"unique"},
			"uses_per_code": {"1"}, "require_issued": {"1"}, "starts_at": {"2031-06-01T08:00"}, "expires_at": {"2031-08-31T23:59"},
			"low_stock_threshold": {"100"}, "reassign_amount": {"2"}, "reassign_unit": {"days"}, "case_insensitive": {"1"}})
		l, err := h.App.Lists.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(id))
		if err != nil {
			t.Fatal(err)
		}
		if l.Name != "Summer 2026" || !l.RequireIssued || !l.CaseInsensitive || l.LowStockThreshold != 100 ||
			l.ReassignWindow != 48*time.Hour || !l.StartsAt.Equal(time.Date(2031, 6, 1, 8, 0, 0, 0, time.UTC)) ||
			!l.ExpiresAt.Equal(time.Date(2031, 8, 31, 23, 59, 0, 0, time.UTC)) {
			t.Fatalf("stored list: %+v", l)
		}
		lpWant(t, "list page", b.get(t, "/app/lists/"+id), http.StatusOK,
			"<h1>Summer 2026</h1>", `<span class="badge badge-active">active</span>`,
			"<dt>Available</dt><dd>0</dd>", "<dt>Delivered</dt><dd>0</dd>", "<dt>Redeemed</dt><dd>0</dd>",
			`href="/app/lists/`+id+`/codes"`, `href="/app/lists/`+id+`/import"`, `href="/app/lists/`+id+`/generate"`,
			`href="/app/lists/`+id+`/export"`, `href="/app/lists/`+id+`/edit"`,
			"Newsletter codes", "1 Jun 2031 08:00 UTC", "31 Aug 2031 23:59 UTC", "Below 100 available codes", "2 days",
			"Add codes to this list")
	})

	t.Run("edit", func(t *testing.T) {
		lpWant(t, "edit form", b.get(t, "/app/lists/"+id+"/edit"), http.StatusOK,
			`value="Summer 2026"`, `value="2031-06-01T08:00"`, `value="2031-08-31T23:59"`, `value="100"`,
			`<option value="days" selected>days</option>`, "These cannot be changed after the list is created")
		r := b.post(t, "/app/lists/"+id+"/edit", url.Values{"name": {"Summer 2026"}, "uses_per_code": {"2"}, "require_issued": {"1"},
			"reassign_amount": {"2"}, "reassign_unit": {"days"}})
		lpWant(t, "edit refused", r, http.StatusUnprocessableEntity)
		lpFieldError(t, r, "list-require-issued", "require_issued", "“Only valid once handed out” works with 1 use per code only.")

		loc := lpLocation(t, b.post(t, "/app/lists/"+id+"/edit", url.Values{"name": {"Autumn"}, "description": {""},
			"uses_per_code": {"1"}, "starts_at": {"2031-06-01T08:00"}, "expires_at": {""}, "low_stock_threshold": {""}, "reassign_amount": {"30"},
			"reassign_unit": {"minutes"}, "archived": {"1"}, "kind": {"fixed"}, "case_insensitive": {""}}))
		if loc != "/app/lists/"+id {
			t.Fatalf("after saving: %q", loc)
		}
		l, err := h.App.Lists.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(id))
		if err != nil {
			t.Fatal(err)
		}
		// The expiry was cleared, the window is 30 minutes, the list archived; the kind and the
		// case rule stay what they were (the form does not send them).
		if l.Name != "Autumn" || l.ExpiresAt != nil || l.StartsAt == nil || l.ReassignWindow != 30*time.Minute ||
			l.ArchivedAt == nil || l.RequireIssued || l.Kind != core.KindUnique || !l.CaseInsensitive || l.LowStockThreshold != 0 {
			t.Fatalf("updated list: %+v", l)
		}
		lpWant(t, "archived list", b.get(t, "/app/lists/"+id), http.StatusOK, `<span class="badge badge-archived">archived</span>`, "30 minutes")
	})

	t.Run("fixed list", func(t *testing.T) {
		fixed := lpCreateList(t, b, url.Values{"name": {"Staff discount"}, "kind": {"fixed"}, "fixed_code": {" STAFF10 "},
			"max_assignments": {"500"}, "uses_per_code": {"1"}})
		page := b.get(t, "/app/lists/"+fixed)
		lpWant(t, "fixed list page", page, http.StatusOK, "One fixed code: <code>STAFF10</code>, handed out up to 500 times")
		if strings.Contains(lpPage(page), "/import\"") {
			t.Errorf("a fixed list offers imports")
		}
		lpWant(t, "fixed import page", b.get(t, "/app/lists/"+fixed+"/import"), http.StatusOK, "imports are for lists of unique codes")
	})

	t.Run("unknown list", func(t *testing.T) {
		lpWant(t, "unknown list", b.get(t, "/app/lists/"+uuid.NewString()), http.StatusNotFound, "This page does not exist")
		lpWant(t, "not an id", b.get(t, "/app/lists/nope/export"), http.StatusNotFound)
		other := h.NewMerchant(t, "Someone else")
		theirs := lpCreateList(t, lpSignIn(t, h, other, "them@example.com", core.RoleOwner), url.Values{"name": {"Theirs"}, "kind": {"unique"}})
		lpWant(t, "another merchant's list", b.get(t, "/app/lists/"+theirs), http.StatusNotFound)
	})
}

func TestListPagesImport(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	id := lpCreateList(t, b, url.Values{"name": {"Imports"}, "kind": {"unique"}})
	base := "/app/lists/" + id

	lpWant(t, "import page", b.get(t, base+"/import"), http.StatusOK,
		`<label for="import-codes">Codes, one per line</label>`, `<label for="import-file">CSV or .txt file</label>`,
		`action="`+base+`/import?csrf_token=`+b.csrf+`" enctype="multipart/form-data"`,
		"Download example CSV", "Nothing was imported into this list yet.")

	t.Run("example CSV", func(t *testing.T) {
		rows := lpCSV(t, b.get(t, base+"/import/example.csv"))
		if rows[0][0] != "Code" || len(rows) < 3 {
			t.Fatalf("example: %v", rows)
		}
	})

	// finished waits for the import's page to show the report and returns it.
	finished := func(t *testing.T, path string) string {
		t.Helper()
		var page string
		apptest.Eventually(t, 20*time.Second, "the import to finish", func() bool {
			r := b.get(t, path)
			page = lpPage(r)
			return r.Status == http.StatusOK && !strings.Contains(page, "data-poll=")
		})
		return page
	}

	t.Run("paste", func(t *testing.T) {
		loc := lpLocation(t, b.post(t, base+"/import", url.Values{"codes": {"PASTE-1\nPASTE-2\n\nPASTE-1\n"}}))
		if !strings.HasPrefix(loc, base+"/imports/") {
			t.Fatalf("after pasting: %q", loc)
		}
		page := finished(t, loc)
		for _, s := range []string{"Import #1: pasted codes", "Finished", "<dt>Imported</dt><dd>2</dd>",
			"<dt>Duplicates in the file</dt><dd>1</dd>", "<dt>Already in the list</dt><dd>0</dd>", "<dt>Invalid</dt><dd>0</dd>",
			`<td class="num">4</td><td><code>PASTE-1</code></td><td>Duplicate: it appears earlier in the file</td>`} {
			if !strings.Contains(page, s) {
				t.Errorf("report does not read %q:\n%s", s, page)
			}
		}
	})

	t.Run("upload a CSV", func(t *testing.T) {
		csvFile := "Code,note\nFILE-1,a\nFILE-2,b\nFILE-1,again\nhas space,c\nPASTE-2,d\n"
		loc := lpLocation(t, b.upload(t, base+"/import", "spring.csv", csvFile))
		page := finished(t, loc)
		for _, s := range []string{"Import #2: spring.csv", "<dt>Imported</dt><dd>2</dd>", "<dt>Duplicates in the file</dt><dd>1</dd>",
			"<dt>Already in the list</dt><dd>1</dd>", "<dt>Invalid</dt><dd>1</dd>", "5 rows read. The list now holds 4 codes.",
			`<td class="num">4</td><td><code>FILE-1</code></td><td>Duplicate: it appears earlier in the file</td>`,
			`<td class="num">5</td><td><code>has space</code></td><td>Not a valid code: 1 to 100 characters, without spaces</td>`,
			`<td class="num">6</td><td><code>PASTE-2</code></td><td>Already in the list</td>`} {
			if !strings.Contains(page, s) {
				t.Errorf("report does not read %q:\n%s", s, page)
			}
		}
		lpWant(t, "list after imports", b.get(t, base), http.StatusOK, "<dt>Available</dt><dd>4</dd>")
	})

	t.Run("a file that cannot be read", func(t *testing.T) {
		loc := lpLocation(t, b.upload(t, base+"/import", "wrong.csv", "Coupon;Value\nA;1\n"))
		page := finished(t, loc)
		if !strings.Contains(page, "Failed") || !strings.Contains(page, "The import stopped: The file has no Code column") {
			t.Errorf("failed import:\n%s", page)
		}
	})

	t.Run("history", func(t *testing.T) {
		page := lpPage(b.get(t, base+"/import"))
		for _, s := range []string{"Import history", "#3", "wrong.csv", "#2", "spring.csv", "#1", "Pasted codes", b.email} {
			if !strings.Contains(page, s) {
				t.Errorf("history does not read %q:\n%s", s, page)
			}
		}
		if strings.Index(page, "wrong.csv") > strings.Index(page, "spring.csv") {
			t.Errorf("history is not newest first")
		}
	})

	t.Run("form errors", func(t *testing.T) {
		r := b.post(t, base+"/import", url.Values{"codes": {"  \n "}})
		lpWant(t, "empty paste", r, http.StatusUnprocessableEntity)
		lpFieldError(t, r, "import-codes", "codes", "Paste at least one code, one per line.")
		r = b.upload(t, base+"/import", "", "")
		lpWant(t, "no file", r, http.StatusUnprocessableEntity)
		lpFieldError(t, r, "import-file", "file", "Choose a CSV or .txt file to upload.")
	})

	t.Run("unknown import", func(t *testing.T) {
		lpWant(t, "unknown import", b.get(t, base+"/imports/"+uuid.NewString()), http.StatusNotFound)
	})
}

func TestListPagesImportProgress(t *testing.T) {
	t.Parallel()
	// No worker: the import waits, and its page shows the progress and polls itself.
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	id := lpCreateList(t, b, url.Values{"name": {"Waiting"}, "kind": {"unique"}})
	loc := lpLocation(t, b.upload(t, "/app/lists/"+id+"/import", "codes.txt", "A\nB\n"))
	lpWant(t, "waiting import", b.get(t, loc), http.StatusOK,
		`<div class="page" id="import-page" data-poll="`+loc+`" data-poll-interval="1000">`, `id="import-report"`, "Waiting for a worker to start",
		`<progress id="import-progress" max="100" value="0">`, `<a href="`+loc+`">Refresh</a>`)
	// The script asks for the fragment: the same section, without the frame.
	r := b.do(t, apptest.Request{Method: http.MethodGet, Path: loc, Header: http.Header{"X-Coupongate-Fragment": {"1"}}})
	lpWant(t, "fragment", r, http.StatusOK, `id="import-page"`, `id="import-report"`)
	if strings.Contains(string(r.Body), "<html") {
		t.Errorf("the fragment holds the whole document")
	}
}

func TestListPagesGenerate(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	id := lpCreateList(t, b, url.Values{"name": {"Generated"}, "kind": {"unique"}})
	base := "/app/lists/" + id

	lpWant(t, "generate page", b.get(t, base+"/generate"), http.StatusOK,
		`<label for="gen-count">Count</label>`, `<label for="gen-prefix">Prefix</label>`, `<label for="gen-length">Length</label>`,
		`<label for="gen-charset">Characters</label>`, `value="`+core.DefaultCharset+`"`, "No codes were generated into this list yet.")

	t.Run("field errors", func(t *testing.T) {
		for _, c := range []struct {
			name              string
			form              url.Values
			input, field, msg string
		}{
			{"no count", url.Values{"count": {""}}, "gen-count", "count", "Enter how many codes to generate: a whole number from 1 to 50,000,000."},
			{"count too large", url.Values{"count": {"60000000"}}, "gen-count", "count", "Enter how many codes to generate: a whole number from 1 to 50,000,000."},
			{"one character", url.Values{"count": {"5"}, "charset": {"A"}}, "gen-charset", "charset", "Use 2 to 256 different characters, without spaces."},
			{"space too small", url.Values{"count": {"1000"}, "length": {"2"}, "charset": {"AB"}}, "gen-length", "length",
				"These characters and this length cannot comfortably hold that many codes: use a longer length or more characters."},
			{"prefix with a space", url.Values{"count": {"5"}, "prefix": {"A B"}}, "gen-prefix", "prefix", "The prefix and the separator cannot hold spaces or control characters."},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := b.post(t, base+"/generate", c.form)
				lpWant(t, c.name, r, http.StatusUnprocessableEntity)
				lpFieldError(t, r, c.input, c.field, c.msg)
			})
		}
	})

	var rows [][]string
	t.Run("generate and download", func(t *testing.T) {
		loc := lpLocation(t, b.post(t, base+"/generate", url.Values{"count": {"25"}, "prefix": {"SUMMER"}, "separator": {"-"},
			"length": {"6"}, "charset": {"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"}}))
		if loc != base+"/generate" {
			t.Fatalf("after generating: %q", loc)
		}
		var page string
		apptest.Eventually(t, 20*time.Second, "the batch to be generated", func() bool {
			page = lpPage(b.get(t, base+"/generate"))
			return !strings.Contains(page, "data-poll=")
		})
		for _, s := range []string{"Batch history", "#1 <code>SUMMER-…</code>", b.email, `<td class="num">25`,
			"<td>No</td>", ">Download</a>", ">Download with info</a>"} {
			if !strings.Contains(page, s) {
				t.Errorf("history does not read %q:\n%s", s, page)
			}
		}
		rows = lpCSV(t, b.get(t, base+"/batches/1/codes.csv"))
		if len(rows) != 26 || rows[0][0] != "code" || !regexp.MustCompile(`^SUMMER-[A-Z2-9]{6}$`).MatchString(rows[1][0]) {
			t.Fatalf("download: %v", rows)
		}
		lpWant(t, "exported", b.get(t, base+"/generate"), http.StatusOK, "<td>Yes</td>")
		lpWant(t, "list counts", b.get(t, base), http.StatusOK, "<dt>Available</dt><dd>25</dd>")
	})

	t.Run("download with info", func(t *testing.T) {
		// One code handed out to a customer, one removed: the info columns say so.
		mid := uuid.MustParse(m.ID)
		got := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+id+"/allocations", map[string]any{
			"recipient": map[string]any{"email": "ada@example.com"}, "campaign": "spring"})
		if got.Status != http.StatusOK && got.Status != http.StatusCreated {
			t.Fatalf("allocate: %d %s", got.Status, got.Body)
		}
		handed := got.Map(t)["code"].(string)
		var removed string
		for _, r := range rows[1:] {
			if r[0] != handed {
				removed = r[0]
				break
			}
		}
		if err := h.App.Codes.Remove(context.Background(), mid, uuid.MustParse(id), removed, "test"); err != nil {
			t.Fatal(err)
		}
		info := lpCSV(t, b.get(t, base+"/batches/1/codes.csv?info=1"))
		if strings.Join(info[0], ",") != core.BatchInfoHeader || len(info) != 26 {
			t.Fatalf("with info: %v", info)
		}
		byCode := map[string][]string{}
		for _, r := range info[1:] {
			byCode[r[0]] = r
		}
		if r := byCode[handed]; strings.Join(r, ",") != handed+",1,delivered,0,,ada@example.com," {
			t.Errorf("handed-out code: %v", r)
		}
		if r := byCode[removed]; r[1] != "1" || r[2] != "removed" {
			t.Errorf("removed code: %v", r)
		}
		// The plain download leaves the removed code out.
		if plain := lpCSV(t, b.get(t, base+"/batches/1/codes.csv")); len(plain) != 25 {
			t.Errorf("plain download after a removal: %d rows", len(plain))
		}
	})

	t.Run("unknown batch", func(t *testing.T) {
		lpWant(t, "unknown batch", b.get(t, base+"/batches/9/codes.csv"), http.StatusNotFound, "This page does not exist")
	})
}

func TestListPagesExportAndRemoval(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	mid := uuid.MustParse(m.ID)
	id := lpCreateList(t, b, url.Values{"name": {"Exported"}, "kind": {"unique"}})
	base := "/app/lists/" + id
	// Three codes, one handed out and one used at once.
	imp, err := h.App.Imports.Start(context.Background(), mid, uuid.MustParse(id), core.FormatText, "", strings.NewReader("E-1\nE-2\nE-3\n"), 1<<20, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := core.NewImportRunner(h.App.DB, h.App.DB, slog.New(slog.DiscardHandler)).Run(context.Background(), mid, imp.ID); err != nil {
		t.Fatal(err)
	}
	if r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+id+"/allocations", map[string]any{"recipient": map[string]any{"email": "ada@example.com"}}); r.Status != http.StatusCreated {
		t.Fatalf("allocate: %d %s", r.Status, r.Body)
	}

	lpWant(t, "export page", b.get(t, base+"/export"), http.StatusOK,
		"Download all codes", "Download delivered codes", "Download undelivered codes", "Download redeemed codes",
		"Codes still to hand out (2).", "2 codes were never handed out.", `href="`+base+`/remove-unused"`, `href="`+base+`/delete"`)

	t.Run("downloads", func(t *testing.T) {
		for state, want := range map[string]int{"all": 3, "delivered": 1, "undelivered": 2, "redeemed": 0} {
			rows := lpCSV(t, b.get(t, base+"/export/codes.csv?state="+state))
			if strings.Join(rows[0], ",") != core.ExportHeader || len(rows)-1 != want {
				t.Errorf("%s: %d codes, want %d: %v", state, len(rows)-1, want, rows)
			}
		}
		lpWant(t, "unknown state", b.get(t, base+"/export/codes.csv?state=lost"), http.StatusUnprocessableEntity)
	})

	t.Run("remove unused codes", func(t *testing.T) {
		lpWant(t, "question", b.get(t, base+"/remove-unused"), http.StatusOK,
			"2 codes were never handed out.", `<button class="button button-critical" type="submit">Remove 2 unused codes</button>`)
		loc := lpLocation(t, b.post(t, base+"/remove-unused", nil))
		if loc != base+"/export?removed=2" {
			t.Fatalf("after removing: %q", loc)
		}
		lpWant(t, "after removing", b.get(t, loc), http.StatusOK, "2 unused codes were removed.", "There are no unused codes to remove.",
			"<dt>Available</dt><dd>0</dd>", "<dt>Delivered</dt><dd>1</dd>")
		lpWant(t, "nothing left", b.get(t, base+"/remove-unused"), http.StatusOK, "there are no unused codes to remove")
	})

	t.Run("delete refused while it has templates", func(t *testing.T) {
		if r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+id+"/templates", map[string]any{"channel": "sms", "text": "Your code: <coupon_code>"}); r.Status != http.StatusCreated {
			t.Fatalf("template: %d %s", r.Status, r.Body)
		}
		lpWant(t, "question", b.get(t, base+"/delete"), http.StatusOK, "This cannot be undone.", ">Delete list</button>")
		lpWant(t, "refused", b.post(t, base+"/delete", nil), http.StatusConflict,
			"The list was not deleted. The list is connected to a shop or a message template and still has codes; disconnect it or remove its codes first.")
		if _, err := h.App.Lists.Get(context.Background(), mid, uuid.MustParse(id)); err != nil {
			t.Fatalf("the refused list is gone: %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		other := lpCreateList(t, b, url.Values{"name": {"Short-lived"}, "kind": {"unique"}})
		if loc := lpLocation(t, b.post(t, "/app/lists/"+other+"/delete", nil)); loc != "/app/lists" {
			t.Fatalf("after deleting: %q", loc)
		}
		if _, err := h.App.Lists.Get(context.Background(), mid, uuid.MustParse(other)); err == nil {
			t.Fatal("the list is still there")
		}
	})
}

func TestListPagesRefuseFormsWithoutCSRF(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	id := lpCreateList(t, b, url.Values{"name": {"Guarded"}, "kind": {"unique"}})
	base := "/app/lists/" + id
	forms := []struct {
		path string
		form url.Values
	}{
		{"/app/lists/new", url.Values{"name": {"Sneaky"}, "kind": {"unique"}}},
		{base + "/edit", url.Values{"name": {"Renamed"}, "uses_per_code": {"1"}}},
		{base + "/import", url.Values{"codes": {"SNEAKY"}}},
		{base + "/generate", url.Values{"count": {"5"}}},
		{base + "/remove-unused", nil},
		{base + "/delete", nil},
	}
	for _, f := range forms {
		for _, token := range []string{"", "wrong-token"} {
			form := url.Values{}
			for k, v := range f.form {
				form[k] = v
			}
			if token != "" {
				form.Set("csrf_token", token)
			}
			lpWant(t, "POST "+f.path+" with token "+token, b.postRaw(t, f.path, form), http.StatusForbidden,
				"This form is out of date or did not come from this dashboard, so nothing was changed.")
		}
	}
	// The upload carries its token in the action's query: none, or a wrong one, is refused too.
	body, ct := multipartFile(t, "file", "codes.txt", []byte("SNEAKY\n"))
	r := b.do(t, apptest.Request{Method: http.MethodPost, Path: base + "/import?csrf_token=nope", Body: body, ContentType: ct})
	lpWant(t, "upload with a wrong token", r, http.StatusForbidden)

	l, err := h.App.Lists.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(id))
	if err != nil || l.Name != "Guarded" || l.Counts.Total != 0 {
		t.Fatalf("a refused form changed the list: %+v %v", l, err)
	}
	lists, _, _ := h.App.Lists.List(context.Background(), uuid.MustParse(m.ID), core.Page{})
	imps, _, _ := h.App.Imports.List(context.Background(), uuid.MustParse(m.ID), l.ID, core.Page{})
	batches, _, _ := h.App.Batches.List(context.Background(), uuid.MustParse(m.ID), l.ID, core.Page{})
	if len(lists) != 1 || len(imps) != 0 || len(batches) != 0 {
		t.Fatalf("refused forms made %d lists, %d imports, %d batches", len(lists), len(imps), len(batches))
	}
}

func TestListPagesAreForOwners(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Blue Bottle")
	owner := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	staff := lpSignIn(t, h, m, "staff@example.com", core.RoleStaff)
	id := lpCreateList(t, owner, url.Values{"name": {"Owners only"}, "kind": {"unique"}})
	base := "/app/lists/" + id
	for _, path := range []string{"/app/lists/new", base, base + "/edit", base + "/import", base + "/import/example.csv",
		base + "/imports/" + uuid.NewString(), base + "/generate", base + "/batches/1/codes.csv", base + "/export",
		base + "/export/codes.csv", base + "/remove-unused", base + "/delete"} {
		lpWant(t, "staff GET "+path, staff.get(t, path), http.StatusForbidden, "You cannot open this page")
	}
	for _, path := range []string{"/app/lists/new", base + "/edit", base + "/import", base + "/generate", base + "/remove-unused", base + "/delete"} {
		lpWant(t, "staff POST "+path, staff.post(t, path, url.Values{"name": {"Staff"}, "count": {"5"}, "codes": {"X"}}), http.StatusForbidden)
	}
	if _, err := h.App.Lists.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(id)); err != nil {
		t.Fatal(err)
	}
	// Nobody signed in goes to the sign-in page and comes back.
	r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: base + "/import"})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/app/sign-in?next="+url.QueryEscape(base+"/import") {
		t.Fatalf("signed out: %d %v", r.Status, r.Header)
	}
}

func TestListPagesEscapeWhatPeopleTyped(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	const evil = `<svg/onload=alert(1)>`
	id := lpCreateList(t, b, url.Values{"name": {evil}, "description": {evil}, "kind": {"unique"}})
	base := "/app/lists/" + id
	loc := lpLocation(t, b.upload(t, base+"/import", evil+".csv", "Code\n"+evil+"\n"+evil+"\n\"<b>bold</b> x\"\n"))
	var page string
	apptest.Eventually(t, 20*time.Second, "the import to finish", func() bool {
		page = string(b.get(t, loc).Body)
		return !strings.Contains(page, "data-poll=")
	})
	if !strings.Contains(page, "&lt;svg/onload=alert(1)&gt;") {
		t.Fatalf("the code is not on the report:\n%s", page)
	}
	fixed := lpCreateList(t, b, url.Values{"name": {"Fixed"}, "kind": {"fixed"}, "fixed_code": {evil}})
	for _, path := range []string{base, base + "/edit", base + "/import", loc, base + "/export", base + "/generate",
		base + "/delete", "/app/lists/" + fixed, "/app/lists/" + fixed + "/edit", "/app"} {
		body := string(b.get(t, path).Body)
		if strings.Contains(body, "<svg") || strings.Contains(body, "<b>bold") {
			t.Errorf("%s shows markup people typed unescaped", path)
		}
		if !strings.Contains(body, "&lt;svg/onload=alert(1)&gt;") {
			t.Errorf("%s does not show the text people typed", path)
		}
	}
	// A form sent back with its errors escapes what was typed too.
	r := b.post(t, "/app/lists/new", url.Values{"name": {evil}, "kind": {"unique"}, "uses_per_code": {evil}})
	if r.Status != http.StatusUnprocessableEntity || strings.Contains(string(r.Body), "<svg") {
		t.Errorf("the refused form shows markup unescaped: %d", r.Status)
	}
}

func TestListPagesHistoriesLoadMore(t *testing.T) {
	t.Parallel()
	// No worker: the imports and batches wait, which is all the histories need.
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Blue Bottle")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	id := lpCreateList(t, b, url.Values{"name": {"Busy"}, "kind": {"unique"}})
	ctx, mid, lid := context.Background(), uuid.MustParse(m.ID), uuid.MustParse(id)
	for i := 0; i < 51; i++ {
		if _, err := h.App.Imports.Start(ctx, mid, lid, core.FormatText, "", strings.NewReader("X\n"), 1<<20, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.App.Batches.Create(ctx, mid, lid, core.BatchSpec{Count: 1}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<td>#(\d+)`)
	more := regexp.MustCompile(`data-load-more="(#[a-z-]+)" href="([^"]+)">Load more</a>`)
	for _, c := range []struct {
		page, rows   string
		first, later []string
	}{
		{"/import", "#import-rows", []string{"51", "2"}, []string{"1"}},   // newest first
		{"/generate", "#batch-rows", []string{"1", "50"}, []string{"51"}}, // oldest first
	} {
		page := lpPage(b.get(t, "/app/lists/"+id+c.page))
		got := rows.FindAllStringSubmatch(page, -1)
		if len(got) != 50 || got[0][1] != c.first[0] || got[49][1] != c.first[1] {
			t.Fatalf("%s: first page %v", c.page, got)
		}
		link := more.FindStringSubmatch(page)
		if link == nil || link[1] != c.rows {
			t.Fatalf("%s: no Load more for %s", c.page, c.rows)
		}
		next := lpPage(b.get(t, link[2]))
		got = rows.FindAllStringSubmatch(next, -1)
		if len(got) != 1 || got[0][1] != c.later[0] || more.MatchString(next) {
			t.Fatalf("%s: next page %v", c.page, got)
		}
	}
}
