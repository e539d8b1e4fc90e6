package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/worker"
)

// reportFields are the fields of an import's report that must match between couponctl and an
// upload of the same file.
var reportFields = []string{"status", "format", "rows", "imported", "duplicates_in_file", "duplicates_in_list", "invalid", "errors", "error", "list_total", "progress"}

// sameReport fails the test when the two imports' reports differ in a reportFields field.
func sameReport(t *testing.T, ctl, upload map[string]any) {
	t.Helper()
	for _, f := range reportFields {
		if !reflect.DeepEqual(ctl[f], upload[f]) {
			t.Errorf("%s: couponctl reports %v, the API's upload %v", f, ctl[f], upload[f])
		}
	}
}

// Excel's kind of CSV: a BOM, semicolons, CRLF, a duplicate, a row that is not a code, a bad date.
const messyCSV = "\ufeffNote;Code;available_till\r\nx;SPRING-0001;\r\nx;SPRING-0002;2030-01-01\r\ndup;SPRING-0002;\r\nx;not a code;\r\nx;SPRING-0003;soon\r\nx;SPRING-0004;\r\n"

func TestImportReportsAsTheUploadDoes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	viaCtl, viaAPI := s.createList(t, "via couponctl"), s.createList(t, "via the API")
	path := writeFile(t, "codes.csv", messyCSV)

	r := ctl(t, "import", path, "--list", viaCtl, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not the import's JSON (%v): %q", err, r.stdout)
	}
	want := s.upload(t, viaAPI, "codes.csv", messyCSV)
	sameReport(t, got, want)
	if got["status"] != "succeeded" || got["rows"] != 6.0 || got["imported"] != 3.0 || got["duplicates_in_file"] != 1.0 ||
		got["invalid"] != 2.0 || got["list_total"] != 3.0 || got["created_by"] != "couponctl" || got["filename"] != "codes.csv" {
		t.Errorf("the import: %v", got)
	}
	// The import is the list's own, read back through the API like an upload.
	if api := s.callJSON(t, "GET", "/api/v1/lists/"+viaCtl+"/imports/"+got["id"].(string), "", http.StatusOK); !reflect.DeepEqual(api, got) {
		t.Errorf("the API answers the import as\n%v\ncouponctl printed\n%v", api, got)
	}
	// Progress went to stderr, and only there.
	for _, w := range []string{"upload: done (", "import: done (7 lines read)"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q: %q", w, r.stderr)
		}
	}

	// Again, as text: every code is in the list already (the one twice in the file too).
	r = ctl(t, "import", path, "--list", viaCtl, "--merchant", s.merchant)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want = s.upload(t, viaAPI, "codes.csv", messyCSV)
	for _, w := range []string{
		"import 2 into list " + viaCtl + " succeeded\n",
		"  imported:               0\n", "  duplicates in the file: 0\n", "  duplicates in the list: 4\n",
		"  rejected (invalid):     2\n", "  codes in the list now:  3\n",
		"rows not imported:\n", "  line 2: \"SPRING-0001\" duplicate_in_list\n", "  line 5: \"not a code\" invalid_code\n",
		"  line 6: \"SPRING-0003\" invalid_date\n",
		"report: http://dashboard.test/app/lists/" + viaCtl + "/imports/",
		"        http://dashboard.test/api/v1/lists/" + viaCtl + "/imports/",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("the report lacks %q:\n%s", w, r.stdout)
		}
	}
	if want["duplicates_in_list"] != 4.0 || want["imported"] != 0.0 {
		t.Errorf("the second upload: %v", want)
	}
	if strings.Contains(r.stdout, "%") || strings.Contains(r.stdout, "upload:") {
		t.Errorf("progress on stdout:\n%s", r.stdout)
	}
}

func TestImportFormats(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tests := []struct {
		name, file, content string
		args                []string
		imported            float64
	}{
		{"a .txt file, one code a line", "codes.txt", "  A-1\n\nA-2\r\nA-1\n", nil, 2},
		{"codes piped in with --format txt", "", "B-1\nB-2\nB-3\n", []string{"--format", "txt"}, 3},
		{"a .txt name read as CSV", "codes.txt", "code\nC-1\n", []string{"--format", "csv"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			list := s.createList(t, tt.name)
			var want map[string]any
			args := append([]string{"import", "-", "--list", list, "--json"}, tt.args...)
			if tt.file != "" {
				args[1] = writeFile(t, tt.file, tt.content)
				want = s.upload(t, s.createList(t, tt.name+" (API)"), tt.file, tt.content)
			}
			r := ctlStdin(t, tt.content, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatal(err)
			}
			if got["imported"] != tt.imported {
				t.Errorf("imported %v, want %v (%v)", got["imported"], tt.imported, got)
			}
			if want != nil && tt.args == nil {
				sameReport(t, got, want)
			}
		})
	}
}

func TestImportRefusals(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	list := s.createList(t, "refusals")
	other, err := couponctl(t, "merchant", "create", "--name", "CLI Someone Else", "--json")
	if err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, "codes.csv", "Code\nX-1\n")
	// Not parallel: the list is checked after the cases, to find no code any refused import left.
	t.Run("a file without a Code column fails as a whole", func(t *testing.T) {
		r := ctl(t, "import", writeFile(t, "codes.csv", "Name,Email\nann,ann@example.com\n"), "--list", list)
		if r.code != 1 || !strings.Contains(r.stdout, "failed\n  error: ") || !strings.Contains(r.stderr, "failed: ") ||
			!strings.Contains(strings.ToLower(r.stderr), "code column") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"a missing file", []string{"import", t.TempDir() + "/nope.csv", "--list", list}, "no such file"},
		{"an unknown list", []string{"import", good, "--list", uuid.NewString()}, "no list has the id"},
		{"another merchant's list", []string{"import", good, "--list", list, "--merchant", other["merchant_id"]}, "has no list with the id " + list},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := ctl(t, tt.args...); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
	if counts := s.callJSON(t, "GET", "/api/v1/lists/"+list, "", http.StatusOK)["counts"].(map[string]any); counts["total"] != 0.0 {
		t.Errorf("refused imports left codes: %v", counts)
	}
}

// bigFile is n codes, one a line.
func bigFile(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("Code\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%06d\n", prefix, i)
	}
	return b.String()
}

// runWorker runs a worker of this stack until the test ends.
func runWorker(t *testing.T, s *stack) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	deps := s.worker.Deps()
	deps.Concurrency = 2
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := worker.Run(ctx, deps); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// A worker takes the import's task as soon as it is queued, while couponctl runs the same import:
// the codes go in once, and couponctl reports the end whichever of them did the work. Not
// parallel: the worker would take other tests' imports too.
func TestImportBesideAWorker(t *testing.T) {
	s := newStack(t)
	runWorker(t, s)
	const n = 40_000 // three of the runner's batches
	list := s.createList(t, "beside a worker")
	r := ctl(t, "import", writeFile(t, "big.csv", bigFile("W", n)), "--list", list, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got["status"] != "succeeded" || got["rows"] != float64(n) || got["imported"] != float64(n) ||
		got["duplicates_in_file"] != 0.0 || got["duplicates_in_list"] != 0.0 || got["list_total"] != float64(n) {
		t.Fatalf("the import: %v", got)
	}
	if counts := s.callJSON(t, "GET", "/api/v1/lists/"+list, "", http.StatusOK)["counts"].(map[string]any); counts["total"] != float64(n) {
		t.Fatalf("the list counts %v, want %d codes", counts, n)
	}
}

// A couponctl stopped right after the upload (Ctrl-C, or killed) leaves the import queued with its
// task; a worker started later runs it to the same end. Not parallel: it starts a worker.
func TestInterruptedImportIsFinishedByAWorker(t *testing.T) {
	s := newStack(t)
	const n = 20_000
	list := s.createList(t, "interrupted")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Interrupt as soon as the upload is stored: the import is queued, none of it has run.
	stderr := &cancelOn{text: "upload: done", cancel: cancel}
	var stdout strings.Builder
	code := runMain(ctx, []string{"import", writeFile(t, "big.csv", bigFile("I", n)), "--list", list}, &stdout, stderr)
	if code != 1 || stdout.Len() != 0 {
		t.Fatalf("exit %d, stdout %q", code, stdout.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, "import 1 interrupted;") || !strings.Contains(msg, "stays queued for a worker") ||
		!strings.Contains(msg, "http://dashboard.test/api/v1/lists/"+list+"/imports/") {
		t.Fatalf("stderr: %s", msg)
	}
	imports := s.callJSON(t, "GET", "/api/v1/lists/"+list+"/imports", "", http.StatusOK)["items"].([]any)
	if len(imports) != 1 || imports[0].(map[string]any)["status"] != "queued" {
		t.Fatalf("imports after the interrupt: %v", imports)
	}
	id := imports[0].(map[string]any)["id"].(string)

	runWorker(t, s)
	var imp map[string]any
	waitFor(t, time.Minute, "the worker to finish the import", func() bool {
		imp = s.callJSON(t, "GET", "/api/v1/lists/"+list+"/imports/"+id, "", http.StatusOK)
		return imp["status"] == "succeeded" || imp["status"] == "failed"
	})
	if imp["status"] != "succeeded" || imp["imported"] != float64(n) || imp["rows"] != float64(n) || imp["list_total"] != float64(n) {
		t.Fatalf("the import as the worker finished it: %v", imp)
	}
}

// cancelOn is a stderr that cancels a context once text has been written to it.
type cancelOn struct {
	mu     sync.Mutex
	b      strings.Builder
	text   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b.Write(p)
	if strings.Contains(c.b.String(), c.text) {
		c.cancel()
	}
	return len(p), nil
}

func (c *cancelOn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}
