package dashboardtest

import (
	"context"
	"encoding/csv"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// TestJourneyImportGenerateExport: an owner signs in, creates a list, uploads a CSV file through the file input,
// watches the import's progress (the page follows the worker without reloading), reads the report
// (imported, a duplicate and an invalid line with their numbers), generates a batch, downloads it
// and downloads the list's export. The worker's part (the import, the batch) runs when the test
// says, so the progress can be seen before it.
func TestJourneyImportGenerateExport(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	email := s.member(t, "owner", core.RoleOwner)
	b := browsertest.New(t)
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(b.Context(), browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	signIn(b, s.h.URL, email, password)
	b.WaitText("main h1", "Lists")

	// Create a list.
	b.ClickText("Create list")
	b.WaitText("main h1", "Create list")
	b.Fill("#list-name", "Spring <sale>")
	// (Fill clears first, which an empty textarea refuses: type into it instead.)
	browsertest.Run(b, "type the description", chromedp.SendKeys(chromedp.CSS("#list-description"), "Codes for the spring newsletter"))
	b.Fill("#list-low-stock", "5")
	b.ClickText("Create list")
	b.WaitText("main h1", "Spring <sale>")
	m := regexp.MustCompile(`/app/lists/([0-9a-f-]{36})$`).FindStringSubmatch(b.Location())
	if m == nil {
		t.Fatalf("the new list's page is %s", b.Location())
	}
	listID := uuid.MustParse(m[1])
	if got := b.Text(".list-counts"); !strings.Contains(got, "Available0") {
		t.Errorf("a new list's counts read %q", got)
	}

	// Upload a CSV file: line 4 repeats line 2, line 5 is not a code.
	b.ClickText("Import")
	b.WaitText("main", "Upload a file")
	file := filepath.Join(t.TempDir(), "spring.csv")
	if err := os.WriteFile(file, []byte("Code,Note\nSPRING-A1,first\nSPRING-A2,\nSPRING-A1,again\nnot a code,\nSPRING-A3,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	browsertest.Run(b, "choose the file", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{file}))
	b.ClickText("Upload and import")
	b.WaitURL("/imports/")
	if waitImportShown(t, b) && (b.Count("#import-report progress") != 1 || b.Count(`#import-report a[href$="`+importIDOf(t, b)+`"]`) != 1) {
		t.Errorf("no progress bar or Refresh link while the import waits")
	}
	// The worker imports; the page shows the report without being loaded again.
	importID := uuid.MustParse(importIDOf(t, b))
	// ErrImportMoved: a worker of another test of the package ran it at the same time, and one run
	// of the two finishes it (the worker's retry is this same signal).
	if err := core.NewImportRunner(s.h.App.DB, s.h.App.DB, log).Run(ctx, s.merchant, importID); err != nil && !errors.Is(err, core.ErrImportMoved) {
		t.Fatal(err)
	}
	b.WaitText("#import-report", "Finished")
	loads, polls := 0, 0
	for _, x := range b.Exchanges() {
		if strings.Contains(x.URL, "/imports/"+importID.String()) {
			switch x.Type {
			case "Document":
				loads++
			case "Fetch", "XHR":
				polls++
			}
		}
	}
	if loads != 1 || polls == 0 {
		t.Errorf("the report came with %d page loads and %d polls, want 1 load and polls", loads, polls)
	}
	if got := b.Text(".list-counts"); !strings.Contains(got, "Available3") {
		t.Errorf("after the import the counts read %q", got)
	}
	report := b.Text("#import-report .report")
	for _, want := range []string{"Imported3", "Duplicates in the file1", "Already in the list0", "Invalid1"} {
		if !strings.Contains(strings.Join(strings.Fields(report), ""), strings.ReplaceAll(want, " ", "")) {
			t.Errorf("the report reads %q, not %q", report, want)
		}
	}
	rows := b.Text("#import-report tbody")
	for _, want := range []*regexp.Regexp{regexp.MustCompile(`4\s*SPRING-A1\s*Duplicate: it appears earlier in the file`),
		regexp.MustCompile(`5\s*not a code\s*Not a valid code`)} {
		if !want.MatchString(rows) {
			t.Errorf("the rejected rows read %q, not %s", rows, want)
		}
	}
	screenshot(t, b, "import-report")

	// Generate a batch and download it.
	b.ClickText("Generate")
	b.WaitText("main", "Batch history")
	b.Fill("#gen-count", "10")
	b.Fill("#gen-prefix", "SPRING")
	b.Fill("#gen-length", "6")
	b.ClickText("Generate codes")
	// Generating, or already done by a worker of another test of the package (running it again is safe).
	if !b.Poll(`(() => { const t = document.querySelector("#batch-history")?.textContent ?? ""; return t.includes("Generating") || t.includes("Download with info") })()`) {
		t.Fatalf("the batch history does not show the batch: %s", b.Text("#batch-history"))
	}
	if err := core.NewBatchRunner(s.h.App.DB, s.h.App.DB, log).Run(ctx, s.merchant, listID, 1); err != nil {
		t.Fatal(err)
	}
	b.WaitText("#batch-history", "Download with info")
	b.ClickText("Download")
	batch := readDownload(t, downloads, "batch-1.csv")
	if len(batch) != 11 || batch[0][0] != "code" {
		t.Fatalf("the batch's download: %v", batch)
	}
	for _, r := range batch[1:] {
		if !regexp.MustCompile(`^SPRING-[A-Z2-9]{6}$`).MatchString(r[0]) {
			t.Errorf("generated code %q", r[0])
		}
	}

	// Download the export of every code.
	b.ClickText("Export")
	b.WaitText("main", "Remove unused codes")
	b.ClickText("Download all codes")
	all := readDownload(t, downloads, "codes-all.csv")
	if strings.Join(all[0], ",") != core.ExportHeader || len(all) != 1+3+10 {
		t.Fatalf("the export: %d rows: %v", len(all), all)
	}
	codes := map[string]bool{}
	for _, r := range all[1:] {
		codes[r[0]] = r[1] == "available"
	}
	for _, c := range []string{"SPRING-A1", "SPRING-A2", "SPRING-A3", batch[1][0]} {
		if !codes[c] {
			t.Errorf("the export has no available %s", c)
		}
	}
}

// importIDOf is the import id in the page's address.
func importIDOf(t *testing.T, b *browsertest.Browser) string {
	t.Helper()
	m := regexp.MustCompile(`/imports/([0-9a-f-]{36})`).FindStringSubmatch(b.Location())
	if m == nil {
		t.Fatalf("no import in %s", b.Location())
	}
	return m[1]
}

// readDownload waits for the browser to finish saving name in dir and reads it as CSV.
func readDownload(t *testing.T, dir, name string) [][]string {
	t.Helper()
	path := filepath.Join(dir, name)
	deadline := time.Now().Add(browsertest.Timeout)
	for {
		if b, err := os.ReadFile(path); err == nil {
			rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return rows
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("no %s downloaded after %s (the folder holds %v)", name, browsertest.Timeout, entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJourneyImportInsideTheAdmin: inside the Shopify admin, the upload form is sent by fetch with
// the ID token (no cookie, no page load), the report follows the worker, the person is the Shopify
// user on the import, and "Download example CSV" saves the file through a fetch with the token.
func TestJourneyImportInsideTheAdmin(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	l := s.list(t, "Inside")
	b := browsertest.New(t)
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(b.Context(), browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	b.Navigate(s.h.URL + "/app/lists/" + l.ID.String() + "/import?embedded=1&shop=" + s.shop + "&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvam91cm5leQ")
	b.WaitText("main", "Upload a file")
	browsertest.Eval[bool](b, `(window.__sameDocument = true)`)
	before := len(b.Exchanges())

	b.ClickText("Download example CSV")
	if example := readDownload(t, downloads, "example-codes.csv"); example[0][0] != "Code" {
		t.Fatalf("the example: %v", example)
	}

	file := filepath.Join(t.TempDir(), "inside.txt")
	if err := os.WriteFile(file, []byte("IN-1\nIN-2\nIN-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	browsertest.Run(b, "choose the file", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{file}))
	b.ClickText("Upload and import")
	b.WaitURL("/imports/")
	waitImportShown(t, b)
	importID := uuid.MustParse(importIDOf(t, b))
	// ErrImportMoved: a worker of another test of the package ran it at the same time, and one run
	// of the two finishes it (the worker's retry is this same signal).
	if err := core.NewImportRunner(s.h.App.DB, s.h.App.DB, slog.New(slog.DiscardHandler)).Run(context.Background(), s.merchant, importID); err != nil && !errors.Is(err, core.ErrImportMoved) {
		t.Fatal(err)
	}
	b.WaitText("#import-report", "Finished")
	if got := strings.Join(strings.Fields(b.Text("#import-report .report")), ""); !strings.Contains(got, "Imported2Duplicatesinthefile1") {
		t.Errorf("the report reads %q", got)
	}
	if !browsertest.Eval[bool](b, `window.__sameDocument === true`) || !strings.Contains(b.Location(), "embedded=1") {
		t.Fatalf("the document was loaded again (now at %s)", b.Location())
	}
	posted := false
	for _, x := range b.Exchanges()[before:] {
		switch {
		case x.Type == "Document":
			t.Errorf("a page load of %s inside the admin", x.URL)
		case strings.Contains(x.URL, "/app/sign-in") || strings.Contains(x.URL, "/auth/session-token"):
			t.Errorf("a request went to %s", x.URL)
		case x.Method == "POST" && strings.Contains(x.URL, "/import"):
			// (DevTools shows the headers of the first hop only: the redirect's GET answered 200,
			// which without the token it would not have.)
			posted = true
			if !strings.HasPrefix(x.Header.Get("Authorization"), "Bearer ") || x.Status != 303 {
				t.Errorf("the upload: %d %v", x.Status, x.Header)
			}
		}
	}
	if !posted {
		t.Error("no upload among the requests")
	}
	imp, err := s.h.App.Imports.Get(context.Background(), s.merchant, l.ID, importID)
	if err != nil || imp.Actor != "shopify:"+s.shop+"/user/7001" {
		t.Fatalf("the import's person: %q %v", imp.Actor, err)
	}
}

// waitImportShown waits for the import's page to show the import, and reports whether it still
// waits for a worker. The journeys run the import by hand, but the site's own worker may take it
// first (and, past the sweeper's stall limit, another test's, since they share the database);
// running it again is safe.
func waitImportShown(t *testing.T, b *browsertest.Browser) (waiting bool) {
	t.Helper()
	if !b.Poll(`(() => { const t = document.querySelector("#import-report")?.textContent ?? ""; return t.includes("Waiting for a worker to start") || t.includes("Importing") || t.includes("Finished") })()`) {
		t.Fatalf("the import's page does not show the import: %s", b.Text("#import-report"))
	}
	return strings.Contains(b.Text("#import-report"), "Waiting for a worker to start")
}
