package web

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/core"
)

// TestShippedAssetsStaySmall: the dashboard ships at most 100 KB of JavaScript and CSS to every
// page. The one exception is the scanner's QR reader (vendor/jsQR.js, third-party, pinned), which
// app.js loads on /app/scan only, when the camera starts; no template but the scanner's names it.
func TestShippedAssetsStaySmall(t *testing.T) {
	t.Parallel()
	total := 0
	for name, a := range assets {
		if strings.HasPrefix(name, "vendor/") {
			continue
		}
		if strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".css") {
			total += len(a.body)
		}
	}
	if total == 0 || total > 100_000 {
		t.Fatalf("JavaScript and CSS: %d bytes, want 1 to 100,000", total)
	}
}

// TestQRReaderOnlyOnTheScanner: the QR reader outside the budget is named by the scanner page
// alone, which hands it to app.js to load when the camera starts.
func TestQRReaderOnlyOnTheScanner(t *testing.T) {
	t.Parallel()
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := templateFS.ReadFile("templates/" + e.Name())
		if named := bytes.Contains(b, []byte("vendor/")); named != (e.Name() == "scan.html") {
			t.Errorf("%s names vendor/: %v", e.Name(), named)
		}
	}
	if _, _, _, ok := Asset("vendor/jsQR.js"); !ok {
		t.Fatal("vendor/jsQR.js is not embedded")
	}
}

// TestPagesHaveNoInlineScriptOrStyle: the content security policy allows no inline script or
// style, so no template may carry one.
func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	inline := regexp.MustCompile(`(?i)<script>|<script\s+(?:type="[^"]*"\s*)?>|<style|\sstyle=|\son[a-z]+=`)
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := templateFS.ReadFile("templates/" + e.Name())
		if m := inline.Find(b); m != nil {
			t.Errorf("%s has inline %q", e.Name(), m)
		}
	}
}

// TestFramePagesRender: the frame's own pages render whole and as a fragment, signed in or not,
// embedded or not, with their title, and escape what people typed. (The area pages need their own
// data; their handlers' tests render them.)
func TestFramePagesRender(t *testing.T) {
	t.Parallel()
	hostile := `<svg/onload=alert(1)>`
	for _, name := range []string{"error.html", "sign_in.html", "invite.html", "lists.html", "team.html"} {
		for _, v := range []View{
			{Data: map[string]any{"Heading": "Not found"}},
			{Viewer: &Viewer{Email: hostile, Owner: true, MerchantName: hostile}, Section: "lists", CSRF: "tok", Data: map[string]any{"Heading": "Not found"}},
			{Viewer: &Viewer{Email: "s@example.com"}, Embedded: true, APIKey: "key", AppBridgeURL: "https://cdn.example/app-bridge.js", Data: map[string]any{"Heading": "Not found"}},
		} {
			var full, frag bytes.Buffer
			if err := Render(&full, name, v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := RenderMain(&frag, name, v); err != nil {
				t.Fatalf("%s main: %v", name, err)
			}
			if strings.Contains(full.String(), hostile) {
				t.Errorf("%s: the hostile text is not escaped", name)
			}
			if !strings.Contains(full.String(), `<main id="main"`) || strings.Contains(frag.String(), "<html") {
				t.Errorf("%s: the document or the fragment is wrong", name)
			}
			if title, err := Title(name, v); err != nil || title == "" {
				t.Errorf("%s: title %q %v", name, title, err)
			}
			embeddedHead := strings.Contains(full.String(), `<meta name="shopify-api-key" content="key">`) &&
				strings.Contains(full.String(), `<script src="https://cdn.example/app-bridge.js"></script>`)
			if embeddedHead != v.Embedded {
				t.Errorf("%s: App Bridge loaded = %v, embedded = %v", name, embeddedHead, v.Embedded)
			}
		}
	}
	var b bytes.Buffer
	if err := RenderBlock(&b, "bounce.html", "bounce", map[string]string{"Reload": "/app?embedded=1&shop=" + hostile, "APIKey": "key", "AppBridgeURL": "https://cdn.example/app-bridge.js"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), hostile) || !strings.Contains(b.String(), `data-bounce="/app?embedded=1&amp;shop=`) {
		t.Errorf("bounce page: %s", b.String())
	}
}

func TestStaticURLCarriesTheContentHash(t *testing.T) {
	t.Parallel()
	u := StaticURL("app.js")
	_, typ, hash, ok := Asset("app.js")
	if !ok || u != "/app/static/app.js?v="+hash || len(hash) != 16 || typ != "text/javascript; charset=utf-8" {
		t.Fatalf("StaticURL = %q, Asset = %q %q %v", u, typ, hash, ok)
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{Sentence("must be 1 to 200 characters"), "Must be 1 to 200 characters."},
		{Sentence("Choose owner or staff."), "Choose owner or staff."},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	errs, ok := FieldErrorsOf(core.Invalid("name", "must be 1 to 200 characters"))
	if !ok || errs["name"] != "Must be 1 to 200 characters." {
		t.Fatalf("FieldErrorsOf: %v %v", errs, ok)
	}
	if _, ok := FieldErrorsOf(errors.New("boom")); ok {
		t.Fatal("a plain error has field errors")
	}
}
