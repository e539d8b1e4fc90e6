package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/store"
)

type batchItem struct {
	Number     int     `json:"number"`
	Count      int64   `json:"count"`
	Generated  int64   `json:"generated"`
	Prefix     string  `json:"prefix"`
	Length     int     `json:"length"`
	Charset    string  `json:"charset"`
	Separator  string  `json:"separator"`
	Status     string  `json:"status"`
	Error      string  `json:"error"`
	Exported   bool    `json:"exported"`
	CreatedBy  string  `json:"created_by"`
	CreatedAt  string  `json:"created_at"`
	FinishedAt *string `json:"finished_at"`
}

func batches(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string) map[int]batchItem {
	t.Helper()
	var p struct {
		Items []batchItem `json:"items"`
	}
	r := get(t, h, m, "/api/v1/lists/"+listID+"/batches")
	if r.Status != http.StatusOK {
		t.Fatalf("list batches: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &p)
	out := map[int]batchItem{}
	for _, b := range p.Items {
		out[b.Number] = b
	}
	return out
}

func waitBatch(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string, number int) batchItem {
	t.Helper()
	var b batchItem
	apptest.Eventually(t, 60*time.Second, fmt.Sprintf("batch %d to finish", number), func() bool {
		b = batches(t, h, m, listID)[number]
		return b.Status == "succeeded" || b.Status == "failed"
	})
	return b
}

func TestBatchGenerationEndToEnd(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Batch Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Generated"})
	path := "/api/v1/lists/" + list + "/batches"

	r := h.Admin(t, m, http.MethodPost, path, map[string]any{"count": 2500, "prefix": "SUMMER", "length": 6, "charset": "ABCDEFGH", "separator": "_"})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create batch: %d %s", r.Status, r.Body)
	}
	var first batchItem
	r.JSON(t, &first)
	if first.Number != 1 || first.Count != 2500 || first.Status != "queued" || first.Exported ||
		!strings.HasPrefix(first.CreatedBy, "api_key:") || first.CreatedAt == "" || first.Prefix != "SUMMER" || first.Separator != "_" {
		t.Fatalf("first batch: %s", r.Body)
	}
	r = h.Admin(t, m, http.MethodPost, path, map[string]any{"count": 700})
	var second batchItem
	r.JSON(t, &second)
	if r.Status != http.StatusAccepted || second.Number != 2 || second.Length != core.DefaultLength ||
		second.Charset != core.DefaultCharset || second.Separator != "-" || second.Prefix != "" {
		t.Fatalf("second batch with defaults: %d %s", r.Status, r.Body)
	}

	for _, tc := range []struct {
		number  int
		count   int
		pattern string
	}{
		{1, 2500, `^SUMMER_[A-H]{6}$`},
		{2, 700, `^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$`},
	} {
		b := waitBatch(t, h, m, list, tc.number)
		if b.Status != "succeeded" || b.Generated != int64(tc.count) || b.FinishedAt == nil || b.Exported {
			t.Fatalf("batch %d: %+v", tc.number, b)
		}
		rows := readCSV(t, get(t, h, m, fmt.Sprintf("%s/%d/codes.csv", path, tc.number)))
		if len(rows) != tc.count+1 || len(rows[0]) != 1 || rows[0][0] != "code" {
			t.Fatalf("batch %d CSV: %d rows, header %v", tc.number, len(rows), rows[0])
		}
		re := regexp.MustCompile(tc.pattern)
		seen := map[string]bool{}
		for _, row := range rows[1:] {
			if !re.MatchString(row[0]) || seen[row[0]] {
				t.Fatalf("batch %d: code %q is malformed or repeated", tc.number, row[0])
			}
			seen[row[0]] = true
		}
		if !batches(t, h, m, list)[tc.number].Exported {
			t.Fatalf("batch %d not marked exported after the download", tc.number)
		}
	}
	c := listCounts(t, h, m, list)
	if c["total"] != 3200 || c["available"] != 3200 {
		t.Fatalf("counts after two batches: %v", c)
	}
	// A code removed since is left out of its batch's CSV.
	gone := readCSV(t, get(t, h, m, path+"/2/codes.csv"))[1][0]
	if r := h.Do(t, apptest.Request{Method: http.MethodDelete, Path: codePath(list, gone), APIKey: m.APIKey}); r.Status != http.StatusNoContent {
		t.Fatalf("remove a generated code: %d %s", r.Status, r.Body)
	}
	if rows := readCSV(t, get(t, h, m, path+"/2/codes.csv")); len(rows) != 700 || rows[1][0] == gone {
		t.Fatalf("batch 2 CSV after a removal: %d rows", len(rows))
	}
	// Batches are numbered per list.
	other := h.CreateList(t, m, map[string]any{"name": "Other"})
	r = h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+other+"/batches", map[string]any{"count": 5})
	if r.Status != http.StatusAccepted || r.Map(t)["number"] != 1.0 {
		t.Fatalf("first batch of another list: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{path + "/3/codes.csv", path + "/0/codes.csv", path + "/x/codes.csv"} {
		if r := get(t, h, m, p); r.Status != http.StatusNotFound || r.ErrorCode() != "batch_not_found" {
			t.Fatalf("GET %s: %d %s", p, r.Status, r.Body)
		}
	}
	// A generated code's timeline starts with its batch.
	var code codeItem
	one := readCSV(t, get(t, h, m, path+"/1/codes.csv"))[1][0]
	get(t, h, m, codePath(list, one)).JSON(t, &code)
	if len(code.Timeline) == 0 || code.Timeline[0].Type != "generated" || code.Timeline[0].Actor != first.CreatedBy ||
		code.Timeline[0].Details["batch"] != 1.0 {
		t.Fatalf("generated code's timeline: %+v", code.Timeline)
	}
}

func TestBatchRequests(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Batch Rules")
	list := h.CreateList(t, m, map[string]any{"name": "Rules"})
	fixed := h.CreateList(t, m, map[string]any{"name": "Fixed", "kind": "fixed", "fixed_code": "ONE"})
	tests := []struct {
		name   string
		list   string
		body   any
		status int
		code   string
	}{
		{"no count", list, map[string]any{"prefix": "A"}, 422, "invalid_field"},
		{"zero count", list, map[string]any{"count": 0}, 422, "invalid_field"},
		{"space of 4 for 10", list, map[string]any{"count": 10, "length": 2, "charset": "AB"}, 422, "code_space_too_small"},
		{"zero length", list, map[string]any{"count": 10, "length": 0}, 422, "invalid_field"},
		{"charset repeats", list, map[string]any{"count": 10, "charset": "AAB"}, 422, "invalid_field"},
		{"prefix with space", list, map[string]any{"count": 10, "prefix": "A B"}, 422, "invalid_field"},
		{"string count", list, map[string]any{"count": "10"}, 422, "invalid_field"},
		{"not JSON", list, "{", 422, "invalid_field"},
		{"fixed list", fixed, map[string]any{"count": 10}, 409, "fixed_list"},
		{"unknown list", uuid.NewString(), map[string]any{"count": 10}, 404, "list_not_found"},
		{"ok without separator", list, map[string]any{"count": 10, "prefix": "P", "separator": ""}, 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+tc.list+"/batches", tc.body)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
	// Without a worker the batch stays queued, and its CSV is not ready.
	r := get(t, h, m, "/api/v1/lists/"+list+"/batches/1/codes.csv")
	if r.Status != http.StatusConflict || r.ErrorCode() != "batch_not_ready" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("CSV of a queued batch: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if b := batches(t, h, m, list)[1]; b.Status != "queued" || b.Separator != "" || b.Prefix != "P" {
		t.Fatalf("queued batch: %+v", b)
	}
	// Paging through batches.
	for range 4 {
		h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/batches", map[string]any{"count": 1})
	}
	var numbers []int
	cursor := ""
	for {
		var p struct {
			Items      []batchItem `json:"items"`
			NextCursor string      `json:"next_cursor"`
		}
		get(t, h, m, "/api/v1/lists/"+list+"/batches?limit=2&cursor="+cursor).JSON(t, &p)
		for _, b := range p.Items {
			numbers = append(numbers, b.Number)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if fmt.Sprint(numbers) != "[1 2 3 4 5]" {
		t.Fatalf("paged batch numbers %v", numbers)
	}
	// Another merchant sees none of it.
	bob := h.NewMerchant(t, "Bob")
	for _, r := range []apptest.Response{
		h.Admin(t, bob, http.MethodPost, "/api/v1/lists/"+list+"/batches", map[string]any{"count": 1}),
		get(t, h, bob, "/api/v1/lists/"+list+"/batches"),
		get(t, h, bob, "/api/v1/lists/"+list+"/batches/1/codes.csv"),
	} {
		if r.Status != http.StatusNotFound || r.ErrorCode() != "list_not_found" {
			t.Fatalf("another merchant: %d %s", r.Status, r.Body)
		}
	}
}

// cancelAfter saves chunks through the real store and cancels the run after n of them, as a
// worker shutting down would.
type cancelAfter struct {
	*store.DB
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) AddBatchCodes(ctx context.Context, list core.List, number int, codes []string) (int64, error) {
	g, err := c.DB.AddBatchCodes(ctx, list, number, codes)
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return g, err
}

func TestBatchRunnerResumesAndAvoidsImportedCodes(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Resume Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Tiny space"})
	mid, lid := uuid.MustParse(m.ID), uuid.MustParse(list)
	// A space of 2^14 = 16384 codes: 100 imported + 60 generated pass the 100x rule (16000).
	imported := []string{strings.Repeat("A", 14)}
	for i := 1; len(imported) < 100; i++ {
		imported = append(imported, strings.NewReplacer("0", "A", "1", "B").Replace(fmt.Sprintf("%014b", i*97)))
	}
	importByHand(t, h, m, list, "api_key:importer", imported...)
	r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/batches", map[string]any{"count": 60, "length": 14, "charset": "AB"})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create batch: %d %s", r.Status, r.Body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runner := core.NewBatchRunner(h.App.DB, &cancelAfter{DB: h.App.DB, n: 2, cancel: cancel}, dbtest.Logger(t))
	runner.Chunk = 10
	// The first 5 draws are all A…A, the imported code: a chunk that collides for sure, inside
	// itself and with the list.
	runner.Rand = io.MultiReader(bytes.NewReader(make([]byte, 5*14)), rand.Reader)
	if err := runner.Run(ctx, mid, lid, 1); err != context.Canceled {
		t.Fatalf("interrupted run: %v", err)
	}
	b := batches(t, h, m, list)[1]
	if b.Status != "running" || b.Generated < 1 || b.Generated > 15 {
		t.Fatalf("after the interruption: %+v", b)
	}
	var inTable int
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM codes WHERE merchant_id = $1 AND list_id = $2 AND batch_no = 1`,
		mid, lid).Scan(&inTable); err != nil || int64(inTable) != b.Generated {
		t.Fatalf("%d codes in the table, checkpoint says %d (%v)", inTable, b.Generated, err)
	}

	runner = core.NewBatchRunner(h.App.DB, h.App.DB, dbtest.Logger(t))
	runner.Chunk = 10
	if err := runner.Run(context.Background(), mid, lid, 1); err != nil {
		t.Fatal(err)
	}
	b = batches(t, h, m, list)[1]
	if b.Status != "succeeded" || b.Generated != 60 {
		t.Fatalf("after the resume: %+v", b)
	}
	rows := readCSV(t, get(t, h, m, "/api/v1/lists/"+list+"/batches/1/codes.csv"))
	isImported := map[string]bool{}
	for _, c := range imported {
		isImported[c] = true
	}
	seen := map[string]bool{}
	for _, row := range rows[1:] {
		if isImported[row[0]] || seen[row[0]] || len(row[0]) != 14 || strings.Trim(row[0], "AB") != "" {
			t.Fatalf("generated code %q repeats an imported or generated code, or breaks the spec", row[0])
		}
		seen[row[0]] = true
	}
	if len(seen) != 60 {
		t.Fatalf("%d generated codes, want exactly 60", len(seen))
	}
	if c := listCounts(t, h, m, list); c["total"] != 160 || c["available"] != 160 {
		t.Fatalf("counts: %v", c)
	}
	// The imported A…A is still the import's.
	var code codeItem
	get(t, h, m, codePath(list, imported[0])).JSON(t, &code)
	if len(code.Timeline) != 1 || code.Timeline[0].Type != "imported" || code.Timeline[0].Actor != "api_key:importer" {
		t.Fatalf("imported code's timeline: %+v", code.Timeline)
	}
	// Running a finished batch again changes nothing.
	if err := runner.Run(context.Background(), mid, lid, 1); err != nil {
		t.Fatal(err)
	}
	if c := listCounts(t, h, m, list); c["total"] != 160 {
		t.Fatalf("a second run added codes: %v", c)
	}
}
