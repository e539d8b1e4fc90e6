package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRun: the exit status a container engine reads, for a healthy, an unhealthy, a silent and an
// absent server, and for bad arguments.
func TestRun(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(ok.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable"}`))
	}))
	t.Cleanup(down.Close)
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(silent.Close)
	t.Cleanup(func() { close(release) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"healthy", []string{ok.URL + "/healthz"}, 0, ""},
		{"unhealthy", []string{down.URL + "/healthz"}, 1, "503 Service Unavailable"},
		{"not found", []string{ok.URL + "/nope"}, 1, "404"},
		{"no answer in time", []string{"-timeout", "200ms", silent.URL}, 1, "deadline"},
		{"nobody listening", []string{closed}, 1, "refused"},
		{"two URLs", []string{ok.URL, ok.URL}, 2, "usage"},
		{"unknown flag", []string{"-x"}, 2, "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			start := time.Now()
			if got := run(tc.args, &stderr); got != tc.status {
				t.Errorf("exit %d, want %d (stderr %q)", got, tc.status, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.stderr)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}
