package config

import (
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/exporters/otlpexporter"
)

// TestOTLPMetricsExporter: exporters.otlp_metrics alone gives the OTLP receiver
// somewhere to send, gets its defaults (OTLP/HTTP), and reports its problems and
// unknown keys with their paths.
func TestOTLPMetricsExporter(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(`data_dir: /tmp/outrider
receivers: {otlp: {}}
exporters:
  otlp_metrics:
    endpoint: http://prometheus:9090/api/v1/otlp/v1/metrics
`))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Exporters.OTLPMetrics
	if m == nil || m.Protocol != otlpexporter.ProtocolHTTP || m.MaxDataPoints != otlpexporter.DefaultMaxDataPoints {
		t.Fatalf("exporters.otlp_metrics = %+v, want the defaults applied", m)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"exporters: {otlp_metrics: {}}", "exporters.otlp_metrics.endpoint: is required, e.g. http://prometheus:9090/api/v1/otlp/v1/metrics"},
		{"exporters: {otlp_metrics: {endpoint: 'http://p:9090', max_spans: 3}}", "exporters.otlp_metrics.max_spans"},
		{"exporters: {otlp_metrics: {endpoint: 'http://p:9090', max_data_points: -1}}", "exporters.otlp_metrics.max_data_points: must be positive"},
		{"receivers: {otlp: {}}", "exporters.otlp_metrics (metrics, e.g. Prometheus)"},
	} {
		_, err := Parse("test.yaml", []byte("data_dir: /tmp/outrider\n"+tt.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want a problem saying %q", tt.yaml, err, tt.want)
		}
	}
}
