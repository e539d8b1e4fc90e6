package api_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/worker"
)

// importReport is the contract's import answer.
type importReport struct {
	ID               string          `json:"id"`
	Number           int             `json:"number"`
	Status           string          `json:"status"`
	Format           string          `json:"format"`
	Filename         string          `json:"filename"`
	Rows             int64           `json:"rows"`
	Imported         int64           `json:"imported"`
	DuplicatesInFile int64           `json:"duplicates_in_file"`
	DuplicatesInList int64           `json:"duplicates_in_list"`
	Invalid          int64           `json:"invalid"`
	Errors           []core.RowError `json:"errors"`
	Error            string          `json:"error"`
	ListTotal        int64           `json:"list_total"`
	Progress         float64         `json:"progress"`
	CreatedAt        string          `json:"created_at"`
	FinishedAt       *string         `json:"finished_at"`
}

// counts is the report's numbers, for comparing in one go.
func (r importReport) counts() [5]int64 {
	return [5]int64{r.Rows, r.Imported, r.DuplicatesInFile, r.DuplicatesInList, r.Invalid}
}

// multipartFile builds a multipart/form-data body with one file field (and a stray field first,
// which the gateway must skip).
func multipartFile(t testing.TB, field, filename string, content []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	fw, err := w.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// postImport uploads a file as multipart/form-data.
func postImport(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, filename, content string) apptest.Response {
	t.Helper()
	body, ct := multipartFile(t, "file", filename, []byte(content))
	return h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + listID + "/imports",
		Body: body, ContentType: ct, APIKey: m.APIKey})
}

// postRaw uploads a body with its own content type.
func postRaw(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, contentType, content string) apptest.Response {
	t.Helper()
	return h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + listID + "/imports",
		Body: strings.NewReader(content), ContentType: contentType, APIKey: m.APIKey})
}

// accepted checks a 202 answer and returns its import.
func accepted(t testing.TB, r apptest.Response) importReport {
	t.Helper()
	if r.Status != http.StatusAccepted {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	var rep importReport
	r.JSON(t, &rep)
	if rep.Status != "queued" || rep.ID == "" || rep.Errors == nil {
		t.Fatalf("fresh import: %s", r.Body)
	}
	return rep
}

// waitImport polls the import until it ends.
func waitImport(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, importID string) importReport {
	t.Helper()
	var rep importReport
	apptest.Eventually(t, time.Minute, "the import to end", func() bool {
		r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports/"+importID, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("get import: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &rep)
		return rep.Status == "succeeded" || rep.Status == "failed"
	})
	return rep
}

// importFile uploads and waits for the end.
func importFile(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, filename, content string) importReport {
	t.Helper()
	return waitImport(t, h, m, listID, accepted(t, postImport(t, h, m, listID, filename, content)).ID)
}

// listCodes returns the list's codes from the database, in position order.
func listCodes(t testing.TB, h *apptest.Harness, listID string) []string {
	t.Helper()
	rows, err := h.App.DB.Pool().Query(context.Background(), `SELECT code FROM codes WHERE list_id = $1 ORDER BY seq`, listID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func chunksLeft(t testing.TB, h *apptest.Harness, importID string) int {
	t.Helper()
	var n int
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM import_chunks WHERE import_id = $1`, importID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// importEvents lists the domain events of type typ recorded for the list's imports, as
// "import_id:imported", oldest first.
func importEvents(t testing.TB, h *apptest.Harness, listID, typ string) []string {
	t.Helper()
	rows, err := h.App.DB.Pool().Query(context.Background(), `SELECT (payload->>'import_id') || ':' || (payload->>'imported')
		FROM domain_events WHERE list_id = $1 AND type = $2 ORDER BY id`, listID, typ)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestImportCSVReport(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Import Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Spring"})

	first := importFile(t, h, m, listID, "codes.csv", "Code,Name\nA1,x\nA2,y\nA1,dup\nbad code,z\nA3,\n,empty cell\n\nA\x01B,ctrl\n")
	if first.Status != "succeeded" || first.Format != "csv" || first.Filename != "codes.csv" {
		t.Fatalf("first import: %+v", first)
	}
	if got, want := first.counts(), [5]int64{6, 3, 1, 0, 2}; got != want {
		t.Fatalf("first report rows/imported/dup_file/dup_list/invalid = %v, want %v", got, want)
	}
	wantErrs := []core.RowError{
		{Line: 4, Code: "A1", Reason: "duplicate_in_file"},
		{Line: 5, Code: "bad code", Reason: "invalid_code"},
		{Line: 9, Code: "A\uFFFDB", Reason: "invalid_code"},
	}
	if !reflect.DeepEqual(first.Errors, wantErrs) {
		t.Fatalf("first errors %+v, want %+v", first.Errors, wantErrs)
	}
	if first.ListTotal != 3 || first.Progress != 1 || first.FinishedAt == nil {
		t.Fatalf("first import totals: %+v", first)
	}

	second := importFile(t, h, m, listID, "more.csv", "code\nA2\nA4\nA4\nA1\n")
	if got, want := second.counts(), [5]int64{4, 1, 1, 2, 0}; got != want {
		t.Fatalf("second report = %v, want %v", got, want)
	}
	wantErrs = []core.RowError{
		{Line: 2, Code: "A2", Reason: "duplicate_in_list"},
		{Line: 4, Code: "A4", Reason: "duplicate_in_file"},
		{Line: 5, Code: "A1", Reason: "duplicate_in_list"},
	}
	if !reflect.DeepEqual(second.Errors, wantErrs) || second.ListTotal != 4 || second.Number != first.Number+1 {
		t.Fatalf("second import: %+v", second)
	}

	if got := listCodes(t, h, listID); !reflect.DeepEqual(got, []string{"A1", "A2", "A3", "A4"}) {
		t.Fatalf("codes in the list: %v", got)
	}
	l := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID, nil).Map(t)
	if c := l["counts"].(map[string]any); c["total"] != 4.0 || c["available"] != 4.0 || l["status"] != "active" {
		t.Fatalf("list after imports: %v", l)
	}
	if n := chunksLeft(t, h, first.ID) + chunksLeft(t, h, second.ID); n != 0 {
		t.Fatalf("%d file pieces left after the imports ended", n)
	}
	if got := importEvents(t, h, listID, "import.succeeded"); !reflect.DeepEqual(got, []string{first.ID + ":3", second.ID + ":1"}) {
		t.Fatalf("import.succeeded events (import:imported) %v", got)
	}

	// Newest first, paged.
	var page struct {
		Items      []importReport `json:"items"`
		NextCursor string         `json:"next_cursor"`
	}
	r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports?limit=1", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list imports: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != second.ID || page.NextCursor == "" {
		t.Fatalf("first page: %+v", page)
	}
	h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports?limit=1&cursor="+page.NextCursor, nil).JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != first.ID || page.NextCursor != "" || page.Items[0].counts() != first.counts() {
		t.Fatalf("second page: %+v", page)
	}
}

func TestImportExcelCSVWithWindows(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Excel Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Excel"})
	file := "\xEF\xBB\xBFsep=;\r\n" +
		"Name;CODE;Available_From;available_till;issue_start;Issue_End\r\n" +
		"\"Doe; Jane\";\"X;1\";2030-01-01;2030-12-31T23:59:59Z;2030-01-01 08:00:00;\r\n" +
		"\"multi\r\nline\";X2;;;;\r\n" +
		"q;'=X3;;;;\r\n" +
		"r;X4;soon;;;\r\n"
	rep := importFile(t, h, m, listID, "Export.CSV", file)
	if got, want := rep.counts(), [5]int64{4, 3, 0, 0, 1}; rep.Status != "succeeded" || got != want {
		t.Fatalf("report %+v, want counts %v", rep, want)
	}
	if want := []core.RowError{{Line: 7, Code: "X4", Reason: "invalid_date"}}; !reflect.DeepEqual(rep.Errors, want) {
		t.Fatalf("errors %+v, want %+v", rep.Errors, want)
	}
	if got := listCodes(t, h, listID); !reflect.DeepEqual(got, []string{"X;1", "X2", "=X3"}) {
		t.Fatalf("codes: %q", got)
	}
	var from, till, start time.Time
	var end *time.Time
	var importNo int
	err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT available_from, available_till, issue_start, issue_end, import_no
		FROM codes WHERE list_id = $1 AND code = 'X;1'`, listID).Scan(&from, &till, &start, &end, &importNo)
	if err != nil {
		t.Fatal(err)
	}
	want := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	if !from.Equal(want("2030-01-01T00:00:00Z")) || !till.Equal(want("2030-12-31T23:59:59Z")) ||
		!start.Equal(want("2030-01-01T08:00:00Z")) || end != nil || importNo != rep.Number {
		t.Fatalf("windows %v %v %v %v import %d", from, till, start, end, importNo)
	}
}

func TestImportTextAndRawBodies(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Text Shop")
	tests := []struct {
		name   string
		post   func(listID string) apptest.Response
		format string
		counts [5]int64
		codes  []string
	}{
		{"txt file", func(id string) apptest.Response {
			return postImport(t, h, m, id, "codes.TXT", "\xEF\xBB\xBFT1\r\nT2\r\n\r\n T3 \r\nT 4\r\nT1\r\n")
		}, "txt", [5]int64{5, 3, 1, 0, 1}, []string{"T1", "T2", "T3"}},
		{"pasted text", func(id string) apptest.Response {
			return postRaw(t, h, m, id, "text/plain; charset=utf-8", "P1\nP2\n\nP2\nCode\n")
		}, "txt", [5]int64{4, 3, 1, 0, 0}, []string{"P1", "P2", "Code"}},
		{"text/csv body", func(id string) apptest.Response {
			return postRaw(t, h, m, id, "text/csv", "id,code\n1,C1\n2,C2\n")
		}, "csv", [5]int64{2, 2, 0, 0, 0}, []string{"C1", "C2"}},
		{"csv file without extension", func(id string) apptest.Response {
			return postImport(t, h, m, id, "codes", "Code\nF1\n")
		}, "csv", [5]int64{1, 1, 0, 0, 0}, []string{"F1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			listID := h.CreateList(t, m, map[string]any{"name": tc.name})
			rep := waitImport(t, h, m, listID, accepted(t, tc.post(listID)).ID)
			if rep.Status != "succeeded" || rep.Format != tc.format || rep.counts() != tc.counts {
				t.Fatalf("report %+v, want format %s counts %v", rep, tc.format, tc.counts)
			}
			if got := listCodes(t, h, listID); !reflect.DeepEqual(got, tc.codes) {
				t.Fatalf("codes %q, want %q", got, tc.codes)
			}
		})
	}
}

func TestImportWithoutCodeColumnFails(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "No Column Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "No column"})
	for name, file := range map[string]string{"other columns": "Name,Voucher\na,B1\n", "empty file": ""} {
		t.Run(name, func(t *testing.T) {
			rep := importFile(t, h, m, listID, "codes.csv", file)
			if rep.Status != "failed" || !strings.Contains(rep.Error, "no Code column") || rep.Rows != 0 || rep.FinishedAt == nil {
				t.Fatalf("import of a file without a Code column: %+v", rep)
			}
			if n := chunksLeft(t, h, rep.ID); n != 0 {
				t.Fatalf("%d pieces left", n)
			}
		})
	}
	if got := listCodes(t, h, listID); len(got) != 0 {
		t.Fatalf("codes imported: %v", got)
	}
	if got := importEvents(t, h, listID, "import.failed"); len(got) != 2 {
		t.Fatalf("import.failed events: %v", got)
	}
}

func TestImportOverTheLimitAnswers413(t *testing.T) {
	t.Parallel()
	const limit = 16 << 10
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) { c.MaxUploadBytes = limit }})
	m := h.NewMerchant(t, "Big Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Big"})
	big := "Code\n" + strings.Repeat("ABCDEFGHIJ\n", 4000) // 44 KB
	for name, r := range map[string]apptest.Response{
		"multipart": postImport(t, h, m, listID, "big.csv", big),
		"text/csv":  postRaw(t, h, m, listID, "text/csv", big),
	} {
		if r.Status != http.StatusRequestEntityTooLarge || r.ErrorCode() != "upload_too_large" {
			t.Fatalf("%s over the limit: %d %s", name, r.Status, r.Body)
		}
	}
	if imports, pieces := importsLeft(t, h, listID); imports != 0 || pieces != 0 {
		t.Fatalf("after refused uploads: %d imports, %d pieces kept", imports, pieces)
	}
	// Just under the limit is fine.
	rep := importFile(t, h, m, listID, "ok.csv", "Code\n"+strings.Repeat("x", limit-len("Code\n")))
	if rep.Status != "succeeded" || rep.Invalid != 1 {
		t.Fatalf("upload at the limit: %+v", rep)
	}
	if got := listCodes(t, h, listID); len(got) != 0 {
		t.Fatalf("codes imported from refused uploads: %d", len(got))
	}
}

// importsLeft counts the list's imports and the stored pieces of every upload.
func importsLeft(t testing.TB, h *apptest.Harness, listID string) (imports, pieces int) {
	t.Helper()
	// Pieces are counted for the list's merchant: other tests' imports keep theirs for a while.
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*), (SELECT count(*) FROM import_chunks c
		WHERE c.merchant_id = (SELECT merchant_id FROM code_lists WHERE id = $1))
		FROM imports WHERE list_id = $1`, listID).Scan(&imports, &pieces); err != nil {
		t.Fatal(err)
	}
	return imports, pieces
}

// sendCut sends an import request whose Content-Length promises more than the body that follows,
// then stops sending, as a client whose connection drops mid-upload; it returns the answer.
func sendCut(t *testing.T, h *apptest.Harness, m apptest.Merchant, listID, contentType string, body []byte, promised int) apptest.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST /api/v1/lists/%s/imports HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: %s\r\nContent-Length: %d\r\n\r\n", listID, m.APIKey, contentType, promised)
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestTruncatedUploadLeavesNoImport: an upload that breaks off is refused with 400 and leaves no
// import (and no stored piece) behind; the next import takes the number the refused one had.
func TestTruncatedUploadLeavesNoImport(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Cut Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Cut"})
	csvBody := []byte("Code\n" + strings.Repeat("CUTCODE01\n", 200))
	whole, ct := multipartFile(t, "file", "codes.csv", csvBody)
	wholeBytes, _ := io.ReadAll(whole)
	tests := []struct {
		name string
		send func(t *testing.T) apptest.Response
	}{
		{"text/csv shorter than its Content-Length", func(t *testing.T) apptest.Response {
			return sendCut(t, h, m, listID, "text/csv", csvBody, len(csvBody)+5000)
		}},
		{"multipart shorter than its Content-Length", func(t *testing.T) apptest.Response {
			return sendCut(t, h, m, listID, ct, wholeBytes[:len(wholeBytes)/2], len(wholeBytes))
		}},
		{"multipart without its closing boundary", func(t *testing.T) apptest.Response {
			cut := bytes.TrimSuffix(wholeBytes, []byte("--\r\n"))
			cut = cut[:bytes.LastIndex(cut, []byte("\r\n--"))]
			return h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + listID + "/imports",
				Body: bytes.NewReader(cut), ContentType: ct, APIKey: m.APIKey})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send(t)
			if r.Status != http.StatusBadRequest || r.ErrorCode() != "malformed_request" {
				t.Fatalf("cut upload: %d %s, want 400 malformed_request", r.Status, r.Body)
			}
			if imports, pieces := importsLeft(t, h, listID); imports != 0 || pieces != 0 {
				t.Fatalf("a cut upload left %d imports and %d stored pieces", imports, pieces)
			}
		})
	}
	if r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports", nil); r.Status != 200 || strings.Contains(string(r.Body), `"id"`) {
		t.Fatalf("imports after cut uploads: %d %s", r.Status, r.Body)
	}
	rep := importFile(t, h, m, listID, "codes.csv", string(csvBody))
	if rep.Status != "succeeded" || rep.Number != 1 || rep.Imported != 1 {
		t.Fatalf("the whole upload after the cut ones: %+v", rep)
	}
}

func TestImportRequestErrors(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	alice := h.NewMerchant(t, "Alice Imports")
	bob := h.NewMerchant(t, "Bob Imports")
	listID := h.CreateList(t, alice, map[string]any{"name": "Alice's"})
	fixed := h.CreateList(t, alice, map[string]any{"name": "Fixed", "kind": "fixed", "fixed_code": "SAVE"})
	noFile, noFileCT := multipartFile(t, "upload", "codes.csv", []byte("Code\nA\n"))
	tests := []struct {
		name   string
		req    apptest.Request
		status int
		code   string
	}{
		{"json body", apptest.Request{JSON: map[string]any{"codes": []string{"A"}}}, 400, "unsupported_media_type"},
		{"no content type", apptest.Request{Body: strings.NewReader("A\n")}, 400, "unsupported_media_type"},
		{"multipart without a file field", apptest.Request{Body: noFile, ContentType: noFileCT}, 400, "malformed_request"},
		{"broken multipart", apptest.Request{Body: strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nA\n"),
			ContentType: "multipart/form-data; boundary=x"}, 400, "malformed_request"},
		{"another merchant's list", apptest.Request{Body: strings.NewReader("A\n"), ContentType: "text/plain", APIKey: bob.APIKey}, 404, "list_not_found"},
		{"no such list", apptest.Request{Path: "/api/v1/lists/" + uuid.NewString() + "/imports", Body: strings.NewReader("A\n"), ContentType: "text/plain"}, 404, "list_not_found"},
		{"fixed list", apptest.Request{Path: "/api/v1/lists/" + fixed + "/imports", Body: strings.NewReader("A\n"), ContentType: "text/plain"}, 409, "fixed_list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Method = http.MethodPost
			if req.Path == "" {
				req.Path = "/api/v1/lists/" + listID + "/imports"
			}
			if req.APIKey == "" {
				req.APIKey = alice.APIKey
			}
			r := h.Do(t, req)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
	// Bob sees none of Alice's imports.
	imp := accepted(t, postRaw(t, h, alice, listID, "text/plain", "A1\n"))
	for _, path := range []string{"/imports/" + imp.ID, "/imports"} {
		if r := h.Admin(t, bob, http.MethodGet, "/api/v1/lists/"+listID+path, nil); r.Status != 404 {
			t.Fatalf("bob reads %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := h.Admin(t, alice, http.MethodGet, "/api/v1/lists/"+listID+"/imports/"+uuid.NewString(), nil); r.Status != 404 || r.ErrorCode() != "import_not_found" {
		t.Fatalf("unknown import: %d %s", r.Status, r.Body)
	}
	var other int
	_ = h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM imports WHERE merchant_id = $1`, bob.ID).Scan(&other)
	if other != 0 {
		t.Fatalf("bob's refused uploads left %d imports", other)
	}
}

func TestImportCaseInsensitiveList(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	m := h.NewMerchant(t, "Case Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Any case", "case_insensitive": true})
	first := importFile(t, h, m, listID, "a.txt", "abc\nABC\nAbc2\n")
	if got, want := first.counts(), [5]int64{3, 2, 1, 0, 0}; got != want {
		t.Fatalf("first report %v, want %v", got, want)
	}
	second := importFile(t, h, m, listID, "b.txt", "ABC2\nnew\n")
	if got, want := second.counts(), [5]int64{2, 1, 0, 1, 0}; got != want || second.Errors[0].Code != "ABC2" {
		t.Fatalf("second report %+v, want %v", second, want)
	}
	if got := listCodes(t, h, listID); !reflect.DeepEqual(got, []string{"abc", "Abc2", "new"}) {
		t.Fatalf("codes %q", got)
	}
}

// crashingStore stands for a worker that dies: its crashAt-th batch never returns, either before
// the batch commits or just after (commit), as a kill would leave it.
type crashingStore struct {
	core.ImportRunStore
	saves, crashAt int
	commit         bool
}

var errKilled = errors.New("worker killed")

func (s *crashingStore) SaveImportBatch(ctx context.Context, imp core.Import, list core.List, b core.ImportBatch) (core.Import, error) {
	s.saves++
	if s.saves == s.crashAt {
		if s.commit {
			if _, err := s.ImportRunStore.SaveImportBatch(ctx, imp, list, b); err != nil {
				return core.Import{}, err
			}
		}
		return core.Import{}, errKilled
	}
	return s.ImportRunStore.SaveImportBatch(ctx, imp, list, b)
}

// crashFile is a CSV of n rows with in-file duplicates, invalid rows and codes of an earlier import,
// and the report it must give.
func crashFile(n int, earlier map[string]bool) (file string, want [5]int64, wantErrs []core.RowError, unique []string) {
	var sb strings.Builder
	sb.WriteString("Code,Seq\r\n")
	seen := map[string]bool{}
	want[0] = int64(n)
	for i := 0; i < n; i++ {
		code := fmt.Sprintf("CR-%06d", i)
		switch {
		case i%101 == 50:
			code = fmt.Sprintf("bad %d", i)
		case i%97 == 13:
			code = fmt.Sprintf("CR-%06d", i/2) // an earlier row of the file
		case i%89 == 7:
			code = fmt.Sprintf("OLD-%04d", i%300) // from the earlier import
		}
		fmt.Fprintf(&sb, "%s,%d\r\n", code, i)
		line := int64(i + 2)
		var reason string
		switch {
		case strings.HasPrefix(code, "bad"):
			want[4]++
			reason = core.ReasonInvalidCode
		case earlier[code]:
			want[3]++
			reason = core.ReasonDuplicateInList
		case seen[code]:
			want[2]++
			reason = core.ReasonDuplicateInFile
		default:
			want[1]++
			seen[code] = true
			unique = append(unique, code)
		}
		if reason != "" && len(wantErrs) < core.MaxImportErrors {
			wantErrs = append(wantErrs, core.RowError{Line: line, Code: code, Reason: reason})
		}
	}
	return sb.String(), want, wantErrs, unique
}

// queueImport stores an upload through the API without a worker and returns its id.
func queueImport(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, file string) uuid.UUID {
	t.Helper()
	return uuid.MustParse(accepted(t, postImport(t, h, m, listID, "crash.csv", file)).ID)
}

// checkExact compares the import's report and the list's codes with what the file holds.
func checkExact(t *testing.T, h *apptest.Harness, m apptest.Merchant, listID string, imp uuid.UUID, earlier []string,
	want [5]int64, wantErrs []core.RowError, unique []string) {
	t.Helper()
	var rep importReport
	h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports/"+imp.String(), nil).JSON(t, &rep)
	if rep.Status != "succeeded" || rep.counts() != want {
		t.Fatalf("report %v (%s), want %v", rep.counts(), rep.Status, want)
	}
	if !reflect.DeepEqual(rep.Errors, wantErrs) {
		t.Fatalf("errors differ: got %d, want %d; first got %+v want %+v", len(rep.Errors), len(wantErrs), rep.Errors[:3], wantErrs[:3])
	}
	got := listCodes(t, h, listID)
	wantCodes := append(append([]string{}, earlier...), unique...)
	if !reflect.DeepEqual(got, wantCodes) {
		t.Fatalf("the list holds %d codes, want %d (no code twice, none lost, in file order)", len(got), len(wantCodes))
	}
	if rep.ListTotal != int64(len(wantCodes)) {
		t.Fatalf("list_total %d, want %d", rep.ListTotal, len(wantCodes))
	}
	l := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID, nil).Map(t)
	if c := l["counts"].(map[string]any); c["available"] != float64(len(wantCodes)) {
		t.Fatalf("list counts %v, want %d available", c, len(wantCodes))
	}
}

func TestImportResumesAfterACrash(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{}) // no worker: the test runs the import itself
	m := h.NewMerchant(t, "Crash Shop")
	ctx := context.Background()
	mid := uuid.MustParse(m.ID)

	setup := func(t *testing.T) (string, []string, map[string]bool) {
		listID := h.CreateList(t, m, map[string]any{"name": t.Name()})
		earlier := make([]string, 300)
		set := map[string]bool{}
		for i := range earlier {
			earlier[i] = fmt.Sprintf("OLD-%04d", i)
			set[earlier[i]] = true
		}
		if err := h.App.Importer.Run(ctx, mid, queueImport(t, h, m, listID, "Code\n"+strings.Join(earlier, "\n"))); err != nil {
			t.Fatal(err)
		}
		return listID, earlier, set
	}

	t.Run("killed before and after a commit", func(t *testing.T) {
		listID, earlier, set := setup(t)
		file, want, wantErrs, unique := crashFile(50_000, set)
		imp := queueImport(t, h, m, listID, file)
		runner := func(s core.ImportRunStore) *core.ImportRunner {
			r := core.NewImportRunner(h.App.DB, s, h.App.Log)
			r.BatchSize = 1000
			return r
		}
		if err := runner(&crashingStore{ImportRunStore: h.App.DB, crashAt: 7}).Run(ctx, mid, imp); !errors.Is(err, errKilled) {
			t.Fatalf("first run: %v", err)
		}
		var rep importReport
		h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports/"+imp.String(), nil).JSON(t, &rep)
		if rep.Status != "running" || rep.Rows != 6000 || rep.Progress <= 0 || rep.Progress >= 1 {
			t.Fatalf("after a kill at the 7th batch: %+v", rep)
		}
		if err := runner(&crashingStore{ImportRunStore: h.App.DB, crashAt: 5, commit: true}).Run(ctx, mid, imp); !errors.Is(err, errKilled) {
			t.Fatalf("second run: %v", err)
		}
		if err := runner(h.App.DB).Run(ctx, mid, imp); err != nil {
			t.Fatalf("last run: %v", err)
		}
		checkExact(t, h, m, listID, imp, earlier, want, wantErrs, unique)
		// A finished import runs again as a no-op.
		if err := runner(h.App.DB).Run(ctx, mid, imp); err != nil {
			t.Fatal(err)
		}
		checkExact(t, h, m, listID, imp, earlier, want, wantErrs, unique)
	})

	t.Run("killed at random moments", func(t *testing.T) {
		listID, earlier, set := setup(t)
		file, want, wantErrs, unique := crashFile(20_000, set)
		imp := queueImport(t, h, m, listID, file)
		r := core.NewImportRunner(h.App.DB, h.App.DB, h.App.Log)
		r.BatchSize = 500
		rng := rand.New(rand.NewPCG(1, 2))
		kills := 0
		for attempt := 0; ; attempt++ {
			if attempt > 200 {
				t.Fatal("the import never finished")
			}
			// Kills come at random moments; later ones come later, so that on a slow machine the
			// import still gets through.
			runCtx, cancel := context.WithTimeout(ctx, time.Duration(10+rng.IntN(100)+10*attempt)*time.Millisecond)
			err := r.Run(runCtx, mid, imp)
			cancel()
			if err == nil {
				break
			}
			kills++
		}
		t.Logf("the import was killed %d times before it finished", kills)
		checkExact(t, h, m, listID, imp, earlier, want, wantErrs, unique)
	})

	t.Run("two runs at once", func(t *testing.T) {
		listID, earlier, set := setup(t)
		file, want, wantErrs, unique := crashFile(20_000, set)
		imp := queueImport(t, h, m, listID, file)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				r := core.NewImportRunner(h.App.DB, h.App.DB, h.App.Log)
				r.BatchSize = 700
				for {
					err := r.Run(ctx, mid, imp)
					if !errors.Is(err, core.ErrImportMoved) {
						errs <- err
						return
					}
				}
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		checkExact(t, h, m, listID, imp, earlier, want, wantErrs, unique)
	})
}

func TestSweeperRequeuesLostImportsAndFailsStaleUploads(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Sweep Shop")
	ctx := context.Background()
	pool := h.App.DB.Pool()
	listID := h.CreateList(t, m, map[string]any{"name": "Sweep"})
	mid, lid := uuid.MustParse(m.ID), uuid.MustParse(listID)

	newImport := func(status core.ImportStatus, age time.Duration) uuid.UUID {
		imp := core.Import{ID: uuid.New(), MerchantID: mid, ListID: lid, Status: core.ImportUploading, Format: core.FormatText,
			Actor: "test", CreatedAt: time.Now().Add(-age)}
		if err := h.App.DB.CreateImport(ctx, &imp); err != nil {
			t.Fatal(err)
		}
		size, err := h.App.DB.WriteImportFile(ctx, mid, imp.ID, strings.NewReader("S1\nS2\n"), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if status != core.ImportUploading {
			if err := h.App.DB.MarkImportQueued(ctx, mid, imp.ID, size); err != nil {
				t.Fatal(err)
			}
		}
		return imp.ID
	}
	lost := newImport(core.ImportQueued, 5*time.Minute)   // its task never reached Redis
	fresh := newImport(core.ImportQueued, 0)              // its task is still being enqueued
	stale := newImport(core.ImportUploading, 2*time.Hour) // the gateway died mid-upload
	uploading := newImport(core.ImportUploading, time.Minute)
	abandoned := newImport(core.ImportQueued, 25*time.Hour) // every retry of its task failed
	if _, err := pool.Exec(ctx, `INSERT INTO batches (merchant_id, list_id, number, count, length, charset, created_by, created_at)
		VALUES ($1, $2, 1, 10, 8, 'ABCDEFGH', 'test', now() - interval '5 minutes')`, mid, lid); err != nil {
		t.Fatal(err)
	}

	if err := h.App.Sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(h.App.RedisOpt)
	defer insp.Close()
	queued := func(id string) bool {
		_, err := insp.GetTaskInfo(h.App.Queue.Name(worker.QueueBulk), id)
		return err == nil
	}
	if !queued("import:"+lost.String()) || queued("import:"+fresh.String()) || !queued(fmt.Sprintf("batch:%s:1", lid)) {
		t.Fatalf("enqueued: lost import %v, fresh import %v, batch %v", queued("import:"+lost.String()),
			queued("import:"+fresh.String()), queued(fmt.Sprintf("batch:%s:1", lid)))
	}
	// Sweeping again is harmless.
	if err := h.App.Sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	status := func(id uuid.UUID) (string, string) {
		var s, e string
		if err := pool.QueryRow(ctx, `SELECT status, error FROM imports WHERE id = $1`, id).Scan(&s, &e); err != nil {
			t.Fatal(err)
		}
		return s, e
	}
	if s, e := status(stale); s != "failed" || e != "upload did not finish" || chunksLeft(t, h, stale.String()) != 0 {
		t.Fatalf("stale upload: %s %q, %d pieces", s, e, chunksLeft(t, h, stale.String()))
	}
	if s, e := status(abandoned); s != "failed" || !strings.Contains(e, "did not finish within 24 hours") || chunksLeft(t, h, abandoned.String()) != 0 {
		t.Fatalf("abandoned import: %s %q", s, e)
	}
	if got := importEvents(t, h, listID, "import.failed"); len(got) != 2 {
		t.Fatalf("import.failed events after sweeping twice: %v", got)
	}
	if s, _ := status(uploading); s != "uploading" || chunksLeft(t, h, uploading.String()) == 0 {
		t.Fatalf("an upload in progress was touched: %s", s)
	}
	// The re-enqueued import runs to the end like any other.
	if err := h.App.Importer.Run(ctx, mid, lost); err != nil {
		t.Fatal(err)
	}
	if s, _ := status(lost); s != "succeeded" || !reflect.DeepEqual(listCodes(t, h, listID), []string{"S1", "S2"}) {
		t.Fatalf("lost import after the sweep: %s, codes %v", s, listCodes(t, h, listID))
	}
}
