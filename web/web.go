// Package web holds the dashboard's templates and static files, embedded in the binary: one
// layout (templates/layout.html) with the navigation, one file per page defining the blocks
// "title" and "main", and a small hand-written app.css and app.js (no build step).
//
// Pages are rendered with html/template, which escapes everything merchants and customers typed;
// never pass their data as template.HTML.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/numfmt"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// View is what every page template gets: the frame's facts and the page's own Data.
type View struct {
	// Viewer is the signed-in person; nil on the sign-in, invite and some error pages.
	Viewer *Viewer
	// Section is the highlighted navigation entry: lists, customers, shops, messages, settings
	// or codes.
	Section string
	// CSRF is the token state-changing forms carry ({{template "csrf" .}}).
	CSRF string
	// Embedded is true inside the Shopify admin: App Bridge is loaded with APIKey from
	// AppBridgeURL, and the page has no top bar of its own.
	Embedded     bool
	APIKey       string
	AppBridgeURL string
	// Data is the page's own data.
	Data any
}

// Viewer is who is signed in, as the frame shows it.
type Viewer struct {
	Email        string
	Owner        bool
	MerchantName string
}

// FieldError is one form field's error, shown beside it; ID is the element id of the message
// (for aria-describedby).
type FieldError struct {
	ID      string
	Message string
}

// FieldErrors are a form's errors by field name.
type FieldErrors map[string]string

// FieldErrorsOf returns the field errors of a core validation error, with the sentences people
// read (the field's name is the form label's job), and whether err was one.
func FieldErrorsOf(err error) (FieldErrors, bool) {
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Kind != core.KindInvalid || len(ce.Details) == 0 {
		return nil, false
	}
	out := FieldErrors{}
	for _, d := range ce.Details {
		out[d.Field] = Sentence(d.Message)
	}
	return out, true
}

// Sentence starts s with a capital letter and ends it with a full stop.
func Sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

// assets are the static files with their content hashes.
type asset struct {
	body []byte
	hash string // first 16 hex digits of the SHA-256
	typ  string
	gz   []byte // the body gzipped, when that is smaller (text files)
}

var assets = map[string]asset{}

func init() {
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "static/")
		assets[name] = asset{body: b, hash: hex.EncodeToString(sum[:8]), typ: contentType(name), gz: gzipped(b)}
		return nil
	})
	if err != nil {
		panic(err)
	}
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

// Asset returns a static file's body, content type and content hash (its ETag); ok is false for
// an unknown name.
func Asset(name string) (body []byte, typ, hash string, ok bool) {
	a, ok := assets[name]
	return a.body, a.typ, a.hash, ok
}

// AssetGzip returns a static file's body gzipped, for browsers that accept it; ok is false for an
// unknown name or a file that gzip does not make smaller (images).
func AssetGzip(name string) (gz []byte, ok bool) {
	a, found := assets[name]
	return a.gz, found && a.gz != nil
}

// gzipped is b compressed as well as gzip can (done once, at start), or nil when that saves
// nothing worth a Content-Encoding.
func gzipped(b []byte) []byte {
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	_, _ = w.Write(b)
	if w.Close() != nil || z.Len() >= len(b)*9/10 {
		return nil
	}
	return z.Bytes()
}

// StaticURL is the address of a static file: /app/static/<name>?v=<content hash>, so a changed
// file gets a new address and an unchanged one can be cached for good.
func StaticURL(name string) string {
	a, ok := assets[name]
	if !ok {
		panic("web: no static file " + name)
	}
	return "/app/static/" + name + "?v=" + a.hash
}

// Funcs are the template functions every page may use.
var Funcs = template.FuncMap{
	"static": StaticURL,
	// num writes a count with thousands separators: 1,234,567.
	"num": func(n int64) string { return numfmt.Thousands(n) },
	// date and datetime write a time in UTC for people; iso for datetime attributes.
	"date": func(t any) string { return formatTime(t, "2 Jan 2006") },
	"datetime": func(t any) string {
		return formatTime(t, "2 Jan 2006 15:04 UTC")
	},
	"iso": func(t any) string { return formatTime(t, time.RFC3339) },
	// fieldError is the error of one field (nil when it has none), for {{template "field_error"}}.
	"fieldError": func(errs FieldErrors, field string) *FieldError {
		if msg, ok := errs[field]; ok {
			return &FieldError{ID: "error-" + field, Message: msg}
		}
		return nil
	},
}

func formatTime(v any, layout string) string {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(layout)
	case *time.Time:
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format(layout)
	}
	return fmt.Sprint(v)
}

// pages are the parsed templates by file name: the layout (with its shared blocks) cloned for
// each page file, so every page defines its own "title" and "main".
var pages = map[string]*template.Template{}

func init() {
	base := template.Must(template.New("layout.html").Funcs(Funcs).ParseFS(templateFS, "templates/layout.html"))
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if e.Name() == "layout.html" {
			continue
		}
		pages[e.Name()] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+e.Name()))
	}
}

// Has reports whether a page template exists.
func Has(page string) bool {
	_, ok := pages[page]
	return ok
}

// Render writes the whole document of page (a file name such as "lists.html").
func Render(w io.Writer, page string, v View) error {
	return execute(w, page, "layout", v)
}

// RenderMain writes only the page's "main" block: what the dashboard's script swaps into <main>.
func RenderMain(w io.Writer, page string, v View) error {
	return execute(w, page, "main", v)
}

// Title is the page's title block, as plain text (for a header, not for HTML).
func Title(page string, v View) (string, error) {
	var b bytes.Buffer
	if err := execute(&b, page, "title", v); err != nil {
		return "", err
	}
	return html.UnescapeString(strings.TrimSpace(b.String())), nil
}

// RenderBlock writes one named template of page, for pages that are not in the layout (the
// bounce page's "bounce").
func RenderBlock(w io.Writer, page, block string, data any) error {
	t, ok := pages[page]
	if !ok {
		return fmt.Errorf("web: no page %q", page)
	}
	return t.ExecuteTemplate(w, block, data)
}

func execute(w io.Writer, page, block string, v View) error {
	t, ok := pages[page]
	if !ok {
		return fmt.Errorf("web: no page %q", page)
	}
	return t.ExecuteTemplate(w, block, v)
}
