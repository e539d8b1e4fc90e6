package tracing_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/app"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/internal/tracing"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

// receiver is an OTLP/HTTP collector: it decodes the protobuf export requests posted to
// /v1/traces and keeps their spans with their services.
type receiver struct {
	mu    sync.Mutex
	spans []span
}

type span struct {
	service string
	*tracepb.Span
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not OTLP/HTTP protobuf", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	var export coltrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(raw, &export)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range export.GetResourceSpans() {
		var service string
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, span{service, s})
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// find waits up to 20 s for a span that ok accepts.
func (r *receiver) find(t *testing.T, what string, ok func(span) bool) span {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		for _, s := range r.spans {
			if ok(s) {
				r.mu.Unlock()
				return s
			}
		}
		n := len(r.spans)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s among %d spans received", what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTracingOffStartsNothing: without OTEL_EXPORTER_OTLP_ENDPOINT no provider is installed, no
// goroutine starts, and the gateway gets no trace middleware. It runs before the test that turns
// tracing on for the process. Not parallel (nor are the others here): it counts the process's
// goroutines and reads the process-wide tracer provider, which the other two set.
func TestTracingOffStartsNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	on, shutdown, err := tracing.Start(context.Background(), config.Config{}, "gateway")
	if err != nil || on {
		t.Fatalf("Start without an endpoint: on %v, err %v", on, err)
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Fatalf("goroutines %d before, %d after", before, after)
	}
	if _, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider); sdk {
		t.Fatal("an SDK tracer provider was installed")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := apptest.Start(t, env, apptest.Options{})
	if h.App.Tracing || h.App.Worker.Deps().Tracer != nil {
		t.Fatal("the app traces without an endpoint")
	}
	r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/healthz", Header: http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}})
	if r.Header.Get("Traceparent") != "" || r.Status == 0 {
		t.Fatalf("healthz: %d %v", r.Status, r.Header)
	}
}

// TestTraceFollowsRequestIntoTask: with OTEL_EXPORTER_OTLP_ENDPOINT naming an OTLP/HTTP
// receiver, an import's upload is a server span named by its route, and the worker's span of the
// task it queued belongs to the same trace, as the upload span's child. Neither carries the
// list's id, which is in the path.
func TestTraceFollowsRequestIntoTask(t *testing.T) {
	rec := &receiver{}
	collector := httptest.NewServer(rec)
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	// StartTracing installs the process-wide provider: the one before comes back afterwards, so a
	// later TestTracingOffStartsNothing (-count=2) finds none.
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	stop, err := app.StartTracing(context.Background(), cfg, "gateway", dbtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	h := apptest.Start(t, env, apptest.Options{Worker: true})
	if !h.App.Tracing {
		t.Fatal("the app does not trace with an endpoint set")
	}
	m := h.NewMerchant(t, "Traced Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Traced"})
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + listID + "/imports",
		Body: strings.NewReader("TRACED-1\nTRACED-2\n"), ContentType: "text/plain", APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	server := rec.find(t, "server span of the upload", func(s span) bool {
		return s.GetName() == "POST /api/v1/lists/:list_id/imports" && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER
	})
	task := rec.find(t, "worker span of import:run", func(s span) bool {
		return s.GetName() == "import:run" && s.GetKind() == tracepb.Span_SPAN_KIND_CONSUMER
	})
	if !bytes.Equal(task.GetTraceId(), server.GetTraceId()) || !bytes.Equal(task.GetParentSpanId(), server.GetSpanId()) {
		t.Fatalf("task span trace %s parent %s; upload span trace %s id %s", hex.EncodeToString(task.GetTraceId()),
			hex.EncodeToString(task.GetParentSpanId()), hex.EncodeToString(server.GetTraceId()), hex.EncodeToString(server.GetSpanId()))
	}
	if server.service != "gateway" {
		t.Errorf("service %q", server.service)
	}
	for _, s := range []span{server, task} {
		for _, a := range s.GetAttributes() {
			if strings.Contains(a.GetValue().String(), listID) {
				t.Errorf("span %s attribute %s carries the list id", s.GetName(), a.GetKey())
			}
		}
	}
}

// TestTransportCarriesTheTrace: a provider call through Transport is a client span of the
// caller's trace, named by method and host only, and the provider receives its traceparent. Not
// parallel: it installs its own process-wide tracer provider.
func TestTransportCarriesTheTrace(t *testing.T) {
	var got string
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Traceparent")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(provider.Close)
	exp := &memoryExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	ctx, parent := tp.Tracer("test").Start(context.Background(), "task")
	client := tracing.Client(&http.Client{Timeout: 5 * time.Second})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, provider.URL+"/2010-04-01/Accounts/AC123/Messages.json?secret=s3cr3t", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parent.End()
	traceID := parent.SpanContext().TraceID().String()
	if !strings.Contains(got, traceID) {
		t.Fatalf("provider got traceparent %q, want trace %s", got, traceID)
	}
	host := strings.TrimPrefix(provider.URL, "http://")
	var client0 sdktrace.ReadOnlySpan
	for _, s := range exp.spans {
		if s.Name() == "POST "+host {
			client0 = s
		}
	}
	if client0 == nil || client0.SpanContext().TraceID().String() != traceID || client0.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("no client span of the trace named POST %s", host)
	}
	for _, a := range client0.Attributes() {
		if v := a.Value.Emit(); strings.Contains(v, "AC123") || strings.Contains(v, "s3cr3t") {
			t.Errorf("attribute %s carries the path or query: %s", a.Key, v)
		}
	}
}

// memoryExporter keeps ended spans.
type memoryExporter struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (e *memoryExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans = append(e.spans, spans...)
	return nil
}

func (e *memoryExporter) Shutdown(context.Context) error { return nil }
