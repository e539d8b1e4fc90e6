package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/dbtest"
)

// logLines keeps every record logged through it (message and attributes, as text) and passes it
// on to the test's output.
type logLines struct {
	next  slog.Handler
	attrs []slog.Attr
	mu    *sync.Mutex
	lines *[]string
}

func newLogLines(t testing.TB) *logLines {
	return &logLines{next: dbtest.Logger(t).Handler(), mu: &sync.Mutex{}, lines: &[]string{}}
}

func (l *logLines) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

func (l *logLines) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range l.attrs {
		write(a)
	}
	r.Attrs(write)
	l.mu.Lock()
	*l.lines = append(*l.lines, b.String())
	l.mu.Unlock()
	return l.next.Handle(ctx, r)
}

func (l *logLines) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *l
	c.attrs = append(append([]slog.Attr{}, l.attrs...), attrs...)
	c.next = l.next.WithAttrs(attrs)
	return &c
}

func (l *logLines) WithGroup(name string) slog.Handler {
	c := *l
	c.next = l.next.WithGroup(name)
	return &c
}

// matching lists the lines that contain s.
func (l *logLines) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range *l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// hostOf is the host:port of a database or Redis URL.
func hostOf(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// With PostgreSQL gone (connections refused, and those in the pool broken mid-use), every request
// that needs it answers 503 dependency_unavailable with Retry-After, never 500; when it is back,
// the same requests succeed again. A worker task failing meanwhile is a failed task to retry, not a
// panic.
func TestPostgresOutageAnswers503(t *testing.T) {
	// not parallel: it cuts PostgreSQL under a harness and reads its logger's output
	pg := apptest.NewProxy(t, hostOf(t, env.DatabaseURL))
	logs := newLogLines(t)
	h := apptest.Start(t, env, apptest.Options{Worker: true, Log: slog.New(logs), Configure: func(c *config.Config) {
		c.DatabaseURL = pg.URL(t, c.DatabaseURL)
	}})
	m := h.NewMerchant(t, "Outage Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Flyer", "kind": "fixed", "fixed_code": "OUTAGE5"})
	unique := h.CreateList(t, m, map[string]any{"name": "Welcome"})

	order := 0
	calls := []struct {
		name string
		req  func() apptest.Request
		ok   int
	}{
		{"list lists", func() apptest.Request {
			return apptest.Request{Method: "GET", Path: "/api/v1/lists", APIKey: m.APIKey}
		}, http.StatusOK},
		{"get list", func() apptest.Request {
			return apptest.Request{Method: "GET", Path: "/api/v1/lists/" + list, APIKey: m.APIKey}
		}, http.StatusOK},
		{"update list", func() apptest.Request {
			return apptest.Request{Method: "PATCH", Path: "/api/v1/lists/" + list, APIKey: m.APIKey, JSON: map[string]any{"description": "spring"}}
		}, http.StatusOK},
		{"allocate", func() apptest.Request {
			return apptest.Request{Method: "POST", Path: "/api/v1/lists/" + list + "/allocations", APIKey: m.APIKey,
				JSON: map[string]any{"recipient": map[string]any{"email": "ann@example.com"}}}
		}, 0},
		{"validate", func() apptest.Request {
			return apptest.Request{Method: "POST", Path: "/storefront/v1/validate", Storefront: m.StorefrontKey, JSON: map[string]any{"code": "OUTAGE5"}}
		}, http.StatusOK},
		{"create import", func() apptest.Request {
			return apptest.Request{Method: "POST", Path: "/api/v1/lists/" + unique + "/imports", APIKey: m.APIKey,
				ContentType: "text/plain", Body: strings.NewReader("IMPORTED-1\nIMPORTED-2\n")}
		}, 0},
		{"order", func() apptest.Request {
			order++
			return apptest.Request{Method: "POST", Path: "/api/v1/orders", APIKey: m.APIKey, JSON: map[string]any{
				"platform": "custom", "shop": "outage", "order_id": "o" + strconv.Itoa(order), "status": "paid", "codes": []string{"OUTAGE5"}}}
		}, http.StatusOK},
	}
	succeeded := func(t *testing.T, name string, want int, r apptest.Response) {
		t.Helper()
		if r.Status/100 != 2 || (want != 0 && r.Status != want) {
			t.Errorf("%s with PostgreSQL up: %d %s", name, r.Status, r.Body)
		}
	}
	for _, c := range calls {
		succeeded(t, c.name, c.ok, h.Do(t, c.req()))
	}

	pg.Cut()
	for _, c := range calls {
		r := h.Do(t, c.req())
		if r.Status != http.StatusServiceUnavailable || r.ErrorCode() != "dependency_unavailable" {
			t.Errorf("%s with PostgreSQL down: %d %s; want 503 dependency_unavailable", c.name, r.Status, r.Body)
			continue
		}
		if after, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || after <= 0 {
			t.Errorf("%s with PostgreSQL down: Retry-After %q", c.name, r.Header.Get("Retry-After"))
		}
	}
	// The worker's scheduled tasks meet the dead database too: failed, to be run again.
	apptest.Eventually(t, 15*time.Second, "a worker task failing on the dead database", func() bool {
		return len(logs.matching("task failed")) > 0
	})
	if panics := logs.matching("panic"); len(panics) > 0 {
		t.Errorf("a failure on the dead database was logged as a panic: %q", panics)
	}

	pg.Restore(t)
	for _, c := range calls {
		succeeded(t, c.name, c.ok, h.Do(t, c.req()))
	}
}

// With Redis gone, what needs it (queueing an import) answers 503 with Retry-After; what can do
// without it goes on: allocation scans instead of using the cursor, and failed validations are
// still limited, per process.
func TestRedisOutage(t *testing.T) {
	// not parallel: it cuts Redis under a harness
	rd := apptest.NewProxy(t, dbtest.RedisAddr())
	const limit = 3
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.RedisURL = rd.URL(t, env.RedisURL())
		c.ValidationFailuresPerMinute = limit
	}})
	m := h.NewMerchant(t, "Redis Outage Shop")
	fixed := h.CreateList(t, m, map[string]any{"name": "Flyer", "kind": "fixed", "fixed_code": "REDIS5"})
	unique := h.CreateList(t, m, map[string]any{"name": "Welcome"})
	upload := func() apptest.Response {
		return h.Do(t, apptest.Request{Method: "POST", Path: "/api/v1/lists/" + unique + "/imports", APIKey: m.APIKey,
			ContentType: "text/plain", Body: strings.NewReader("QUEUED-1\n")})
	}

	rd.Cut()
	r := upload()
	if r.Status != http.StatusServiceUnavailable || r.ErrorCode() != "dependency_unavailable" || r.Header.Get("Retry-After") == "" {
		t.Errorf("import with Redis down: %d Retry-After %q %s; want 503 dependency_unavailable with Retry-After",
			r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if r := h.Admin(t, m, "POST", "/api/v1/lists/"+fixed+"/allocations", map[string]any{"recipient": map[string]any{"email": "ann@example.com"}}); r.Status/100 != 2 {
		t.Errorf("allocation with Redis down: %d %s", r.Status, r.Body)
	}
	for i := 1; i <= limit+1; i++ {
		r := h.Do(t, apptest.Request{Method: "POST", Path: "/storefront/v1/validate", Storefront: m.StorefrontKey,
			JSON: map[string]any{"code": fmt.Sprintf("GUESS-%d", i)}})
		switch {
		case i <= limit && (r.Status != http.StatusOK || r.Map(t)["valid"] != false):
			t.Fatalf("failed guess %d with Redis down: %d %s", i, r.Status, r.Body)
		case i > limit && (r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == ""):
			t.Fatalf("guess %d with Redis down, past the limit of %d: %d %s; want 429 with Retry-After", i, limit, r.Status, r.Body)
		}
	}

	rd.Restore(t)
	if r := upload(); r.Status != http.StatusAccepted {
		t.Errorf("import with Redis back: %d %s", r.Status, r.Body)
	}
}
