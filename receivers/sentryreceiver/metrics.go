package sentryreceiver

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the endpoint's metrics. The agent creates them once per process.
type Metrics struct {
	requests *prometheus.CounterVec // endpoint, result
	events   *prometheus.CounterVec // source, result
	// connsRefused counts connections closed for being over max_connections.
	connsRefused prometheus.Counter
}

// Request results.
const (
	resultOK           = "ok"           // stored (or every event was limited)
	resultInvalid      = "invalid"      // malformed; 400 (or 404/405/415)
	resultUnauthorized = "unauthorized" // wrong or missing key, wrong project; 401/403
	resultTooLarge     = "too_large"    // over the size limits; 413
	resultTooDeep      = "too_deep"     // JSON nested past max_json_depth; 400
	resultBusy         = "busy"         // max_inflight_bytes reached; 429
	resultFull         = "full"         // queue full; 429
	resultError        = "error"        // storing failed; 503
)

// Event results.
const (
	// EventAccepted counts events stored in the queue.
	EventAccepted = "accepted"
	// EventLimited counts events the agent's volume control dropped.
	EventLimited = "limited"
	// EventRefused counts events the client was told to send again (queue full or
	// failing).
	EventRefused = "refused"
)

// Endpoints, as metric labels.
const (
	endpointEnvelope = "envelope"
	endpointStore    = "store"
)

// NewMetrics creates and registers the endpoint's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_sentry_ingest_requests_total",
			Help: "Requests to the local Sentry endpoint, by endpoint (envelope, store) and result (ok, invalid, unauthorized, too_deep, too_large, busy, full, error).",
		}, []string{"endpoint", "result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_sentry_events_total",
			Help: "Sentry error events by source (sdk: sent by the application's Sentry SDK) and result: accepted (stored in the queue), limited (dropped by volume control), refused (the client was told to retry).",
		}, []string{"source", "result"}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrider_sentry_ingest_connections_refused_total",
			Help: "Connections to the local Sentry endpoint closed at once because receivers.sentry.max_connections were open.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.events, m.connsRefused)
	}
	return m
}

// Events returns the outrider_sentry_events_total counter of source and result, so that
// the agent can count the events it derives from logs and spans (source "log",
// "span") in the same metric.
func (m *Metrics) Events(source, result string) prometheus.Counter {
	return m.events.WithLabelValues(source, result)
}
