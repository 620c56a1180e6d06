package inject

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the injector's own metrics. Create them once per process.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	badRequests *prometheus.CounterVec
	certReloads *prometheus.CounterVec
	certExpiry  prometheus.Gauge
}

// NewMetrics registers the injector's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_inject_requests_total",
			Help: "Admission requests answered, by result: injected, skipped (no opt-in, injected already, not a pod creation), reordered (injected already; the sidecar moved back to its sidecar-order place after a mesh's injector), denied (invalid annotations), error (unreadable request).",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrider_inject_request_duration_seconds",
			Help:    "Time to answer an admission request, from the first byte read to the answer written, by result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"result"}),
		badRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_inject_bad_requests_total",
			Help: "Requests to /mutate refused before admission, by HTTP status (400 malformed, 405 method, 413 too large, 415 content type, 429 busy: MaxInflightBytes of requests in hand, 503 cancelled while waiting).",
		}, []string{"code"}),
		certReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_inject_certificate_reloads_total",
			Help: "Serving certificate loads after a change of its files, by result (ok, error: the previous certificate stays in use).",
		}, []string{"result"}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrider_inject_certificate_expiry_timestamp_seconds",
			Help: "When the serving certificate in use expires, in seconds since the epoch.",
		}),
	}
	for _, r := range []string{ResultInjected, ResultSkipped, ResultReordered, ResultDenied, ResultError} {
		m.requests.WithLabelValues(r)
		m.duration.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.certReloads.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.badRequests, m.certReloads, m.certExpiry)
	}
	return m
}
