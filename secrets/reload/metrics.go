package reload

import "github.com/prometheus/client_golang/prometheus"

// Results, the values of the result label.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Metrics are the reloaders' metrics, labelled by method. The agent creates them once
// per process and passes them to every Reloader it builds, including after a
// configuration reload; a Reloader registers nothing itself.
type Metrics struct {
	reloads  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_secrets_reloads_total",
			Help: "Attempts to make the application reload its secrets, by method and result (ok, error). Retries count as attempts.",
		}, []string{"method", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrider_secrets_reload_duration_seconds",
			Help:    "Duration of reload attempts (signal, HTTP request or command), by method.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.reloads, m.duration)
	}
	return m
}

// methodMetrics are the metrics of one method, resolved once.
type methodMetrics struct {
	ok, failed prometheus.Counter
	duration   prometheus.Observer
}

func (m *Metrics) forMethod(method string) methodMetrics {
	return methodMetrics{
		ok:       m.reloads.WithLabelValues(method, ResultOK),
		failed:   m.reloads.WithLabelValues(method, ResultError),
		duration: m.duration.WithLabelValues(method),
	}
}
