package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserDrivesAPage: the helpers fill a form, submit it, wait for the answer, read it, see a
// dialog and save a screenshot.
func TestBrowserDrivesAPage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/hello" {
			fmt.Fprintf(w, `<!doctype html><title>Hello</title><p id="out">Hello, %s</p><button id="b" onclick="alert('hi')">Alert</button>`,
				strings.ReplaceAll(r.FormValue("name"), "<", "&lt;"))
			return
		}
		fmt.Fprint(w, `<!doctype html><title>Form</title><form action="/hello"><label for="name">Name</label><input id="name" name="name"><button id="go">Go</button></form>`)
	}))
	defer srv.Close()
	b := New(t)
	b.Navigate(srv.URL)
	b.Fill("#name", "Ada")
	b.Click("#go")
	b.WaitText("#out", "Hello, Ada")
	if got := b.Text("#out"); got != "Hello, Ada" {
		t.Fatalf("text %q", got)
	}
	if !strings.HasSuffix(b.Location(), "/hello?name=Ada") || b.Count("p") != 1 {
		t.Fatalf("at %s with %d paragraphs", b.Location(), b.Count("p"))
	}
	b.ClickText("Alert")
	b.WaitText("#out", "Hello") // the page goes on after the dialog
	if d := b.Dialogs(); len(d) != 1 || d[0] != "alert: hi" {
		t.Fatalf("dialogs %v", d)
	}
	shot := filepath.Join(t.TempDir(), "shots", "hello.png")
	b.Screenshot(shot)
	if png, err := os.ReadFile(shot); err != nil || len(png) < 100 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
}

// TestMissingBrowserNamesThePackage: without Chromium the error says what to install.
func TestMissingBrowserNamesThePackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := ExecPath()
	if err == nil || !strings.Contains(err.Error(), "install the Debian package chromium") {
		t.Fatalf("ExecPath without a browser: %v", err)
	}
}

// TestAxeFindsViolations: Axe reports an unlabelled field and text too pale to read, each with
// its rule, impact, element and help page, under a policy that forbids inline scripts; a page
// without faults has none.
func TestAxeFindsViolations(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'")
		body := `<label for="name">Name</label><input id="name"><p>Readable</p>`
		if r.URL.Path == "/faulty" {
			body = `<input id="name"><p style="color:#ccc;background:#fff">Pale</p>`
		}
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Axe</title><main><h1>Axe</h1>%s</main></html>`, body)
	}))
	defer srv.Close()
	b := New(t)
	b.Navigate(srv.URL + "/faulty")
	got := map[string]AxeViolation{}
	for _, v := range b.Axe() {
		got[v.Rule] = v
	}
	label, contrast := got["label"], got["color-contrast"]
	if !label.Serious() || len(label.Nodes) != 1 || label.Nodes[0].Target != "#name" || !strings.HasPrefix(label.HelpURL, "https://dequeuniversity.com/") {
		t.Errorf("the unlabelled field: %+v", label)
	}
	if !contrast.Serious() || len(contrast.Nodes) != 1 || !strings.Contains(contrast.String(), "at p") {
		t.Errorf("the pale text: %s", contrast)
	}
	b.Navigate(srv.URL + "/fine")
	if v := b.Axe(); len(v) != 0 {
		t.Errorf("a page without faults: %v", v)
	}
}
