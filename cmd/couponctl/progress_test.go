package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/internal/numfmt"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }
func lines(s string) []string                { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }
func noteOf(n int64) string                  { return numfmt.Thousands(n) + " codes" }
func update(p *progress, done, total int64)  { p.Update(done, total, noteOf(done)) }
func finish(p *progress, done int64)         { p.Finish(done, noteOf(done)) }
func feed(p *progress, total, step int64) {
	for d := step; d <= total; d += step {
		update(p, d, total)
	}
}

func TestPlainProgress(t *testing.T) {
	t.Parallel()
	t.Run("a line each tenth", func(t *testing.T) {
		t.Parallel()
		var w bytes.Buffer
		clock := newFakeClock()
		p := newProgress(&w, false, clock.now, "export")
		feed(p, 1000, 1) // a thousand updates, no time passing
		finish(p, 1000)
		got := lines(w.String())
		want := []string{"export: 10% (100 codes)", "export: 20% (200 codes)", "export: 30% (300 codes)", "export: 40% (400 codes)",
			"export: 50% (500 codes)", "export: 60% (600 codes)", "export: 70% (700 codes)", "export: 80% (800 codes)",
			"export: 90% (900 codes)", "export: done (1,000 codes)"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("got\n%s\nwant\n%s", w.String(), strings.Join(want, "\n"))
		}
		if strings.Contains(w.String(), "\r") {
			t.Fatal("plain progress redraws with carriage returns")
		}
	})
	t.Run("between tenths, a line every few seconds", func(t *testing.T) {
		t.Parallel()
		var w bytes.Buffer
		clock := newFakeClock()
		p := newProgress(&w, false, clock.now, "import")
		update(p, 1, 1000)
		clock.advance(plainEvery - time.Millisecond)
		update(p, 2, 1000)
		if w.Len() != 0 {
			t.Fatalf("a line before %s: %q", plainEvery, w.String())
		}
		clock.advance(time.Millisecond)
		update(p, 3, 1000)
		if w.String() != "import: 0% (3 codes)\n" {
			t.Fatalf("after %s: %q", plainEvery, w.String())
		}
		clock.advance(time.Hour)
		update(p, 3, 1000) // nothing moved: nothing to say
		if len(lines(w.String())) != 1 {
			t.Fatalf("a line without progress: %q", w.String())
		}
	})
	t.Run("without a total", func(t *testing.T) {
		t.Parallel()
		var w bytes.Buffer
		clock := newFakeClock()
		p := newProgress(&w, false, clock.now, "upload")
		update(p, 10, 0)
		clock.advance(plainEvery)
		update(p, 20, 0)
		finish(p, 25)
		if w.String() != "upload: 20 codes so far\nupload: done (25 codes)\n" {
			t.Fatalf("%q", w.String())
		}
	})
	t.Run("an estimate passed is not the end", func(t *testing.T) {
		t.Parallel()
		var w bytes.Buffer
		clock := newFakeClock()
		p := newProgress(&w, false, clock.now, "export")
		update(p, 150, 100) // past the total: no tenth line, and never 100%
		clock.advance(plainEvery)
		update(p, 160, 100)
		if w.String() != "export: 99% (160 codes)\n" {
			t.Fatalf("%q", w.String())
		}
	})
}

func TestTerminalProgress(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	clock := newFakeClock()
	p := newProgress(&w, true, clock.now, "export")
	update(p, 0, 200)
	for d := int64(1); d <= 100; d++ {
		update(p, d, 200) // no time passes: no redraw
	}
	if n := strings.Count(w.String(), "\r"); n != 1 {
		t.Fatalf("%d draws without time passing, want 1: %q", n, w.String())
	}
	clock.advance(redrawEvery)
	update(p, 100, 200)
	want := "\r\x1b[Kexport [===============>              ]  50%  100 codes"
	if !strings.HasSuffix(w.String(), want) {
		t.Fatalf("the bar at half way: %q, want it to end with %q", w.String(), want)
	}
	finish(p, 200)
	if !strings.HasSuffix(w.String(), "\r\x1b[Kexport [==============================] 100%  200 codes\n") {
		t.Fatalf("the finished bar: %q", w.String())
	}
	update(p, 300, 200)
	if !strings.HasSuffix(w.String(), "\n") {
		t.Fatal("drawn after Finish")
	}
}
