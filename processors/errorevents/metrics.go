package errorevents

import "github.com/prometheus/client_golang/prometheus"

// Metrics count error events by source (log, span, sdk) and result (sent: handed to
// the queue; limited: held back by the per-fingerprint limit; sampled: dropped by
// sample_rate; failed: could not be queued).
type Metrics struct {
	events *prometheus.CounterVec
}

// NewMetrics creates and registers the metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outrider_error_events_total",
		Help: "Error events by source (log, span, sdk) and result (sent, limited, sampled, failed).",
	}, []string{"source", "result"})}
	if reg != nil {
		reg.MustRegister(m.events)
	}
	return m
}
