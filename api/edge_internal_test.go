package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/config"
)

// syncBuffer is a log sink that handlers may write from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records are the JSON log records written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// A handler that panics answers 500 in the error shape, through the engine NewRouter builds on
// (the same middleware, in the same order), and the panic is logged once with the request id and
// its stack. A panicking webhook handler in particular must not answer 2xx: the platform would
// take the delivery as received and never send it again.
func TestPanicAnswers500InTheErrorShape(t *testing.T) {
	t.Parallel()
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/boom"},
		{"POST", "/webhooks/shopify"},
		{"POST", "/webhooks/woocommerce/:connection_id"},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			t.Parallel()
			var sink syncBuffer
			log := slog.New(ContextHandler{slog.NewJSONHandler(&sink, nil)})
			r := newEngine(config.Config{}, log)
			r.Handle(rt.method, rt.path, func(c *gin.Context) { panic("handler bug " + rt.path) })

			path := strings.Replace(rt.path, ":connection_id", "0b7e5f0e-0000-4000-8000-000000000001", 1)
			req := httptest.NewRequest(rt.method, path, strings.NewReader(`{}`))
			req.Header.Set("X-Request-Id", "req-panic-1")
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)

			if w.Code != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500; body %q", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "internal_error" || body.Error.Message == "" {
				t.Errorf("body %s, want the error shape with code internal_error", w.Body)
			}
			if strings.Contains(w.Body.String(), "handler bug") {
				t.Errorf("the answer reveals the panic: %s", w.Body)
			}
			if got := w.Header().Get("X-Request-Id"); got != "req-panic-1" {
				t.Errorf("X-Request-Id %q", got)
			}

			var panics []map[string]any
			for _, rec := range sink.records(t) {
				if rec["level"] == "ERROR" {
					panics = append(panics, rec)
				}
			}
			if len(panics) != 1 {
				t.Fatalf("%d error records, want the panic logged once: %v", len(panics), panics)
			}
			rec := panics[0]
			errAttr, _ := rec["err"].(map[string]any)
			if rec["request_id"] != "req-panic-1" || errAttr["panic"] != "handler bug "+rt.path ||
				!strings.Contains(str(errAttr["stack"]), "TestPanicAnswers500InTheErrorShape") {
				t.Errorf("the panic's record lacks the request id, the panic or its stack: %v", rec)
			}
		})
	}
}

// str is v when it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}
