package otlpreceiver

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the OTLP receiver's metrics. The agent creates them once per process.
type Metrics struct {
	requests *prometheus.CounterVec // signal, transport, result
	items    *prometheus.CounterVec // signal, result
	// connsRefused counts connections closed for being over max_connections.
	connsRefused *prometheus.CounterVec // transport
}

// Request results.
const (
	resultOK       = "ok"        // stored whole
	resultPartial  = "partial"   // stored, some items refused
	resultInvalid  = "invalid"   // malformed or unsupported; 400 / INVALID_ARGUMENT
	resultTooLarge = "too_large" // over max_request_bytes, or would not fit max_inflight_bytes
	resultTooDeep  = "too_deep"  // values nested past max_value_depth; 400 / INVALID_ARGUMENT
	resultBusy     = "busy"      // max_inflight_bytes reached; 429 / RESOURCE_EXHAUSTED
	resultFull     = "full"      // queue full; 429 / RESOURCE_EXHAUSTED
	resultError    = "error"     // storing failed; 503 / UNAVAILABLE
)

// NewMetrics creates and registers the receiver's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_otlp_requests_total",
			Help: "OTLP export requests received, by signal (traces, logs, metrics), transport (grpc, http) and result (ok, partial, invalid, too_deep, too_large, busy, full, error).",
		}, []string{"signal", "transport", "result"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_otlp_items_total",
			Help: "Spans, log records and metric data points received, by signal and result: accepted (stored in the queue), rejected (refused in a partial-success response) or refused (the whole request was refused and the client told to retry or fix it).",
		}, []string{"signal", "result"}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_otlp_connections_refused_total",
			Help: "Connections to the OTLP receiver closed at once because the endpoint had receivers.otlp.max_connections open, by transport (grpc, http).",
		}, []string{"transport"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.items, m.connsRefused)
	}
	return m
}
