// Package metrics is what operators watch: the Prometheus metrics of the gateway and the worker,
// served on their own listener (METRICS_ADDR), never on the public port. The packages that do the
// work know nothing of Prometheus: api tells an observer about requests, allocations,
// validations and webhook intake, core tells one about applied webhook deliveries, and
// internal/app wraps the store and the message sender to count redemptions, pushed codes and
// sent messages. Every label takes values from a small fixed set (route templates, methods,
// statuses, outcomes, platforms, channels, queue names), never a merchant, a code or an address.
//
// On the hot paths a counter's label values are resolved once and the counter kept, so counting
// a request costs a read-locked map look-up and the counter's own atomic add, with no allocation.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of ours.
const Namespace = "coupongate"

// durationBuckets are the request latency histogram's bounds, in seconds: from a millisecond
// (a validation served from a shared look-up) to ten seconds (an export's first byte).
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// lagBuckets are the receive→apply delay histogram's bounds, in seconds: from 10 ms (a worker
// keeping up) to an hour (a backlog).
var lagBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// Metrics is one process's registry and the metrics it counts itself. A nil *Metrics counts
// nothing, so its methods may be called without checking that metrics are on.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpMu       sync.RWMutex
	httpSeries   map[httpKey]httpSeries

	allocations   counters1
	validations   counters1
	webhooks      counters2
	redemptions   counters2
	webhookEvents counters2
	applyDelay    *prometheus.HistogramVec
	applyDelayMu  sync.RWMutex
	applyDelayBy  map[string]prometheus.Observer
	pushCodes     counters2
	messages      counters2
}

// New returns the metrics of a process, with Go's runtime and the process's own collectors
// registered.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), httpSeries: map[httpKey]httpSeries{}, applyDelayBy: map[string]prometheus.Observer{}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.httpRequests = m.counterVec("http_requests_total", "HTTP requests answered, by route template, method and status.", "route", "method", "status")
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help: "Time from a request's arrival to its answer, by route template and method.", Buckets: durationBuckets}, []string{"route", "method"})
	m.reg.MustRegister(m.httpDuration)
	m.allocations = counters1{vec: m.counterVec("allocations_total", "Allocation requests of the API, by outcome: allocated, reused, exhausted, refused, unavailable, error.", "outcome")}
	m.validations = counters1{vec: m.counterVec("validations_total", "Storefront validations, by reason: ok and each refusal reason, rate_limited, or error.", "reason")}
	m.webhooks = counters2{vec: m.counterVec("webhooks_received_total", "Platform webhook deliveries at the intake, by platform and result: received (stored), duplicate, ignored, ping, refused (signature, headers, unknown connection), error.", "platform", "result")}
	m.redemptions = counters2{vec: m.counterVec("redemptions_total", "Uses of codes counted, by platform and channel: API orders, manual and scanner redemptions, reconciliation and platform webhooks (batched or processed alone).", "platform", "channel")}
	m.webhookEvents = counters2{vec: m.counterVec("webhook_order_events_applied_total", "Order events of platform webhook deliveries applied in batches, by platform and order status (a paid event counts a use unless its order and code were counted before).", "platform", "status")}
	m.applyDelay = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "webhook_apply_delay_seconds",
		Help: "Time from a platform webhook delivery's arrival to the worker applying it, by platform.", Buckets: lagBuckets}, []string{"platform"})
	m.reg.MustRegister(m.applyDelay)
	m.pushCodes = counters2{vec: m.counterVec("push_codes_total", "Codes pushed into shops as discounts, by platform and result: pushed or failed (refused by the shop).", "platform", "result")}
	m.messages = counters2{vec: m.counterVec("messages_total", "Messages handed to providers (SMTP, Twilio, FCM), by channel and result: sent or failed.", "channel", "result")}
	return m
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	m.reg.MustRegister(v)
	return v
}

// Register adds a collector (the queue, pool and backlog collectors of this package).
func (m *Metrics) Register(c prometheus.Collector) {
	if m != nil {
		m.reg.MustRegister(c)
	}
}

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: 10 * time.Second})
}

// Serve serves GET /metrics on ln until ctx ends.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
}

// httpKey names a request series.
type httpKey struct {
	route, method string
	status        int
}

// httpSeries are a request series' counter and its route's histogram, resolved once.
type httpSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// ObserveRequest implements api.RequestObserver: one answered request. route is the route
// template ("" when no route took the request).
func (m *Metrics) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	method = knownMethod(method)
	k := httpKey{route: route, method: method, status: status}
	m.httpMu.RLock()
	s, ok := m.httpSeries[k]
	m.httpMu.RUnlock()
	if !ok {
		s = httpSeries{count: m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.httpDuration.WithLabelValues(route, method)}
		m.httpMu.Lock()
		m.httpSeries[k] = s
		m.httpMu.Unlock()
	}
	s.count.Inc()
	s.duration.Observe(elapsed.Seconds())
}

// knownMethod keeps a label's methods to HTTP's: anything else a client sends is "other".
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// Allocation implements api.Observer.
func (m *Metrics) Allocation(outcome string) {
	if m != nil {
		m.allocations.get(outcome).Inc()
	}
}

// Validation implements api.Observer.
func (m *Metrics) Validation(reason string) {
	if m != nil {
		m.validations.get(reason).Inc()
	}
}

// WebhookIntake implements api.Observer.
func (m *Metrics) WebhookIntake(platform, result string) {
	if m != nil {
		m.webhooks.get(platform, result).Inc()
	}
}

// Redemption counts a use of a code, counted by an order event of platform through channel.
func (m *Metrics) Redemption(platform, channel string) {
	if m != nil {
		m.redemptions.get(platform, channel).Inc()
	}
}

// WebhookOrderEvents counts n order events of platform's webhook deliveries applied in a batch
// with the order status status.
func (m *Metrics) WebhookOrderEvents(platform, status string, n int) {
	if m != nil && n > 0 {
		m.webhookEvents.get(platform, status).Add(float64(n))
	}
}

// WebhookApplied implements core.WebhookObserver: a delivery of platform, received at
// receivedAt, was applied now.
func (m *Metrics) WebhookApplied(platform string, receivedAt time.Time) {
	if m == nil || receivedAt.IsZero() {
		return
	}
	m.applyDelayMu.RLock()
	o, ok := m.applyDelayBy[platform]
	m.applyDelayMu.RUnlock()
	if !ok {
		o = m.applyDelay.WithLabelValues(platform)
		m.applyDelayMu.Lock()
		m.applyDelayBy[platform] = o
		m.applyDelayMu.Unlock()
	}
	o.Observe(max(time.Since(receivedAt), 0).Seconds())
}

// PushedCodes counts the outcomes a push of platform recorded.
func (m *Metrics) PushedCodes(platform string, pushed, failed int) {
	if m == nil {
		return
	}
	if pushed > 0 {
		m.pushCodes.get(platform, "pushed").Add(float64(pushed))
	}
	if failed > 0 {
		m.pushCodes.get(platform, "failed").Add(float64(failed))
	}
}

// Message counts a message handed to channel's provider: sent, or failed.
func (m *Metrics) Message(channel string, sent bool) {
	if m == nil {
		return
	}
	result := "sent"
	if !sent {
		result = "failed"
	}
	m.messages.get(channel, result).Inc()
}

// counters1 is a counter vector of one label whose counters are resolved once per value.
type counters1 struct {
	vec *prometheus.CounterVec
	mu  sync.RWMutex
	m   map[string]prometheus.Counter
}

func (c *counters1) get(v string) prometheus.Counter {
	c.mu.RLock()
	ctr, ok := c.m[v]
	c.mu.RUnlock()
	if ok {
		return ctr
	}
	ctr = c.vec.WithLabelValues(v)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]prometheus.Counter{}
	}
	c.m[v] = ctr
	c.mu.Unlock()
	return ctr
}

// counters2 is counters1 for two labels.
type counters2 struct {
	vec *prometheus.CounterVec
	mu  sync.RWMutex
	m   map[[2]string]prometheus.Counter
}

func (c *counters2) get(a, b string) prometheus.Counter {
	k := [2]string{a, b}
	c.mu.RLock()
	ctr, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return ctr
	}
	ctr = c.vec.WithLabelValues(a, b)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[[2]string]prometheus.Counter{}
	}
	c.m[k] = ctr
	c.mu.Unlock()
	return ctr
}
