// Package bench measures Coupongate's hot paths beside the physical limits measured in the same
// run on the same machine (raw COPY, raw UPDATE, raw indexed lookups), through the real gateway and
// worker binaries, so that ratios stay meaningful on a shared, noisy machine. Run with `make bench`;
// see README.md for what each figure means.
package bench

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/coupongate/coupongate/internal/dbtest"
)

var env dbtest.Env

func TestMain(m *testing.M) {
	dbtest.Main(m, &env)
}

// row is one line of the bench table.
type row struct {
	Figure, Ours, Limit, Ratio, Note string
}

var (
	tableMu sync.Mutex
	table   []row
)

// report adds a line to the table and prints the table so far (each benchmark prints its rows).
func report(r row) {
	tableMu.Lock()
	defer tableMu.Unlock()
	table = append(table, r)
	fmt.Fprintf(os.Stdout, "| %s | %s | %s | %s | %s |\n", r.Figure, r.Ours, r.Limit, r.Ratio, r.Note)
}

// median of durations or figures.
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtList(xs []float64, unit string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f%s", x, unit)
	}
	return strings.Join(parts, ", ")
}
