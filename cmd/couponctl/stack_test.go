package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/app"
	"github.com/coupongate/coupongate/internal/dbtest"
)

var envOnce sync.Once

// useTestEnv points couponctl's configuration at the package's database and Redis. It sets the
// environment once for the whole package, so that tests may run in parallel (t.Setenv forbids it).
func useTestEnv(t *testing.T) {
	t.Helper()
	envOnce.Do(func() {
		for k, v := range map[string]string{"DATABASE_URL": env.DatabaseURL, "REDIS_URL": env.RedisURL(), "APP_URL": "http://dashboard.test"} {
			if err := os.Setenv(k, v); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// result is what one couponctl run printed and its exit code.
type result struct {
	code           int
	stdout, stderr string
}

// ctl runs couponctl as main does, with its output captured.
func ctl(t *testing.T, args ...string) result {
	t.Helper()
	return ctlWith(t, context.Background(), args...)
}

// ctlWith is ctl with a context of the caller's.
func ctlWith(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errs bytes.Buffer
	code := runMain(ctx, args, &out, &errs)
	return result{code, out.String(), errs.String()}
}

// ctlStdin is ctl with stdin reading input.
func ctlStdin(t *testing.T, input string, args ...string) result {
	t.Helper()
	var out, errs bytes.Buffer
	c := newCLI(&out, &errs)
	c.stdin = strings.NewReader(input)
	code := c.main(context.Background(), args)
	return result{code, out.String(), errs.String()}
}

// stack is a merchant with the gateway's API in this process, to compare couponctl with, and the
// worker's wiring beside it (runWorker runs it).
type stack struct {
	gateway  *app.Gateway
	worker   *app.Worker
	srv      *httptest.Server
	merchant string
	key      string
}

// newStack creates a merchant with couponctl and serves the API on a local port.
func newStack(t *testing.T) *stack {
	t.Helper()
	useTestEnv(t)
	created, err := couponctl(t, "merchant", "create", "--name", "CLI Shop "+uuid.NewString()[:8], "--json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	g, err := app.OpenGateway(context.Background(), cfg, dbtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	w, err := app.OpenWorker(context.Background(), cfg, dbtest.Logger(t))
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Router())
	t.Cleanup(func() {
		srv.Close()
		g.Close()
		w.Close()
	})
	return &stack{gateway: g, worker: w, srv: srv, merchant: created["merchant_id"], key: created["api_key"]}
}

// call sends a request to the admin API and returns the status and body.
func (s *stack) call(t *testing.T, method, path, contentType string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// callJSON sends body as JSON and decodes the answer into a map, failing unless the status is want.
func (s *stack) callJSON(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	status, b := s.call(t, method, path, "application/json", r)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	m := map[string]any{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return m
}

// createList creates a unique-code list through the API and returns its id; name is JSON string
// content (escapes allowed).
func (s *stack) createList(t *testing.T, name string) string {
	t.Helper()
	return s.callJSON(t, "POST", "/api/v1/lists", `{"name": "`+name+`"}`, http.StatusCreated)["id"].(string)
}

// upload imports file into the list as the dashboard or a script does through the API (a
// multipart upload), runs the queued import as the worker does, and returns the import as the API
// answers it.
func (s *stack) upload(t *testing.T, list, filename, file string) map[string]any {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = part.Write([]byte(file))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	status, b := s.call(t, "POST", "/api/v1/lists/"+list+"/imports", mw.FormDataContentType(), &body)
	if status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", status, b)
	}
	var queued struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &queued); err != nil {
		t.Fatal(err)
	}
	if err := s.worker.Importer.Run(context.Background(), uuid.MustParse(s.merchant), uuid.MustParse(queued.ID)); err != nil {
		t.Fatal(err)
	}
	return s.callJSON(t, "GET", "/api/v1/lists/"+list+"/imports/"+queued.ID, "", http.StatusOK)
}

// importCodes imports codes (one a line) into the list with couponctl and fails the test unless
// it succeeded.
func (s *stack) importCodes(t *testing.T, list string, codes ...string) {
	t.Helper()
	path := writeFile(t, "codes.txt", strings.Join(codes, "\n")+"\n")
	if r := ctl(t, "import", path, "--list", list); r.code != 0 {
		t.Fatalf("couponctl import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// writeFile writes content to a file of the test's and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
