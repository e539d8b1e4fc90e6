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
