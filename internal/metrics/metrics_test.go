package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
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

// slowInspector answers after delay, or fails.
type slowInspector struct {
	delay time.Duration
	fail  bool
}

func (s slowInspector) Queues() ([]string, error) {
	time.Sleep(s.delay)
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
		name string
		in   slowInspector
		up   float64
	}{
		{"answers", slowInspector{}, 1},
		{"fails", slowInspector{fail: true}, 0},
		{"too slow", slowInspector{delay: 5 * time.Second}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := NewQueueCollector(tc.in)
			c.timeout = 100 * time.Millisecond
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			started := time.Now()
			body := scrape(t, reg)
			if took := time.Since(started); took > 3*time.Second {
				t.Fatalf("scrape took %v past the collector's limit", took)
			}
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
