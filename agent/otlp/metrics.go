package otlp

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the OTLP receiver's metrics. The agent creates them once per process.
type Metrics struct {
	requests *prometheus.CounterVec // signal, transport, result
	items    *prometheus.CounterVec // signal, result
}

// Request results.
const (
	resultOK       = "ok"        // stored whole
	resultPartial  = "partial"   // stored, some items refused
	resultInvalid  = "invalid"   // malformed or unsupported; 400 / INVALID_ARGUMENT
	resultTooLarge = "too_large" // over max_request_bytes
	resultFull     = "full"      // queue full; 429 / RESOURCE_EXHAUSTED
	resultError    = "error"     // storing failed; 503 / UNAVAILABLE
)

// NewMetrics creates and registers the receiver's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_otlp_requests_total",
			Help: "OTLP export requests received, by signal (traces, logs), transport (grpc, http) and result (ok, partial, invalid, too_large, full, error).",
		}, []string{"signal", "transport", "result"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_otlp_items_total",
			Help: "Spans and log records received, by signal and result: accepted (stored in the queue), rejected (refused in a partial-success response) or refused (the whole request was refused and the client told to retry or fix it).",
		}, []string{"signal", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.items)
	}
	return m
}
