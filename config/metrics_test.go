package config

import (
	"strings"
	"testing"
)

// TestMetricsAndTracingSettings: METRICS_ADDR defaults per process and can be turned off; a
// malformed address or an OTLP protocol other than grpc and http/protobuf is refused at start.
func TestMetricsAndTracingSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		env             map[string]string
		gateway, worker string
		endpoint, err   string
	}{
		{name: "defaults", gateway: "127.0.0.1:9090", worker: "127.0.0.1:9091"},
		{name: "one address for both", env: map[string]string{"METRICS_ADDR": ":9100"}, gateway: ":9100", worker: ":9100"},
		{name: "off", env: map[string]string{"METRICS_ADDR": "off"}},
		{name: "not an address", env: map[string]string{"METRICS_ADDR": "9090"}, err: "METRICS_ADDR"},
		{name: "traces", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			gateway: "127.0.0.1:9090", worker: "127.0.0.1:9091", endpoint: "http://collector:4318"},
		{name: "the traces' own endpoint first", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces"}, gateway: "127.0.0.1:9090", worker: "127.0.0.1:9091", endpoint: "http://b:4318/v1/traces"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, gateway: "127.0.0.1:9090", worker: "127.0.0.1:9091"},
		{name: "http/json refused", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, err: "OTEL_EXPORTER_OTLP_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g, w := c.MetricsAddrFor("gateway"), c.MetricsAddrFor("worker"); g != tc.gateway || w != tc.worker {
				t.Errorf("gateway %q worker %q, want %q %q", g, w, tc.gateway, tc.worker)
			}
			if c.OTelEndpoint != tc.endpoint {
				t.Errorf("endpoint %q, want %q", c.OTelEndpoint, tc.endpoint)
			}
		})
	}
}
