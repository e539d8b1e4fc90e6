// Package apptest runs a whole Coupongate, gateway and optionally worker, inside a test, against a
// database of its own (cloned from the migrated template, see dbtest) and the package's Redis, and
// speaks to it over real HTTP.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/app"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/worker"
)

// Harness is a running Coupongate.
type Harness struct {
	App    *App
	Server *httptest.Server
	URL    string
	// DatabaseURL is the harness's database: its own, or the one it was given (Options.Database).
	DatabaseURL string
}

// App is what a test reaches of the running Coupongate: the gateway's and the worker's wirings,
// built on one Base (one store, one Redis client, one metrics registry). A name only one process
// wires reads directly (h.App.Lists, h.App.Sweeper), as do the Base's (h.App.DB, h.App.Config); a
// service both processes build (the WooCommerce connector, the Shopify installer, the delivery
// jobs) is named through its process: h.App.Gateway.Jobs, h.App.Worker.Jobs. The worker's
// wiring is there without Options.Worker too, for tests that run its services themselves.
type App struct {
	*app.Base
	*app.Gateway
	*app.Worker
}

// Options adjust the harness.
type Options struct {
	// Worker starts the asynq worker in-process too.
	Worker bool
	// Configure changes the config before the app is built. The harness's QUEUE_PREFIX
	// (QueuePrefix) is set by then; a test that wants plain queue names sets it to "".
	Configure func(*config.Config)
	// Log, when set, is the app's logger instead of one writing to the test's output.
	Log *slog.Logger
	// Database, when set, is a migrated database the harness runs on instead of a new one of its
	// own: another harness's DatabaseURL (two gateways of one installation), or a failover pair's.
	Database string
}

// Start builds the app on a new database cloned from the migrated template (or Options.Database)
// and env's Redis, and serves it; everything stops, and the database is dropped, when the test
// ends.
//
// A harness has a database of its own because a worker sweeps the whole database: on a shared
// one, any harness's worker would queue another test's work (its outgoing webhooks, its stalled
// imports) to its own queues, where the task is lost when that test ends first.
func Start(t testing.TB, env dbtest.Env, opts Options) *Harness {
	t.Helper()
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Database != "" {
		cfg.DatabaseURL = opts.Database
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		dbURL, drop, err := dbtest.NewDatabase(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(drop) // registered first, so it runs after the app has stopped
		cfg.DatabaseURL = dbURL
	}
	cfg.RedisURL = env.RedisURL()
	cfg.DBMaxConns = 16
	cfg.WorkerConcurrency = 4
	cfg.ShutdownTimeout = 5 * time.Second
	// Every fake outside service of the tests listens on loopback.
	cfg.AllowPrivateNetworks = true
	// So do the merchants' webhook endpoints (a test of the refusal sets this false).
	cfg.WebhooksAllowPrivate = true
	// The harnesses of a test package share its Redis database: each names its queues apart, so
	// that its worker takes only the tasks its own app queued and never renders one of another
	// test's with its configuration (its APP_URL, its fakes).
	cfg.QueuePrefix = queuePrefix()
	// The server's address is known before the app is built, so APP_URL (where platforms deliver
	// webhooks) is the test server itself.
	srv := httptest.NewUnstartedServer(nil)
	cfg.AppURL = "http://" + srv.Listener.Addr().String()
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	log := opts.Log
	if log == nil {
		log = dbtest.Logger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b, err := app.OpenBase(ctx, cfg, log)
	if err != nil {
		srv.Close()
		cancel()
		t.Fatal(err)
	}
	a := &App{Base: b, Gateway: app.NewGateway(b), Worker: app.NewWorker(b)}
	// The gateway's own server settings (header, body and idle timeouts), as cmd/gateway serves.
	srv.Config = api.NewHTTPServer(cfg, a.Gateway.Router(), log)
	srv.Listener = api.Listener(srv.Listener) // as cmd/gateway serves it
	srv.Start()
	h := &Harness{App: a, Server: srv, URL: srv.URL, DatabaseURL: cfg.DatabaseURL}
	var wg sync.WaitGroup
	if opts.Worker {
		deps := a.Worker.Deps()
		deps.SweepEvery = 2 * time.Second
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker.Run(ctx, deps); err != nil {
				t.Errorf("worker: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wg.Wait()
		a.Gateway.Sender.Close()
		a.Worker.Sender.Close()
		b.Close()
	})
	return h
}

// UseWooCommerceClient makes every WooCommerce call of both processes (connecting, pushing,
// reconciling, disconnecting) go through c: a client that trusts a fake store's certificate.
func (h *Harness) UseWooCommerceClient(c *http.Client) {
	h.App.Gateway.WooCommerce.HTTP = c
	h.App.Worker.WooCommerce.HTTP = c
	h.App.WooCommercePusher.HTTP = c
	h.App.WooCommerceReconciler.HTTP = c
}

// Merchant is a merchant made for a test, with its keys.
type Merchant struct {
	ID            string
	APIKey        string
	StorefrontKey string
}

// NewMerchant creates a merchant through core, as couponctl does.
func (h *Harness) NewMerchant(t testing.TB, name string) Merchant {
	t.Helper()
	m, keys, err := h.App.Merchants.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return Merchant{ID: m.ID.String(), APIKey: keys.APIKey, StorefrontKey: keys.StorefrontKey}
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response is not JSON (%v): %s", err, r.Body)
	}
}

// Map decodes the body as a JSON object.
func (r Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// ErrorCode is the contract error's code, or "" when the body is not an error.
func (r Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Request is one call to make.
type Request struct {
	Method      string
	Path        string
	JSON        any // marshalled as the body when set
	Body        io.Reader
	ContentType string
	APIKey      string // sent as Authorization: Bearer
	Storefront  string // sent as X-Storefront-Key
	Header      http.Header
}

// Do sends req and reads the whole answer.
func (h *Harness) Do(t testing.TB, req Request) Response {
	t.Helper()
	body := req.Body
	if req.JSON != nil {
		b, err := json.Marshal(req.JSON)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
		if req.ContentType == "" {
			req.ContentType = "application/json"
		}
	}
	hr, err := http.NewRequest(req.Method, h.URL+req.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	if req.ContentType != "" {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	if req.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+req.APIKey)
	}
	if req.Storefront != "" {
		hr.Header.Set("X-Storefront-Key", req.Storefront)
	}
	resp, err := noRedirects.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if Recorder != nil {
		Recorder(hr, resp, b)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// noRedirects answers a redirect as it is, so a test sees the gateway's own answer.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Recorder, when set, sees every exchange; the OpenAPI conformance test uses it to check real
// responses against api/openapi.yaml.
var Recorder func(req *http.Request, resp *http.Response, body []byte)

// Admin is shorthand for an admin call with a JSON body (nil for none).
func (h *Harness) Admin(t testing.TB, m Merchant, method, path string, body any) Response {
	t.Helper()
	return h.Do(t, Request{Method: method, Path: path, JSON: body, APIKey: m.APIKey})
}

// CreateList creates a list and returns its id.
func (h *Harness) CreateList(t testing.TB, m Merchant, body map[string]any) string {
	t.Helper()
	r := h.Admin(t, m, http.MethodPost, "/api/v1/lists", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create list: %d %s", r.Status, r.Body)
	}
	return r.Map(t)["id"].(string)
}

// Drain waits until the worker has nothing left to do now: no task of the harness's queues is
// pending or running (tasks scheduled or retried later are not waited for). It is the barrier a
// test uses before it asserts that something did not happen (a second email, a second push):
// whatever an earlier request queued has run by then. Tasks of other tests on the same harness
// count too, so Drain may wait for them; other harnesses' queues are not looked at. It fails the
// test after the timeout.
func (h *Harness) Drain(t testing.TB, timeout time.Duration) {
	t.Helper()
	inspector := h.App.Queue.Stats()
	Eventually(t, timeout, "the worker's queues to drain", func() bool {
		queues, err := inspector.Queues()
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		for _, q := range queues {
			info, err := inspector.GetQueueInfo(q)
			if err != nil {
				t.Fatalf("drain: queue %s: %v", q, err)
			}
			if info.Pending+info.Active > 0 {
				return false
			}
		}
		return true
	})
}

// queuePrefix is a QUEUE_PREFIX of a harness's own: "h", eight random hex digits and "-".
func queuePrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "h" + hex.EncodeToString(b) + "-"
}

// InGoroutine returns t for use in a goroutine the test started. testing allows Fatal and FailNow
// only on the test's own goroutine; through this wrapper they mark the test failed and end just
// the calling goroutine (its deferred calls, such as a WaitGroup's Done, still run).
func InGoroutine(t testing.TB) testing.TB { return goroutineTB{t} }

type goroutineTB struct{ testing.TB }

func (g goroutineTB) Fatal(args ...any) {
	g.TB.Helper()
	g.TB.Error(args...)
	runtime.Goexit()
}

func (g goroutineTB) Fatalf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}

func (g goroutineTB) FailNow() {
	g.TB.Fail()
	runtime.Goexit()
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Lines splits a CSV or text body into lines without the trailing empty one.
func Lines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
}
