package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestObserveRequestAllocatesNothing: once a series is known, counting a request allocates
// nothing (the hot path's promise), and a method no HTTP knows shares one "other" series. Not
// parallel: testing.AllocsPerRun counts the whole process's allocations (and refuses parallel tests).
func TestObserveRequestAllocatesNothing(t *testing.T) {
	m := New()
	m.ObserveRequest("/storefront/v1/validate", "POST", 200, time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("/storefront/v1/validate", "POST", 200, time.Millisecond)
		m.Validation("not_found")
		m.Allocation("allocated")
		m.WebhookIntake("shopify", "received")
	})
	if allocs != 0 {
		t.Fatalf("a request counted with %v allocations, want 0", allocs)
	}
	m.ObserveRequest("", "BREW", 404, time.Millisecond)
	m.ObserveRequest("", "PROPFIND", 404, time.Millisecond)
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("unmatched", "other", "404")); got != 2 {
		t.Fatalf("unknown methods on no route: %v, want 2 in one series", got)
	}
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("/storefront/v1/validate", "POST", "200")); got != 1002 {
		t.Fatalf("validate requests: %v, want 1002 (one before, AllocsPerRun's warm-up and its 1000 runs)", got)
	}
}

// TestNilMetricsCountNothing: a process without metrics may call every method.
func TestNilMetricsCountNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.ObserveRequest("/x", "GET", 200, time.Second)
	m.Allocation("allocated")
	m.Validation("ok")
	m.WebhookIntake("shopify", "received")
	m.Redemption("shopify", "shopify")
	m.WebhookOrderEvents("shopify", "paid", 2)
	m.WebhookApplied("shopify", time.Now())
	m.PushedCodes("shopify", 1, 1)
	m.Message("email", true)
	m.Register(prometheus.NewGoCollector())
}

// slowInspector is a Redis behind the queue collector: it answers, fails, or, when stuck is not
// nil, hangs in Queues until stuck is closed (at the test's cleanup), so a test can hold a read
// for as long as it looks at a scrape without sleeping. entered, when not nil, is closed by the
// first Queues call, before it hangs; calls counts the calls.
type slowInspector struct {
	fail    bool
	stuck   <-chan struct{}
	entered chan struct{}
	calls   *atomic.Int32
}

func (s slowInspector) Queues() ([]string, error) {
	if s.calls != nil && s.calls.Add(1) == 1 && s.entered != nil {
		close(s.entered)
	}
	if s.stuck != nil {
		<-s.stuck
	}
	if s.fail {
		return nil, errors.New("redis down")
	}
	return []string{"default"}, nil
}

func (s slowInspector) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	return &asynq.QueueInfo{Queue: q, Pending: 3, Active: 1, Scheduled: 2, Retry: 4, Archived: 5, Latency: 1500 * time.Millisecond}, nil
}

// TestQueueCollector: the queue's tasks by state and its latency; a Redis that fails or does not
// answer within the limit gives queue_up 0 and no figures, without holding the scrape past it.
func TestQueueCollector(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fail  bool
		stuck bool
		up    float64
	}{
		{name: "answers", up: 1},
		{name: "fails", fail: true, up: 0},
		{name: "stuck", stuck: true, up: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := slowInspector{fail: tc.fail, entered: make(chan struct{}), calls: new(atomic.Int32)}
			if tc.stuck {
				// Released at cleanup, so the read the scrape gave up on ends with the test.
				stuck := make(chan struct{})
				t.Cleanup(func() { close(stuck) })
				in.stuck = stuck
			}
			c := NewQueueCollector(in)
			c.timeout = 100 * time.Millisecond
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			body := scrapeWithin(t, reg, 3*time.Second)
			if !strings.Contains(body, "coupongate_queue_up "+map[float64]string{0: "0", 1: "1"}[tc.up]) {
				t.Fatalf("queue_up not %v:\n%s", tc.up, body)
			}
			want := []string{`coupongate_queue_tasks{queue="default",state="pending"} 3`, `coupongate_queue_tasks{queue="default",state="archived"} 5`,
				`coupongate_queue_latency_seconds{queue="default"} 1.5`}
			for _, w := range want {
				if strings.Contains(body, w) != (tc.up == 1) {
					t.Errorf("%q present: %v, want %v", w, !(tc.up == 1), tc.up == 1)
				}
			}
			if !tc.stuck {
				return
			}
			// The scrape above returned although the read it started is still inside Queues (it
			// cannot leave before cleanup): the collector did not wait for Redis. A second scrape
			// while that read hangs starts no other read and reports the queue down.
			<-in.entered
			if body := scrapeWithin(t, reg, 3*time.Second); !strings.Contains(body, "coupongate_queue_up 0") {
				t.Fatalf("second scrape while stuck:\n%s", body)
			}
			if n := in.calls.Load(); n != 1 {
				t.Fatalf("%d reads started while the first hangs, want 1", n)
			}
		})
	}
}

// scrape serves reg's text format and returns it.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	m := &Metrics{reg: reg}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// scrapeWithin is scrape for a registry whose collectors may hang: it fails the test when the
// scrape has not answered within budget (well past any collector's limit) instead of waiting
// for it, so a collector that waits on a stuck Redis fails here rather than at go test's timeout.
func scrapeWithin(t *testing.T, reg *prometheus.Registry, budget time.Duration) string {
	t.Helper()
	m := &Metrics{reg: reg}
	rec := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		defer close(served)
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	}()
	select {
	case <-served:
	case <-time.After(budget):
		t.Fatalf("scrape still running after %v: a collector waits past its limit", budget)
	}
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestWorkerCounters: the worker's counters and the receive→apply histogram move by what they
// are told, by platform and channel.
func TestWorkerCounters(t *testing.T) {
	t.Parallel()
	m := New()
	m.WebhookApplied("shopify", time.Now().Add(-3*time.Second))
	m.WebhookApplied("shopify", time.Now().Add(-20*time.Millisecond))
	m.WebhookApplied("shopify", time.Time{}) // unknown arrival: not observed
	m.WebhookOrderEvents("woocommerce", "paid", 3)
	m.PushedCodes("shopify", 5, 2)
	m.Message("sms", true)
	m.Message("sms", false)
	m.Message("sms", false)
	body := scrape(t, m.reg)
	for _, want := range []string{
		`coupongate_webhook_apply_delay_seconds_count{platform="shopify"} 2`,
		`coupongate_webhook_apply_delay_seconds_bucket{platform="shopify",le="0.025"} 1`,
		`coupongate_webhook_apply_delay_seconds_bucket{platform="shopify",le="2.5"} 1`,
		`coupongate_webhook_apply_delay_seconds_bucket{platform="shopify",le="5"} 2`,
		`coupongate_webhook_order_events_applied_total{platform="woocommerce",status="paid"} 3`,
		`coupongate_push_codes_total{platform="shopify",result="pushed"} 5`,
		`coupongate_push_codes_total{platform="shopify",result="failed"} 2`,
		`coupongate_messages_total{channel="sms",result="sent"} 1`,
		`coupongate_messages_total{channel="sms",result="failed"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
}
