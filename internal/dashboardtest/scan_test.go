package dashboardtest

import (
	"bufio"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// fakeCamera writes a YUV4MPEG2 video (640×480, 4:2:0, a few frames) showing code's QR code, drawn
// with the project's QR library, for Chromium's fake camera (--use-file-for-fake-video-capture).
func fakeCamera(t *testing.T, code string) string {
	t.Helper()
	const w, h = 640, 480
	qr, err := qrcode.New(code, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bits := qr.Bitmap() // with its quiet zone
	module := (h * 8 / 10) / len(bits)
	size := module * len(bits)
	x0, y0 := (w-size)/2, (h-size)/2
	y := make([]byte, w*h)
	for i := range y {
		y[i] = 235 // white
	}
	for r, row := range bits {
		for c, black := range row {
			if !black {
				continue
			}
			for dy := 0; dy < module; dy++ {
				for dx := 0; dx < module; dx++ {
					y[(y0+r*module+dy)*w+x0+c*module+dx] = 16
				}
			}
		}
	}
	chroma := make([]byte, w*h/2) // U and V planes, grey
	for i := range chroma {
		chroma[i] = 128
	}
	path := filepath.Join(t.TempDir(), "qr.y4m")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(f)
	_, _ = out.WriteString("YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
	for i := 0; i < 10; i++ {
		_, _ = out.WriteString("FRAME\n")
		_, _ = out.Write(y)
		_, _ = out.Write(chroma)
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJourneyScanWithTheCamera: a staff member opens the scanner; Chromium's fake camera shows the
// QR code of a code handed out to a customer; the page reads it (jsQR, loaded by this page only),
// shows the code ready to use with its list and recipient, "Mark as used" redeems it in one tap,
// and the code's timeline names the staff member on the channel in_store.
func TestJourneyScanWithTheCamera(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	l := s.list(t, "Counter")
	s.addCodes(t, l, "api_key:import", "CAM-0001", "CAM-0002")
	a, err := s.h.App.Allocator.Allocate(context.Background(), s.merchant, l.ID, core.AllocationRequest{
		Recipient: core.Recipient{Email: "carol@example.com"}, Campaign: "counter", Actor: "api_key:shop"})
	if err != nil {
		t.Fatal(err)
	}
	code := a.Code
	staff := s.member(t, "staff", core.RoleStaff)
	b := browsertest.New(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-video-capture", fakeCamera(t, code)),
	)

	signIn(b, s.h.URL, staff, password)
	b.WaitText("main h1", "Find a code")
	b.Navigate(s.h.URL + "/app/scan")
	b.WaitText("main h1", "Scan")
	b.WaitURL("code=" + url.QueryEscape(code))
	b.WaitText(".scan-result", "Ready to use")
	result := b.Text(".scan-result")
	for _, want := range []string{code, "Counter", "carol@example.com", "0 of 1"} {
		if !strings.Contains(result, want) {
			t.Fatalf("the scan result %q lacks %q", result, want)
		}
	}
	reader := false
	for _, x := range b.Exchanges() {
		reader = reader || strings.Contains(x.URL, "/app/static/vendor/jsQR.js")
	}
	if !reader {
		t.Fatal("the scanner did not load the QR reader")
	}
	screenshot(t, b, "scanner")
	axeClean(t, b, "the scanner with a result")

	b.ClickText("Mark as used")
	b.WaitText(".scan-verdict-success", "Marked as used.")
	b.WaitText(".scan-result", "1 of 1")

	// A phone-sized screen: the page fits its width, the button is a thumb's size.
	browsertest.Run(b, "phone width", chromedp.EmulateViewport(390, 844))
	b.Navigate(s.h.URL + "/app/scan?code=" + url.QueryEscape(code))
	b.WaitText(".scan-verdict", "Already used")
	// Once laid out (the camera's video takes its size when its stream starts), nothing reaches
	// past the screen's right edge.
	if !b.Poll(`document.documentElement.scrollWidth <= window.innerWidth`) {
		past := browsertest.Eval[string](b, `[...document.querySelectorAll('body *')]
			.filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
			.map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).trim().replace(/\s+/g, '.') : '') + ' ' + Math.round(e.getBoundingClientRect().width) + 'px')
			.slice(0, 8).join(', ')`)
		t.Fatalf("the scanner is wider than a phone's screen (%s wide, the screen %s): %s",
			browsertest.Eval[string](b, `String(document.documentElement.scrollWidth)`), browsertest.Eval[string](b, `String(window.innerWidth)`), past)
	}
	if !strings.Contains(b.Text(".scan-last-use"), staff) {
		t.Fatalf("a second scan does not say by whom: %q", b.Text(".scan-last-use"))
	}
	axeClean(t, b, "the scanner on a phone")

	b.Navigate(s.h.URL + "/app/lists/" + l.ID.String() + "/codes/" + url.PathEscape(code))
	b.WaitText("table.timeline", "Used (use 1)")
	row := b.Text("table.timeline tbody tr:last-child")
	for _, want := range []string{"Used (use 1)", staff, "in_store"} {
		if !strings.Contains(row, want) {
			t.Fatalf("the timeline's last row %q lacks %q", row, want)
		}
	}
}
