package shopifyfake

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// newSink starts a server that hands every request and its body to fn.
func newSink(t *testing.T, fn func(*http.Request, []byte)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fn(r, b)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
