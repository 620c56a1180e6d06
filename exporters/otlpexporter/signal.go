package otlpexporter

import "github.com/outrider-dev/outrider/exporters/exporterhelper"

// signal is what differs between the trace and the metrics exporter: where requests
// go, what their items are called, and what the errors tell the user to check. The
// wire handling is the same: both requests are OTLP export requests that concatenate,
// and both responses carry partial_success as field 1 with the rejected count and the
// message as its fields 1 and 2.
type signal struct {
	name     string // "traces" or "metrics", in messages
	items    string // "spans" or "data points"
	section  string // the configuration section, in hints
	maxField string // the per-request item limit's key
	path     string // appended to an OTLP/HTTP endpoint without a path
	method   string // the gRPC export method
	// exampleGRPC and exampleHTTP are endpoints the messages give as examples.
	exampleGRPC, exampleHTTP string
	hintHTTPPath             string
	hintAuth                 string
	policy                   exporterhelper.StatusPolicy
}

var tracesSignal = newSignal(signal{
	name: "traces", items: "spans", section: "exporters.otlp", maxField: "max_spans",
	path: TracesPath, method: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
	exampleGRPC: "http://tempo:4317", exampleHTTP: "http://tempo:4318",
	hintHTTPPath: "check the endpoint path, e.g. " + TracesPath + " (a URL without a path gets it appended), and that the port is OTLP/HTTP (4318 by default), not gRPC",
	hintAuth:     "check headers (Authorization, and X-Scope-OrgID for a multi-tenant Tempo)",
})

var metricsSignal = newSignal(signal{
	name: "metrics", items: "data points", section: "exporters.otlp_metrics", maxField: "max_data_points",
	path: MetricsPath, method: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
	exampleGRPC: "http://otel-collector:4317", exampleHTTP: "http://prometheus:9090/api/v1/otlp/v1/metrics",
	hintHTTPPath: "check the endpoint path: Prometheus serves OTLP at /api/v1/otlp/v1/metrics (and only with --web.enable-otlp-receiver), Mimir at /otlp/v1/metrics, a Collector at " + MetricsPath + " (a URL without a path gets " + MetricsPath + " appended)",
	hintAuth:     "check headers (Authorization, and X-Scope-OrgID for a multi-tenant Mimir)",
})

func newSignal(s signal) *signal {
	s.policy = exporterhelper.StatusPolicy{
		AuthHint:       s.hintAuth,
		NotFoundReason: ReasonNotFound,
		NotFoundHint:   s.hintHTTPPath,
		TooLargeHint:   s.hintTooLarge(),
		RedirectHint:   "set endpoint to the OTLP/HTTP " + s.name + " URL itself (redirects are not followed)",
	}
	return &s
}

func (s *signal) hintTooLarge() string {
	return "lower batch.max_bytes or " + s.maxField + ", or raise the backend's request size limit"
}
