package dashboardtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// addCodes puts codes into a list as one finished import by actor, the way the import pipeline
// leaves them (an imports row, the codes with its number, the counters).
func (s *site) addCodes(t *testing.T, l core.List, actor string, codes ...string) {
	t.Helper()
	ctx := context.Background()
	lookups := make([]string, len(codes))
	for i, c := range codes {
		lookups[i] = l.Lookup(c)
	}
	tx, err := s.h.App.DB.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var number int
	var base int64
	if err := tx.QueryRow(ctx, `UPDATE code_lists SET next_import = next_import + 1, next_seq = next_seq + $3
		WHERE merchant_id = $1 AND id = $2 RETURNING next_import - 1, next_seq - $3`, s.merchant, l.ID, len(codes)).Scan(&number, &base); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO imports (merchant_id, id, list_id, number, status, format, actor, rows, imported, started_at, finished_at)
			VALUES ($1, $2, $3, $4, 'succeeded', 'txt', $5, $6, $6, now(), now())`, []any{s.merchant, uuid.New(), l.ID, number, actor, len(codes)}},
		{`INSERT INTO codes (merchant_id, list_id, seq, code, lookup, import_no)
			SELECT $1, $2, $3 + u.o - 1, u.c, u.l, $6 FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS u(c, l, o)`,
			[]any{s.merchant, l.ID, base, codes, lookups, number}},
		{`UPDATE list_counters SET available = available + $3 WHERE merchant_id = $1 AND list_id = $2 AND shard = 0`,
			[]any{s.merchant, l.ID, len(codes)}},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJourneyFindAndMarkUsed: staff at the till sign in to "Find a code", type a code, land on its
// page (QR code shown), mark it used with an order and a note, and read their own address on the
// timeline; a second mark says when and by whom it was used. In the list's codes a prefix search
// pages with "Load more", and a code such as <svg/onload=alert(1)> is text everywhere.
func TestJourneyFindAndMarkUsed(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	l := s.list(t, "Spring sale")
	const hostile = `<svg/onload=alert(1)>`
	codes := make([]string, 0, 121)
	for i := 1; i <= 120; i++ {
		codes = append(codes, fmt.Sprintf("SPRING-%04d", i))
	}
	s.addCodes(t, l, "api_key:import", append(codes, hostile)...)
	if _, err := s.h.App.Allocator.Allocate(context.Background(), s.merchant, l.ID, core.AllocationRequest{
		Recipient: core.Recipient{Email: "alice@example.com"}, Campaign: "spring", Actor: "api_key:shop"}); err != nil {
		t.Fatal(err)
	}
	staff := s.member(t, "staff", core.RoleStaff)
	b := browsertest.New(t)

	signIn(b, s.h.URL, staff, password)
	b.WaitText("main h1", "Find a code")
	b.Fill("#codes-q", "SPRING-0001")
	b.ClickText("Find")
	b.WaitText("main h1", "SPRING-0001")
	b.WaitText("main .facts", "alice@example.com")
	waitTrue(t, b, "the QR code", `(() => { const i = document.querySelector("img.qr"); return !!i && i.complete && i.naturalWidth > 0 })()`)

	b.Fill("#mark-order", "#1001")
	b.Fill("#mark-note", "Paid at the till")
	b.ClickText("Mark as used")
	b.WaitText(".banner-success", "Marked as used.")
	b.WaitText("table.timeline", "Used (use 1)")
	row := b.Text("table.timeline tbody tr:last-child")
	for _, want := range []string{"Used (use 1)", "Paid at the till", staff, "manual", "#1001"} {
		if !strings.Contains(row, want) {
			t.Fatalf("the timeline's last row %q lacks %q", row, want)
		}
	}
	if got := lastDocument(t, b, "/mark-used"); got.Method != http.MethodPost || got.Status != http.StatusSeeOther {
		t.Fatalf("Mark as used answered %s %d", got.Method, got.Status)
	}
	screenshot(t, b, "code-timeline")

	// The same code marked again from another tab: refused, with when and by whom.
	before := len(b.Exchanges())
	browsertest.Eval[bool](b, `(() => {
		const f = document.createElement("form");
		f.method = "post";
		f.action = location.pathname + "/mark-used";
		const t = document.querySelector("input[name=csrf_token]").cloneNode();
		f.appendChild(t);
		document.body.appendChild(f);
		f.submit();
		return true;
	})()`)
	b.WaitText(".banner-critical", "Already used: on ")
	b.WaitText(".banner-critical", "by "+staff+" (order #1001). Nothing was changed.")
	if xs := b.Exchanges()[before:]; len(xs) == 0 || xs[0].Status != http.StatusConflict {
		t.Fatalf("a second mark: %v", xs)
	}

	// The list's codes: a prefix, 50 rows, "Load more" in place, then the rest.
	b.ClickText("Codes of Spring sale")
	b.WaitText("main", "Code, start of a code, or customer")
	b.Fill("#codes-q", "SPRING-")
	b.ClickText("Search")
	b.WaitURL("q=SPRING-")
	// The address changes before the whole table has arrived on a busy machine: wait for all of it.
	b.Poll(`document.querySelectorAll("#code-rows tr").length >= 50`)
	if n := b.Count("#code-rows tr"); n != 50 {
		t.Fatalf("%d rows on the first page, want 50", n)
	}
	b.ClickText("Load more")
	b.WaitText("#code-rows", "SPRING-0100")
	b.ClickText("Load more")
	b.WaitText("#code-rows", "SPRING-0120")
	if n, more := b.Count("#code-rows tr"), b.Count("main a[data-load-more]"); n != 120 || more != 0 {
		t.Fatalf("after Load more: %d rows, %d Load more links", n, more)
	}

	// The hostile code is text in the table, on its page and on the timeline; nothing runs.
	b.Navigate(s.h.URL + "/app/lists/" + l.ID.String() + "/codes?q=" + url.QueryEscape("<svg"))
	b.WaitText("#code-rows", hostile)
	b.ClickText(hostile)
	b.WaitText("main h1", hostile)
	b.ClickText("Mark as used")
	b.WaitText(".banner-success", "Marked as used.")
	if d := b.Dialogs(); len(d) != 0 {
		t.Fatalf("the page ran a dialog: %v", d)
	}
	if n := b.Count("main svg"); n != 0 {
		t.Fatalf("%d svg elements made from a code", n)
	}
}

// TestJourneyCodeInsideTheAdmin: inside the Shopify admin the code page's QR code is fetched
// with the ID token, and "Mark as used" names the Shopify user on the timeline.
func TestJourneyCodeInsideTheAdmin(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	l := s.list(t, "Till")
	s.addCodes(t, l, "api_key:import", "TILL-1")
	b := browsertest.New(t)
	q := url.Values{"embedded": {"1"}, "shop": {s.shop}, "host": {"YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGlsbA"}}
	b.Navigate(s.h.URL + "/app/lists/" + l.ID.String() + "/codes/TILL-1?" + q.Encode())
	b.WaitText("main h1", "TILL-1")
	waitTrue(t, b, "the QR code fetched with the ID token",
		`(() => { const i = document.querySelector("img.qr"); return !!i && i.src.startsWith("data:image/svg+xml") && i.naturalWidth > 0 })()`)
	b.ClickText("Mark as used")
	b.WaitText(".banner-success", "Marked as used.")
	b.WaitText("table.timeline", "shopify:"+s.shop+"/user/")
}

// waitTrue waits until the JavaScript condition holds in the page.
func waitTrue(t *testing.T, b *browsertest.Browser, what, condition string) {
	t.Helper()
	deadline := time.Now().Add(browsertest.Timeout)
	for !browsertest.Eval[bool](b, condition) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, browsertest.Timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
