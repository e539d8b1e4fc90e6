package metrics_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/dbtest"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

const shopifySecret = "metrics-test-shopify-secret"

// TestOperatorsSeeWhatTheGatewayDid drives a few requests through a gateway (with its worker)
// and scrapes its metrics listener: each counter moved by exactly what was done, with its
// labels; the public port has no /metrics; no label carries a merchant, a list, a code or an
// address.
func TestOperatorsSeeWhatTheGatewayDid(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.ShopifyAPISecret = shopifySecret
	}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr := h.App.Worker.ServeMetrics(ctx)
	if addr == "" {
		t.Fatal("metrics not served")
	}
	m := h.NewMerchant(t, "Metrics Shop")
	listID := h.CreateList(t, m, map[string]any{"name": "Metrics"})
	var code string
	allocate := func(email string) int {
		r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+listID+"/allocations",
			map[string]any{"recipient": map[string]any{"email": email}, "campaign": "c1"})
		if r.Status < 300 {
			code, _ = r.Map(t)["code"].(string)
		}
		return r.Status
	}
	// An empty list is exhausted; then two codes arrive.
	if s := allocate("first@example.com"); s != http.StatusConflict {
		t.Fatalf("allocation from an empty list: %d", s)
	}
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + listID + "/imports",
		Body: strings.NewReader("METRIC-CODE-1\nMETRIC-CODE-2\n"), ContentType: "text/plain", APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	importID, _ := r.Map(t)["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports/"+importID, nil).Map(t)["status"].(string)
		if st == "succeeded" {
			break
		}
		if time.Now().After(deadline) || st == "failed" {
			t.Fatalf("import %s", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := allocate("ann@example.com"); s != http.StatusCreated {
		t.Fatalf("allocation: %d", s)
	}
	if s := allocate("ann@example.com"); s != http.StatusOK {
		t.Fatalf("allocation again for the same recipient: %d", s)
	}
	// The code's order is paid, twice (a retry): one use counted. The other code's order comes
	// from a platform named by the merchant's own word: counted as other.
	other := map[string]string{"METRIC-CODE-1": "METRIC-CODE-2", "METRIC-CODE-2": "METRIC-CODE-1"}[code]
	for _, o := range []struct{ platform, code string }{{"custom", code}, {"custom", code}, {"my-till-system", other}} {
		o := h.Admin(t, m, http.MethodPost, "/api/v1/orders", map[string]any{"platform": o.platform, "shop": "metrics-shop",
			"order_id": "order-" + o.platform, "status": "paid", "codes": []string{o.code}})
		if o.Status != http.StatusOK {
			t.Fatalf("order: %d %s", o.Status, o.Body)
		}
	}
	v := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/storefront/v1/validate", Storefront: m.StorefrontKey,
		JSON: map[string]any{"code": "NO-SUCH-CODE"}})
	if v.Status != http.StatusOK || v.Map(t)["reason"] != "not_found" {
		t.Fatalf("validation of an unknown code: %d %s", v.Status, v.Body)
	}
	// Two Shopify deliveries: one whose signature does not verify, one genuine for a shop that is
	// not connected.
	body := []byte(`{"id": 1}`)
	for _, sig := range []string{"bad", shopifyfake.SignWebhook(shopifySecret, body)} {
		hdr := http.Header{}
		hdr.Set("X-Shopify-Topic", "orders/paid")
		hdr.Set("X-Shopify-Hmac-Sha256", sig)
		hdr.Set("X-Shopify-Shop-Domain", "not-connected.myshopify.com")
		hdr.Set("X-Shopify-Webhook-Id", uuid.NewString())
		hdr.Set("X-Shopify-Event-Id", uuid.NewString())
		hdr.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
		hdr.Set("X-Shopify-API-Version", "2025-01")
		h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/webhooks/shopify", Body: bytes.NewReader(body), ContentType: "application/json", Header: hdr})
	}
	// The public port does not serve metrics.
	if r := h.Do(t, apptest.Request{Method: http.MethodGet, Path: "/metrics"}); r.Status != http.StatusNotFound {
		t.Fatalf("GET /metrics on the API's port: %d", r.Status)
	}

	families := scrape(t, "http://"+addr+"/metrics")
	allocations := "/api/v1/lists/:list_id/allocations"
	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"coupongate_allocations_total", map[string]string{"outcome": "exhausted"}, 1},
		{"coupongate_allocations_total", map[string]string{"outcome": "allocated"}, 1},
		{"coupongate_allocations_total", map[string]string{"outcome": "reused"}, 1},
		{"coupongate_validations_total", map[string]string{"reason": "not_found"}, 1},
		{"coupongate_webhooks_received_total", map[string]string{"platform": "shopify", "result": "refused"}, 1},
		{"coupongate_webhooks_received_total", map[string]string{"platform": "shopify", "result": "ignored"}, 1},
		{"coupongate_http_requests_total", map[string]string{"route": allocations, "method": "POST", "status": "409"}, 1},
		{"coupongate_http_requests_total", map[string]string{"route": allocations, "method": "POST", "status": "201"}, 1},
		{"coupongate_http_requests_total", map[string]string{"route": allocations, "method": "POST", "status": "200"}, 1},
		{"coupongate_http_requests_total", map[string]string{"route": "/storefront/v1/validate", "method": "POST", "status": "200"}, 1},
		{"coupongate_http_requests_total", map[string]string{"route": "/webhooks/shopify", "method": "POST", "status": "401"}, 1},
		{"coupongate_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "status": "404"}, 1},
		{"coupongate_http_request_duration_seconds", map[string]string{"route": allocations, "method": "POST"}, 3},
		{"coupongate_redemptions_total", map[string]string{"platform": "custom", "channel": "custom"}, 1},
		{"coupongate_redemptions_total", map[string]string{"platform": "other", "channel": "other"}, 1},
		{"coupongate_db_pool_max_conns", nil, 16},
		{"coupongate_queue_up", nil, 1},
		{"coupongate_webhook_backlog_up", nil, 1},
		{"coupongate_webhook_backlog", map[string]string{"platform": "woocommerce"}, 0},
	} {
		if got, ok := value(families, c.family, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.family, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "coupongate_db_pool_total_conns", "coupongate_db_pool_acquire_waits_total"} {
		if families[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if _, ok := value(families, "coupongate_queue_tasks", map[string]string{"queue": "bulk", "state": "pending"}); !ok {
		t.Error("the bulk queue's pending tasks are missing")
	}
	// No label value names a merchant, a list, a code or an address.
	forbidden := []string{m.ID, listID, importID, "METRIC-CODE", "NO-SUCH-CODE", "example.com", "not-connected", "my-till", "order-", "metrics-shop"}
	for name, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				for _, bad := range forbidden {
					if strings.Contains(l.GetValue(), bad) {
						t.Errorf("%s{%s=%q} carries %q", name, l.GetName(), l.GetValue(), bad)
					}
				}
			}
		}
	}
}

// scrape reads a /metrics answer into its families.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("scrape is not Prometheus's text format: %v\n%s", err, raw)
	}
	return families
}

// value is the value of family's series with exactly labels (a histogram's count).
func value(families map[string]*dto.MetricFamily, family string, labels map[string]string) (float64, bool) {
	f := families[family]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
		return 0, false
	}
	return 0, false
}
