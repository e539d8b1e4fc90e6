// Package tracing sends OpenTelemetry traces of the gateway and the worker over OTLP, and only
// when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: otherwise
// Start creates no exporter and no goroutine, and the processes install none of the middleware
// below, so tracing off costs nothing. A trace follows a request through the gateway (Middleware),
// into the tasks it queues (the worker package carries the W3C traceparent in the task's
// headers) and the worker's span per task, out to the providers it calls (Transport, Span).
//
// The exporters read the standard variables themselves: OTEL_EXPORTER_OTLP_PROTOCOL (grpc, or
// http/protobuf, the default), OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT,
// OTEL_EXPORTER_OTLP_INSECURE and their _TRACES_ forms; the SDK reads OTEL_TRACES_SAMPLER,
// OTEL_SERVICE_NAME (the default is the process's name) and OTEL_RESOURCE_ATTRIBUTES.
package tracing

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/coupongate/coupongate/config"
)

// Name is the instrumentation scope of Coupongate's own spans.
const Name = "github.com/coupongate/coupongate"

// Start installs the process's tracer provider when cfg names an OTLP endpoint, service being the
// service name unless OTEL_SERVICE_NAME says otherwise. It answers whether tracing is on and the
// function that flushes and stops it (a no-op when off).
func Start(ctx context.Context, cfg config.Config, service string) (enabled bool, shutdown func(context.Context) error, err error) {
	if cfg.OTelEndpoint == "" {
		return false, func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	if cfg.OTelProtocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return false, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", service)))
	if err == nil {
		var env *resource.Resource
		if env, err = resource.New(ctx, resource.WithFromEnv()); err == nil {
			res, err = resource.Merge(res, env)
		}
	}
	if err != nil {
		_ = exp.Shutdown(ctx)
		return false, nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return true, tp.Shutdown, nil
}

// Tracer is Coupongate's tracer from the installed provider.
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Middleware starts a server span per request, continuing the caller's trace when it sends a
// traceparent. The span is named by method and route template once the route is known, and
// carries the method, the route template and the status: never the path, which holds codes.
func Middleware() gin.HandlerFunc {
	tracer := Tracer()
	return func(c *gin.Context) {
		prop := otel.GetTextMapPropagator()
		ctx := prop.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := tracer.Start(ctx, c.Request.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", c.Request.Method)))
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		route, status := c.FullPath(), c.Writer.Status()
		if route != "" {
			span.SetName(c.Request.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// Transport wraps an HTTP client's transport (nil: http.DefaultTransport) so that each outgoing
// request is a client span carrying the trace's traceparent. The span is named by method and
// host and records the status: never the path or the query, which may hold a store's keys
// (WooCommerce's consumer_secret) or codes.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return transport{base: base, tracer: Tracer()}
}

// transport is Transport's round tripper.
type transport struct {
	base   http.RoundTripper
	tracer trace.Tracer
}

// RoundTrip implements http.RoundTripper. The request is cloned before the traceparent is set
// on it, as RoundTrip must not change its request.
func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(r.Context(), r.Method+" "+r.URL.Host, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("server.address", r.URL.Hostname())))
	defer span.End()
	r = r.Clone(ctx)
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		span.SetStatus(codes.Error, "request failed")
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}

// Client returns c with its transport wrapped by Transport (c itself is left as it was).
func Client(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	cc := *c
	cc.Transport = Transport(c.Transport)
	return &cc
}

// Span starts a client span named name for a provider call that is not HTTP (an SMTP send) when
// on is true; the returned end records err and ends it. Off, it does nothing.
func Span(ctx context.Context, on bool, name string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	if !on {
		return ctx, func(error) {}
	}
	ctx, span := Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, "send failed")
		}
		span.End()
	}
}
