package api

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

// TestAnOutageIsOneLine: every request failing on a dependency that is down answers 503, but only
// the first failure of each dependency is logged at warn; the others go to debug.
func TestAnOutageIsOneLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.Use(renderErrors(log))
	e.GET("/:dep", func(c *gin.Context) {
		_ = c.Error(core.Unavailable(c.Param("dep"), errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")))
	})
	for _, dep := range []string{"PostgreSQL", "PostgreSQL", "Redis", "PostgreSQL", "Redis", "PostgreSQL"} {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/"+dep, nil))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Fatalf("%s down: %d, Retry-After %q", dep, w.Code, w.Header().Get("Retry-After"))
		}
	}
	var warns, debugs []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		switch {
		case strings.Contains(line, "level=WARN"):
			warns = append(warns, line)
		case strings.Contains(line, "level=DEBUG"):
			debugs = append(debugs, line)
		default:
			t.Errorf("a line at another level: %s", line)
		}
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "PostgreSQL is not answering") || !strings.Contains(warns[1], "Redis is not answering") {
		t.Errorf("warn lines %q, want one for PostgreSQL and one for Redis", warns)
	}
	if len(debugs) != 4 {
		t.Errorf("%d debug lines, want the other 4 failures", len(debugs))
	}
}

// TestOutageLogSpeaksAgainAfterAMinute: a dependency still down a minute later is logged at warn
// once more.
func TestOutageLogSpeaksAgainAfterAMinute(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	o := &outageLog{last: map[string]time.Time{}, now: func() time.Time { return now }}
	got := []bool{o.loud("PostgreSQL"), o.loud("PostgreSQL")}
	now = now.Add(outageEvery - time.Second)
	got = append(got, o.loud("PostgreSQL"))
	now = now.Add(time.Second)
	got = append(got, o.loud("PostgreSQL"), o.loud("PostgreSQL"))
	want := []bool{true, false, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("loud at each step %v, want %v", got, want)
		}
	}
}
