package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// handOut allocates a code to a recipient through the API and returns it.
func handOut(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string, recipient map[string]any, campaign string) string {
	t.Helper()
	r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+listID+"/allocations", map[string]any{"recipient": recipient, "campaign": campaign})
	if r.Status != http.StatusCreated {
		t.Fatalf("allocate: %d %s", r.Status, r.Body)
	}
	return r.Map(t)["code"].(string)
}

func redeemByHand(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, code string) {
	t.Helper()
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: codePath(listID, code) + "/redeem", APIKey: m.APIKey,
		JSON: map[string]any{"order_id": "till-7"}})
	if r.Status != http.StatusOK {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
}

func codesOf(items []codeItem) []string {
	out := make([]string, len(items))
	for i, c := range items {
		out[i] = c.Code
	}
	return out
}

func TestCodeSearch(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Search Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Search"})
	spring := numbered("SPRING-", 120)
	importByHand(t, h, m, list, "api_key:a", spring...)
	importByHand(t, h, m, list, "api_key:a", "SPRINGTIME", "spring-0001", "SUMMER-1", "SPRING", "SPRIN", "SPRING-%", "SPRING-_1")

	for _, tc := range []struct {
		q     string
		limit int
		want  int
	}{
		{"SPRING-", 50, 122}, // the 120, SPRING-% and SPRING-_1: % and _ are not wildcards
		{"SPRING-0", 7, 120},
		{"SPRING-01", 500, 21},
		{"SPRING", 33, 124},
		{"S", 500, 126},
		{"spring", 500, 1}, // case-sensitive list
		{"SPRING-%", 500, 1},
		{"ZZZ", 500, 0},
	} {
		got := searchAll(t, h, m, list, url.Values{"q": {tc.q}}, tc.limit)
		if len(got) != tc.want {
			t.Fatalf("q=%s: %d codes, want %d: %v", tc.q, len(got), tc.want, codesOf(got))
		}
		codes := codesOf(got)
		if !sort.StringsAreSorted(codes) {
			t.Fatalf("q=%s: not in code order: %v", tc.q, codes)
		}
		for _, c := range codes {
			if !strings.HasPrefix(c, tc.q) {
				t.Fatalf("q=%s matched %q", tc.q, c)
			}
		}
	}
	// Without q: every code, in list order, over pages.
	all := searchAll(t, h, m, list, url.Values{}, 37)
	if len(all) != 127 || all[0].Code != "SPRING-0001" || all[119].Code != "SPRING-0120" || all[120].Code != "SPRINGTIME" {
		t.Fatalf("all codes: %d, first %v", len(all), codesOf(all)[:3])
	}
	if all[0].State != "available" || all[0].Uses != 0 || all[0].Recipient != nil || all[0].Delivered != nil || all[0].ExpiresAt != nil {
		t.Fatalf("available code answer: %+v", all[0])
	}

	// Hand out three, to three kinds of recipient, and redeem one.
	alice := handOut(t, h, m, list, map[string]any{"email": "Alice@Example.com"}, "spring")
	bob := handOut(t, h, m, list, map[string]any{"external_id": "u-42"}, "spring")
	carol := handOut(t, h, m, list, map[string]any{"phone": "+1 555 0100"}, "summer")
	redeemByHand(t, h, m, list, bob)

	for _, tc := range []struct {
		query url.Values
		want  []string
	}{
		{url.Values{"state": {"delivered"}}, []string{alice, carol}},
		{url.Values{"state": {"redeemed"}}, []string{bob}},
		{url.Values{"state": {"removed"}}, nil},
		{url.Values{"recipient": {"alice@example.com"}}, []string{alice}},
		{url.Values{"recipient": {" ALICE@example.COM "}}, []string{alice}},
		{url.Values{"recipient": {"u-42"}}, []string{bob}},
		{url.Values{"recipient": {"+15550100"}}, []string{carol}},
		{url.Values{"recipient": {"+1 (555) 0100"}}, []string{carol}},
		{url.Values{"recipient": {"nobody@example.com"}}, nil},
		{url.Values{"recipient": {"u-42"}, "state": {"delivered"}}, nil},
		{url.Values{"recipient": {"u-42"}, "state": {"redeemed"}, "q": {bob[:3]}}, []string{bob}},
	} {
		got := codesOf(searchAll(t, h, m, list, tc.query, 2))
		sort.Strings(got)
		want := append([]string(nil), tc.want...)
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: got %v, want %v", tc.query.Encode(), got, want)
		}
	}
	if n := len(searchAll(t, h, m, list, url.Values{"state": {"available"}}, 500)); n != 124 {
		t.Fatalf("%d available codes, want 124", n)
	}
	var a codeItem
	get(t, h, m, codePath(list, alice)).JSON(t, &a)
	if a.State != "delivered" || a.Recipient["email"] != "Alice@Example.com" || a.Campaign == nil || *a.Campaign != "spring" || a.Delivered == nil {
		t.Fatalf("delivered code answer: %+v", a)
	}
	for _, bad := range []string{"state=used", "limit=0", "limit=501", "cursor=garbage!", "q=%FF", "q=A%00", "recipient=%C3"} {
		r := get(t, h, m, "/api/v1/lists/"+list+"/codes?"+bad)
		if r.Status != http.StatusUnprocessableEntity && r.Status != http.StatusBadRequest {
			t.Fatalf("?%s: %d %s", bad, r.Status, r.Body)
		}
	}
}

func TestCodeSearchCaseInsensitiveList(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Folded Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Folded", "case_insensitive": true})
	importByHand(t, h, m, list, "api_key:a", "Hello-1", "HELLO-2", "help-3", "World")
	for q, want := range map[string]int{"hel": 3, "HELLO": 2, "hElLo-2": 1, "w": 1, "x": 0} {
		if got := searchAll(t, h, m, list, url.Values{"q": {q}}, 1); len(got) != want {
			t.Fatalf("q=%s: %v, want %d codes", q, codesOf(got), want)
		}
	}
	var c codeItem
	if r := get(t, h, m, codePath(list, "hello-1")); r.Status != http.StatusOK {
		t.Fatalf("GET by another case: %d %s", r.Status, r.Body)
	} else if r.JSON(t, &c); c.Code != "Hello-1" {
		t.Fatalf("GET by another case answered %q", c.Code)
	}
}

// TestPrefixSearchUsesTheLookupIndex checks that the prefix range the store uses is served by the
// unique lookup index (merchant_id, lookup, list_id), whose C collation makes a prefix a byte range,
// and that a wide prefix is read in index order under the LIMIT (no sort of every match).
func TestPrefixSearchUsesTheLookupIndex(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Index Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Big"})
	importByHand(t, h, m, list, "api_key:a", numbered("IDX-", 9999)...)
	ctx := context.Background()
	pool := h.App.DB.Pool()
	if _, err := pool.Exec(ctx, "ANALYZE codes"); err != nil {
		t.Fatal(err)
	}
	explain := func(prefix, after string) string {
		t.Helper()
		// The planner's choice depends on the statistics of the whole table, which other tests of the
		// package fill with their own codes (a small share of them here makes it guess a handful of
		// matches and prefer a bitmap scan and a sort). Bitmap scans are off so that the plan shows what
		// the index can serve: a prefix as a byte range, in order, under the LIMIT. A wrong collation
		// or index shape still shows a Sort or a Seq Scan.
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET LOCAL enable_bitmapscan = off"); err != nil {
			t.Fatal(err)
		}
		// The same predicate shape as store.SearchCodes with a prefix and a cursor.
		rows, err := tx.Query(ctx, `EXPLAIN SELECT seq, code FROM codes
			WHERE merchant_id = $1 AND list_id = $2 AND lookup >= $3 AND lookup < $4 AND lookup > $5 ORDER BY lookup LIMIT 51`,
			uuid.MustParse(m.ID), uuid.MustParse(list), prefix, prefix+"\U0010FFFF", after)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	for _, tc := range []struct{ prefix, after string }{{"IDX-12", "IDX-120"}, {"IDX-", ""}, {"I", "IDX-5000"}} {
		plan := explain(tc.prefix, tc.after)
		if !strings.Contains(plan, "codes_lookup_key") || !strings.Contains(plan, "lookup >= ") || strings.Contains(plan, "Seq Scan") {
			t.Fatalf("prefix %s is not an index range:\n%s", tc.prefix, plan)
		}
		if tc.prefix != "IDX-12" && strings.Contains(plan, "Sort") {
			t.Fatalf("wide prefix %s sorts every match:\n%s", tc.prefix, plan)
		}
	}
	if got := searchAll(t, h, m, list, url.Values{"q": {"IDX-12"}}, 500); len(got) != 100 {
		t.Fatalf("IDX-12: %d codes, want 100", len(got))
	}
}

func TestCodeDetailAndTimeline(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Timeline Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Timeline", "expires_at": "2040-01-01T00:00:00Z"})
	odd := []string{"A/B", "A+B", "50%OFF", "=1+2", "Q?x=1#y", "Ünï"}
	importID := importByHand(t, h, m, list, "api_key:importer", append([]string{"FIRST", "SECOND"}, odd...)...)

	// Codes with characters that URLs escape are found, whichever way the client escapes them.
	for _, code := range odd {
		for _, p := range []string{codePath(list, code), "/api/v1/lists/" + list + "/codes/" + url.QueryEscape(code)} {
			r := get(t, h, m, p)
			var c codeItem
			if r.Status == http.StatusOK {
				r.JSON(t, &c)
			}
			if r.Status != http.StatusOK || c.Code != code {
				t.Fatalf("GET %s: %d %s", p, r.Status, r.Body)
			}
		}
	}
	if r := get(t, h, m, "/api/v1/lists/"+list+"/codes/A+B"); r.Status != http.StatusOK || r.Map(t)["code"] != "A+B" {
		t.Fatalf("raw + in the path: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{codePath(list, "NOPE"), "/api/v1/lists/" + list + "/codes/%FF", "/api/v1/lists/" + list + "/codes/A%00B"} {
		if r := get(t, h, m, p); r.Status != http.StatusNotFound || r.ErrorCode() != "code_not_found" {
			t.Fatalf("GET %s: %d %s", p, r.Status, r.Body)
		}
	}

	// Imported, then delivered, then redeemed.
	first := handOut(t, h, m, list, map[string]any{"email": "ann@example.com"}, "launch")
	redeemByHand(t, h, m, list, first)
	var c codeItem
	get(t, h, m, codePath(list, first)).JSON(t, &c)
	if c.State != "redeemed" || c.Uses != 1 || c.Redeemed == nil || c.ExpiresAt == nil || *c.ExpiresAt != "2040-01-01T00:00:00Z" {
		t.Fatalf("redeemed code: %+v", c)
	}
	types := []string{}
	for _, e := range c.Timeline {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[imported delivered redeemed]" {
		t.Fatalf("timeline types %v", types)
	}
	imp, del, red := c.Timeline[0], c.Timeline[1], c.Timeline[2]
	if imp.Actor != "api_key:importer" || imp.Details["import_id"] != importID.String() || imp.Details["import"] != 1.0 {
		t.Fatalf("imported event: %+v", imp)
	}
	if !strings.HasPrefix(del.Actor, "api_key:") || del.Recipient["email"] != "ann@example.com" || del.Details["campaign"] != "launch" || del.Channel == "" {
		t.Fatalf("delivered event: %+v", del)
	}
	if !strings.HasPrefix(red.Actor, "api_key:") || !strings.Contains(red.Order, "till-7") {
		t.Fatalf("redeemed event: %+v", red)
	}
	for i := 1; i < len(c.Timeline); i++ {
		if c.Timeline[i].At < c.Timeline[i-1].At {
			t.Fatalf("timeline out of order: %+v", c.Timeline)
		}
	}

	// A code's own available_till counts when it is earlier than the list's expiry.
	other := "SECOND"
	if first == other {
		other = "FIRST"
	}
	if _, err := h.App.DB.Pool().Exec(context.Background(), `UPDATE codes SET available_till = '2030-06-01T12:00:00Z'
		WHERE merchant_id = $1 AND code = $2`, uuid.MustParse(m.ID), other); err != nil {
		t.Fatal(err)
	}
	get(t, h, m, codePath(list, other)).JSON(t, &c)
	if c.ExpiresAt == nil || *c.ExpiresAt != "2030-06-01T12:00:00Z" {
		t.Fatalf("expires_at of a code with an earlier till: %v", c.ExpiresAt)
	}

	// A fixed list's code was created with the list.
	fixed := h.CreateList(t, m, map[string]any{"name": "Fixed", "kind": "fixed", "fixed_code": "SAVE5"})
	get(t, h, m, codePath(fixed, "SAVE5")).JSON(t, &c)
	if len(c.Timeline) != 1 || c.Timeline[0].Type != "created" {
		t.Fatalf("fixed code timeline: %+v", c.Timeline)
	}
}

func TestCodeRemoval(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Removal Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Removal"})
	importByHand(t, h, m, list, "api_key:a", numbered("R-", 10)...)
	delivered := handOut(t, h, m, list, map[string]any{"email": "d@example.com"}, "")
	redeemed := handOut(t, h, m, list, map[string]any{"email": "r@example.com"}, "")
	redeemByHand(t, h, m, list, redeemed)
	// A code held by a storefront reservation is not removed either.
	if _, err := h.App.DB.Pool().Exec(context.Background(), `UPDATE codes SET hold_id = $2, held_until = now() + interval '1 hour'
		WHERE merchant_id = $1 AND code = 'R-0010'`, uuid.MustParse(m.ID), uuid.New()); err != nil {
		t.Fatal(err)
	}
	del := func(code string) apptest.Response {
		return h.Do(t, apptest.Request{Method: http.MethodDelete, Path: codePath(list, code), APIKey: m.APIKey})
	}

	if r := del("R-0005"); r.Status != http.StatusNoContent {
		t.Fatalf("remove an available code: %d %s", r.Status, r.Body)
	}
	want := map[string]float64{"total": 9, "available": 7, "delivered": 1, "redeemed": 1, "removed": 1}
	if c := listCounts(t, h, m, list); fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("counts after one removal: %v, want %v", c, want)
	}
	if r := del("R-0005"); r.Status != http.StatusNoContent {
		t.Fatalf("remove it again: %d %s", r.Status, r.Body)
	}
	if c := listCounts(t, h, m, list); fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("a second removal changed the counts: %v", c)
	}
	var c codeItem
	get(t, h, m, codePath(list, "R-0005")).JSON(t, &c)
	if c.State != "removed" || len(c.Timeline) != 2 || c.Timeline[1].Type != "removed" || !strings.HasPrefix(c.Timeline[1].Actor, "api_key:") {
		t.Fatalf("removed code: %+v", c)
	}
	for _, code := range []string{delivered, redeemed, "R-0010"} {
		if r := del(code); r.Status != http.StatusConflict || r.ErrorCode() != "code_in_use" {
			t.Fatalf("remove %s: %d %s", code, r.Status, r.Body)
		}
	}
	if r := del("NOPE"); r.Status != http.StatusNotFound || r.ErrorCode() != "code_not_found" {
		t.Fatalf("remove an unknown code: %d %s", r.Status, r.Body)
	}

	bulk := func(query string) apptest.Response {
		return h.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/v1/lists/" + list + "/codes" + query, APIKey: m.APIKey})
	}
	for _, q := range []string{"", "?state=delivered", "?state=all"} {
		if r := bulk(q); r.Status != http.StatusUnprocessableEntity || r.ErrorCode() != "invalid_field" {
			t.Fatalf("DELETE codes%s: %d %s", q, r.Status, r.Body)
		}
	}
	r := bulk("?state=available")
	if r.Status != http.StatusOK || r.Map(t)["removed"] != 6.0 {
		t.Fatalf("remove all available: %d %s", r.Status, r.Body)
	}
	want = map[string]float64{"total": 3, "available": 1, "delivered": 1, "redeemed": 1, "removed": 7}
	if c := listCounts(t, h, m, list); fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("counts after removing all available: %v, want %v", c, want)
	}
	if r := bulk("?state=available"); r.Status != http.StatusOK || r.Map(t)["removed"] != 0.0 {
		t.Fatalf("remove all available again: %d %s", r.Status, r.Body)
	}
	get(t, h, m, codePath(list, "R-0007")).JSON(t, &c)
	if c.State != "removed" || len(c.Timeline) != 2 || c.Timeline[1].Type != "removed" || !strings.HasPrefix(c.Timeline[1].Actor, "api_key:") ||
		c.Timeline[1].Details["bulk"] != true || c.Timeline[1].Details["removed"] != 6.0 {
		t.Fatalf("timeline of a bulk-removed code: %+v", c.Timeline)
	}
	// R-0005 went alone, before: its timeline has its own removal only.
	get(t, h, m, codePath(list, "R-0005")).JSON(t, &c)
	if len(c.Timeline) != 2 || c.Timeline[1].Details != nil {
		t.Fatalf("timeline of the singly removed code: %+v", c.Timeline)
	}
	if got := searchAll(t, h, m, list, url.Values{"state": {"removed"}}, 500); len(got) != 7 {
		t.Fatalf("%d removed codes found", len(got))
	}
	// A fixed list's code is the list.
	fixed := h.CreateList(t, m, map[string]any{"name": "Fixed", "kind": "fixed", "fixed_code": "SAVE5"})
	if r := h.Do(t, apptest.Request{Method: http.MethodDelete, Path: codePath(fixed, "SAVE5"), APIKey: m.APIKey}); r.Status != http.StatusConflict {
		t.Fatalf("remove a fixed list's code: %d %s", r.Status, r.Body)
	}
}

func TestRemoveAvailableInChunks(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Bulk Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Bulk"})
	codes := make([]string, 50_100)
	for i := range codes {
		codes[i] = fmt.Sprintf("B%06d", i)
	}
	importByHand(t, h, m, list, "api_key:a", codes...)
	handOut(t, h, m, list, map[string]any{"email": "x@example.com"}, "")
	start := time.Now()
	r := h.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/v1/lists/" + list + "/codes?state=available", APIKey: m.APIKey})
	if r.Status != http.StatusOK || r.Map(t)["removed"] != 50_099.0 {
		t.Fatalf("bulk removal: %d %s", r.Status, r.Body)
	}
	t.Logf("removed 50099 codes in %s", time.Since(start))
	want := map[string]float64{"total": 1, "available": 0, "delivered": 1, "redeemed": 0, "removed": 50_099}
	if c := listCounts(t, h, m, list); fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("counts: %v, want %v", c, want)
	}
	// One list-level event for the whole removal, its total kept across the chunks.
	var n int
	var details map[string]any
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*), max(details::text)::jsonb FROM code_events
		WHERE merchant_id = $1 AND list_id = $2`, uuid.MustParse(m.ID), uuid.MustParse(list)).Scan(&n, &details); err != nil {
		t.Fatal(err)
	}
	if n != 1 || details["removed"] != 50_099.0 {
		t.Fatalf("%d code events, details %v", n, details)
	}
	var c codeItem
	get(t, h, m, codePath(list, codes[len(codes)-1])).JSON(t, &c)
	if c.State != "removed" || len(c.Timeline) != 2 || c.Timeline[1].Type != "removed" {
		t.Fatalf("last code: %+v", c)
	}
}

func TestCodeExport(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Export Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Export", "expires_at": "2040-01-01T00:00:00Z"})
	importByHand(t, h, m, list, "api_key:a", "PLAIN-1", "=1+2", "+33", "-5", "@SUM", "PLAIN-2", "PLAIN-3", "a,b\"c")
	delivered := handOut(t, h, m, list, map[string]any{"email": "ann@example.com", "external_id": "=HYPERLINK(x)"}, "+promo")
	redeemed := handOut(t, h, m, list, map[string]any{"phone": "+15550100"}, "")
	redeemByHand(t, h, m, list, redeemed)
	ctx := context.Background()
	pool := h.App.DB.Pool()
	if _, err := pool.Exec(ctx, `UPDATE codes SET available_till = '2030-06-01T12:00:00.5Z' WHERE merchant_id = $1 AND code = 'PLAIN-3'`, uuid.MustParse(m.ID)); err != nil {
		t.Fatal(err)
	}
	if r := h.Do(t, apptest.Request{Method: http.MethodDelete, Path: codePath(list, "PLAIN-2"), APIKey: m.APIKey}); r.Status != http.StatusNoContent {
		t.Fatalf("remove: %d", r.Status)
	}
	export := func(state string) (map[string][]string, []string) {
		t.Helper()
		p := "/api/v1/lists/" + list + "/export"
		if state != "" {
			p += "?state=" + state
		}
		r := get(t, h, m, p)
		if !strings.HasPrefix(string(r.Body), core.ExportHeader+"\n") {
			t.Fatalf("export %s does not start with the header: %.200s", state, r.Body)
		}
		rows := readCSV(t, r)
		out := map[string][]string{}
		var order []string
		for _, row := range rows[1:] {
			if len(row) != 10 {
				t.Fatalf("row %v has %d columns", row, len(row))
			}
			out[row[0]] = row
			order = append(order, row[0])
		}
		return out, order
	}
	all, order := export("")
	if len(all) != 8 || fmt.Sprint(order) != fmt.Sprint([]string{"PLAIN-1", "'=1+2", "'+33", "'-5", "'@SUM", "PLAIN-2", "PLAIN-3", "a,b\"c"}) {
		t.Fatalf("export of all: %v", order)
	}
	if again, _ := export("all"); len(again) != 8 {
		t.Fatalf("state=all: %d rows", len(again))
	}
	// Formula guards on codes and on free text; state, times and uses as they are.
	d := all[guard(delivered)]
	if d[1] != "delivered" || d[2] != "'=HYPERLINK(x)" || d[3] != "ann@example.com" || d[5] != "'+promo" || d[9] != "0" {
		t.Fatalf("delivered row: %q", d)
	}
	if _, err := time.Parse(time.RFC3339, d[6]); err != nil || !strings.HasSuffix(d[6], "Z") || d[7] != "" || d[8] != "2040-01-01T00:00:00Z" {
		t.Fatalf("delivered row times: %q", d)
	}
	rd := all[guard(redeemed)]
	if rd[1] != "redeemed" || rd[4] != "'+15550100" || rd[5] != "" || rd[9] != "1" || rd[7] == "" {
		t.Fatalf("redeemed row: %q", rd)
	}
	if p := all["PLAIN-3"]; p[1] != "available" || p[8] != "2030-06-01T12:00:00Z" || p[6] != "" || p[2] != "" {
		t.Fatalf("row with an earlier till: %q", p)
	}
	if p := all["PLAIN-2"]; p[1] != "removed" {
		t.Fatalf("removed row: %q", p)
	}
	for state, want := range map[string][]string{
		"delivered":   {guard(delivered), guard(redeemed)},
		"undelivered": {"PLAIN-3", "a,b\"c"},
		"redeemed":    {guard(redeemed)},
	} {
		got, _ := export(state)
		if state == "undelivered" {
			// The first two codes were handed out; the rest of the list is still available.
			want = nil
			for code, row := range all {
				if row[1] == "available" {
					want = append(want, code)
				}
			}
		}
		keys := []string{}
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sort.Strings(want)
		if fmt.Sprint(keys) != fmt.Sprint(want) {
			t.Fatalf("export %s: %v, want %v", state, keys, want)
		}
	}
	r := get(t, h, m, "/api/v1/lists/"+list+"/export?state=bogus")
	if r.Status != http.StatusUnprocessableEntity || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("bad state: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
}

// guard is how the export writes a code.
func guard(code string) string {
	if strings.ContainsAny(code[:1], "=+-@") {
		return "'" + code
	}
	return code
}

func TestCodesAreScopedToTheMerchant(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	alice := h.NewMerchant(t, "Alice")
	bob := h.NewMerchant(t, "Bob")
	list := h.CreateList(t, alice, map[string]any{"name": "Alice's"})
	importByHand(t, h, alice, list, "api_key:a", "SECRET-1", "SECRET-2")
	base := "/api/v1/lists/" + list
	for _, req := range []apptest.Request{
		{Method: http.MethodGet, Path: base + "/codes"},
		{Method: http.MethodGet, Path: base + "/codes?q=SECRET"},
		{Method: http.MethodGet, Path: base + "/codes/SECRET-1"},
		{Method: http.MethodDelete, Path: base + "/codes/SECRET-1"},
		{Method: http.MethodDelete, Path: base + "/codes?state=available"},
		{Method: http.MethodGet, Path: base + "/export"},
		{Method: http.MethodGet, Path: base + "/export?state=all"},
	} {
		req.APIKey = bob.APIKey
		if r := h.Do(t, req); r.Status != http.StatusNotFound || r.ErrorCode() != "list_not_found" {
			t.Fatalf("%s %s by another merchant: %d %s", req.Method, req.Path, r.Status, r.Body)
		}
	}
	if c := listCounts(t, h, alice, list); c["available"] != 2 {
		t.Fatalf("alice's codes were touched: %v", c)
	}
	if r := get(t, h, alice, base+"/codes/SECRET-1"); r.Status != http.StatusOK {
		t.Fatalf("alice's own code: %d", r.Status)
	}
}
