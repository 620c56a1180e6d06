package redact

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the scrubber's metrics. The agent creates them once per process and
// gives them to every Registry it builds; a Registry registers nothing itself. No
// metric carries a value or an owner as a label.
type Metrics struct {
	values   prometheus.Gauge
	patterns prometheus.Gauge
	short    prometheus.Counter
	scrubbed *prometheus.CounterVec

	retained        prometheus.Gauge
	retainedDropped prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		values: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrider_redact_values",
			Help: "Distinct secret values registered for scrubbing.",
		}),
		patterns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrider_redact_patterns",
			Help: "Distinct strings searched for: the registered values and their encodings.",
		}),
		short: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrider_redact_values_ignored_total",
			Help: "Values not registered because they are shorter than 6 bytes.",
		}),
		scrubbed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_redact_scrubbed_total",
			Help: "Record fields in which at least one secret value was replaced, by field (line, request_id, metadata).",
		}, []string{"field"}),
		retained: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrider_redact_values_retained",
			Help: "Values no secret holds any more (rotated, removed), still scrubbed until their retention (secrets.redact_retention) ends.",
		}),
		retainedDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrider_redact_retained_dropped_total",
			Help: "Retained old values dropped before their retention ended because more than secrets.redact_max_retained were kept.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.values, m.patterns, m.short, m.scrubbed, m.retained, m.retainedDropped)
	}
	return m
}
