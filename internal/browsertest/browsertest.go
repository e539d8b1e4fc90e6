// Package browsertest drives a real, headless Chromium (Debian's /usr/bin/chromium) from tests
// through chromedp: one browser process with a fresh temporary profile per test, and small helpers
// for what dashboard journeys do (navigate, fill, click, wait for text, read, screenshot).
//
// A machine without Chromium fails the test with a message naming the Debian package to install;
// it never skips.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Timeout bounds each helper's wait (a page load, an element, a text).
const Timeout = 15 * time.Second

// Browser is a headless Chromium for one test.
type Browser struct {
	t   testing.TB
	ctx context.Context

	mu        sync.Mutex
	dialogs   []string
	exchanges []*Exchange
	pending   map[network.RequestID]*Exchange
}

// Exchange is one HTTP request the page made, as the browser sent it, and the answer it got
// (Status 0 while none came).
type Exchange struct {
	Method string
	URL    string
	// Type is the resource type: Document, Fetch, Script, Stylesheet, …
	Type           string
	Header         http.Header
	Status         int
	ResponseHeader http.Header
}

// ExecPath finds the browser: $CHROMIUM_PATH, else chromium (Debian's package) or
// chromium-browser on the PATH.
func ExecPath() (string, error) {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("browsertest: Chromium is not installed: install the Debian package chromium (apt-get install -y chromium) or set CHROMIUM_PATH")
}

// New starts Chromium for t; it stops when the test ends. JavaScript dialogs (alert, confirm) are
// accepted and recorded (see Dialogs). extra adds Chromium flags, such as a fake camera's
// (chromedp.Flag("use-fake-device-for-media-stream", true)).
func New(t testing.TB, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	path, err := ExecPath()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{t: t, ctx: ctx, pending: map[network.RequestID]*Exchange{}}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first call starts the browser; its context must be the tab's own (a context that ends
	// would stop the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	// Dialogs would stall the page: accept them (from another goroutine, as Listen requires) and
	// remember them.
	// Requests and answers are recorded (see Exchanges).
	err = chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.dialogs = append(b.dialogs, string(e.Type)+": "+e.Message)
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		case *network.EventRequestWillBeSent:
			if prev, ok := b.pending[e.RequestID]; ok && e.RedirectResponse != nil {
				prev.Status, prev.ResponseHeader = int(e.RedirectResponse.Status), headerOf(e.RedirectResponse.Headers)
			}
			x := &Exchange{Method: e.Request.Method, URL: e.Request.URL, Type: string(e.Type), Header: headerOf(e.Request.Headers)}
			b.pending[e.RequestID] = x
			b.exchanges = append(b.exchanges, x)
		case *network.EventResponseReceived:
			if x, ok := b.pending[e.RequestID]; ok {
				x.Status, x.ResponseHeader = int(e.Response.Status), headerOf(e.Response.Headers)
				delete(b.pending, e.RequestID)
			}
		}
	})
	if err != nil {
		t.Fatalf("browsertest: listen: %v", err)
	}
	return b
}

func headerOf(h network.Headers) http.Header {
	out := http.Header{}
	for k, v := range h {
		for _, line := range strings.Split(fmt.Sprint(v), "\n") {
			out.Add(k, line)
		}
	}
	return out
}

// Exchanges are the requests the page made so far, oldest first (copies).
func (b *Browser) Exchanges() []Exchange {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Exchange, len(b.exchanges))
	for i, x := range b.exchanges {
		out[i] = *x
	}
	return out
}

// Context is the tab's chromedp context, for actions the helpers do not cover.
func (b *Browser) Context() context.Context { return b.ctx }

// Dialogs are the JavaScript dialogs opened so far ("alert: message").
func (b *Browser) Dialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// run runs steps with the helpers' timeout and fails the test on error.
func (b *Browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browsertest: %s: %v (at %s)", what, err, b.location())
	}
}

// Run runs one chromedp action that answers a value, with the helpers' timeout, failing the test
// on error.
func Run[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browsertest: %s: %v (at %s)", what, err, b.location())
	}
	return v
}

// Eval evaluates a JavaScript expression in the page and returns its value (awaiting a promise).
func Eval[T any](b *Browser, expression string) T {
	b.t.Helper()
	return Run(b, "evaluate "+expression, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
}

func (b *Browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown location"
	}
	return loc
}

// Navigate loads url and waits for the load to finish.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.run("navigate to "+url, chromedp.Navigate(url))
}

// Location is the page's current URL.
func (b *Browser) Location() string {
	b.t.Helper()
	return Run(b, "location", chromedp.Location())
}

// Fill replaces the value of the form field sel (a CSS selector) by typing value into it.
func (b *Browser) Fill(sel, value string) {
	b.t.Helper()
	b.run("fill "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value))
}

// Click clicks the element sel (a CSS selector) once it is visible. A click that loads a new page
// returns before that page loads: wait for something on it (WaitText, WaitURL).
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.run("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// ClickText clicks the first link or button whose text is text (trimmed).
func (b *Browser) ClickText(text string) {
	b.t.Helper()
	ok := Eval[bool](b, fmt.Sprintf(`(() => {
		const el = [...document.querySelectorAll("a, button, [role=button], input[type=submit]")]
			.find(e => (e.textContent || e.value || "").trim() === %q);
		if (!el) return false;
		el.click();
		return true;
	})()`, text))
	if !ok {
		b.t.Fatalf("browsertest: no link or button reads %q (at %s)", text, b.location())
	}
}

// WaitText waits until the element sel (a CSS selector) exists and its text contains text. It
// keeps looking across page loads.
func (b *Browser) WaitText(sel, text string) {
	b.t.Helper()
	if !b.Poll(fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.textContent.includes(%q) })()`, sel, text)) {
		b.t.Fatalf("browsertest: no %q in %s after %s (at %s; the element reads %q)", text, sel, Timeout, b.location(), b.textOrNothing(sel))
	}
}

// WaitGone waits until no element matches sel (a CSS selector): mark the old content, click, and
// wait for the mark to go to know that a fetched page replaced it.
func (b *Browser) WaitGone(sel string) {
	b.t.Helper()
	if !b.Poll(fmt.Sprintf(`document.querySelector(%q) === null`, sel)) {
		b.t.Fatalf("browsertest: %s is still there after %s (at %s)", sel, Timeout, b.location())
	}
}

// WaitURL waits until the page's URL contains part.
func (b *Browser) WaitURL(part string) {
	b.t.Helper()
	if !b.Poll(fmt.Sprintf(`location.href.includes(%q)`, part)) {
		b.t.Fatalf("browsertest: the URL has no %q after %s (at %s)", part, Timeout, b.location())
	}
}

// Poll evaluates a JavaScript condition every 50 ms until it is true (true) or Timeout passes
// (false). Errors (a page that is being replaced has no context to evaluate in) count as not yet.
func (b *Browser) Poll(condition string) bool {
	deadline := time.Now().Add(Timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](condition))
		cancel()
		if err == nil && ok {
			return true
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Text is the text of the element sel (a CSS selector), trimmed.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(Eval[string](b, fmt.Sprintf(`(() => { const el = document.querySelector(%q); return el ? el.textContent : "" })()`, sel)))
}

func (b *Browser) textOrNothing(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const el = document.querySelector(%q); return el ? el.textContent.trim().slice(0, 300) : "(no such element)" })()`, sel)))
	if err != nil {
		return "(unreadable)"
	}
	return v
}

// Count is how many elements match sel (a CSS selector).
func (b *Browser) Count(sel string) int {
	b.t.Helper()
	return Eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// Screenshot saves a PNG of the whole page at path (directories are made).
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	png := Run(b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
