package core

import (
	"strings"
	"testing"
)

func TestRefusedLines(t *testing.T) {
	t.Parallel()
	var n refusedLines
	n.add(3)
	n.add(7)
	if want := refusedLinesPrefix + "3, 7"; string(n) != want {
		t.Fatalf("%q, want %q", n, want)
	}
	// A rerun goes on from the stored note; past maxRefusedLines the list ends with an ellipsis.
	resumed := refusedLines(string(n))
	for line := 10; line < 40; line++ {
		resumed.add(line)
	}
	s := string(resumed)
	if got := strings.Count(s, ",") + 1; got != maxRefusedLines || !strings.HasSuffix(s, ", 27 …") {
		t.Fatalf("%d lines listed in %q, want %d and an ellipsis", got, s, maxRefusedLines)
	}
	if len(s) > 500 {
		t.Fatalf("the note is %d bytes, over the job's 500", len(s))
	}
}
