// Progress of couponctl's long commands (import, export), always on stderr: stdout carries the
// command's answer (CSV, JSON), which a progress line would spoil.

package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Progress timings.
const (
	// redrawEvery is how often a terminal's bar is drawn again at most.
	redrawEvery = 100 * time.Millisecond
	// plainEvery is how long plain progress stays quiet at most while work goes on: a line each
	// tenth of the way, and one every plainEvery between them (or throughout, with no total).
	plainEvery = 5 * time.Second
	// barWidth is how many cells the terminal's bar has.
	barWidth = 30
)

// isTerminal says whether w is a terminal, where progress is a bar drawn over itself.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress reports one phase of a command (a label such as "upload" or "export") on w. On a
// terminal it is a bar redrawn in place at most every redrawEvery; elsewhere it is plain lines, one
// each tenth of the way and one every plainEvery between them, so a log file or a CI job shows that
// the command is alive without a line per row. It is safe for concurrent use.
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	label string

	mu       sync.Mutex
	done     int64
	total    int64
	note     string
	drawn    time.Time // when the bar was last drawn (terminal)
	printed  time.Time // when the last plain line was written
	tenth    int64     // the last tenth a plain line was written for
	finished bool
}

// newProgress starts a phase named label; tty chooses the bar, now is the clock.
func newProgress(w io.Writer, tty bool, now func() time.Time, label string) *progress {
	return &progress{w: w, tty: tty, now: now, label: label, printed: now()}
}

// Update records that done of total units are through (total 0: unknown), with note saying what
// in words ("12,345 rows"), and shows it when it is time to.
func (p *progress) Update(done, total int64, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	changed := done != p.done
	p.done, p.total, p.note = done, total, note
	now := p.now()
	if p.tty {
		if now.Sub(p.drawn) >= redrawEvery {
			p.drawn = now
			fmt.Fprint(p.w, "\r\x1b[K"+p.bar(false))
		}
		return
	}
	if total > 0 && done < total { // all of it: Finish says so
		if tenth := done * 10 / total; tenth > p.tenth {
			p.tenth, p.printed = tenth, now
			fmt.Fprintln(p.w, p.line(false))
			return
		}
	}
	if changed && now.Sub(p.printed) >= plainEvery {
		p.printed = now
		fmt.Fprintln(p.w, p.line(false))
	}
}

// Finish shows the phase as complete with done units and note, and ends the bar's line.
func (p *progress) Finish(done int64, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	p.done, p.note = done, note
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K"+p.bar(true)+"\n")
		return
	}
	fmt.Fprintln(p.w, p.line(true))
}

// Stop ends the bar's line where it stands (the phase broke off); plain output needs nothing.
func (p *progress) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finished && p.tty && !p.drawn.IsZero() {
		fmt.Fprint(p.w, "\n")
	}
	p.finished = true
}

// percent is the share done in whole percent: 100 only when finished (a total that was an
// estimate must not claim the end early), -1 without a total.
func (p *progress) percent(finished bool) int64 {
	switch {
	case finished:
		return 100
	case p.total <= 0:
		return -1
	}
	return min(p.done*100/p.total, 99)
}

// bar is the terminal's line: "export [=========>          ]  45%  1,234 codes".
func (p *progress) bar(finished bool) string {
	pc := p.percent(finished)
	if pc < 0 {
		return fmt.Sprintf("%s %s", p.label, p.note)
	}
	filled := int(pc * barWidth / 100)
	cells := strings.Repeat("=", filled)
	if filled < barWidth {
		cells += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	return fmt.Sprintf("%s [%s] %3d%%  %s", p.label, cells, pc, p.note)
}

// line is a plain progress line: "export: 40% (1,234 codes)", or "export: done (…)".
func (p *progress) line(finished bool) string {
	switch pc := p.percent(finished); {
	case finished:
		return fmt.Sprintf("%s: done (%s)", p.label, p.note)
	case pc < 0:
		return fmt.Sprintf("%s: %s so far", p.label, p.note)
	default:
		return fmt.Sprintf("%s: %d%% (%s)", p.label, pc, p.note)
	}
}

// bytesText writes a size for people: "512 B", "3.4 MB" (decimal units).
func bytesText(n int64) string {
	switch {
	case n < 1000:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}
