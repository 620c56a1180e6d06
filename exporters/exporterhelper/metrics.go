package exporterhelper

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the exporter metrics shared by every exporter, labelled by exporter
// name. Create them once per process with NewMetrics and pass them to every Sender,
// including those built after a configuration reload.
type Metrics struct {
	sentRecords     *prometheus.CounterVec
	sentBytes       *prometheus.CounterVec
	requests        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	batchLatency    *prometheus.HistogramVec
	pendingBytes    *prometheus.GaugeVec
	invalidUTF8     *prometheus.CounterVec
}

// Request results, the values of the result label.
const (
	ResultSuccess   = "success"
	ResultRetry     = "retry"
	ResultPermanent = "permanent"
)

// ReasonRetriesExhausted is the drop reason of a request given up after
// retry.max_elapsed.
const ReasonRetriesExhausted = "retries_exhausted"

// NewMetrics creates the metrics and registers them with reg; a nil reg leaves them
// unregistered (tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sentRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_exporter_sent_records_total",
			Help: "Records the backend accepted.",
		}, []string{"exporter"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_exporter_sent_bytes_total",
			Help: "Bytes of records (as counted for batching) the backend accepted.",
		}, []string{"exporter"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_exporter_requests_total",
			Help: "Push attempts by result: success, retry (failed, will be retried) or permanent (rejected, dropped).",
		}, []string{"exporter", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_exporter_retries_total",
			Help: "Retries scheduled after a failed push attempt.",
		}, []string{"exporter"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_exporter_dropped_records_total",
			Help: "Records dropped because the backend rejected them permanently, by reason.",
		}, []string{"exporter", "reason"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrider_exporter_request_duration_seconds",
			Help:    "Duration of push attempts, by result.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"exporter", "result"}),
		batchLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrider_exporter_batch_latency_seconds",
			Help:    "Time from a batch's arrival at the exporter to its acknowledgement.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, []string{"exporter"}),
		pendingBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_exporter_pending_bytes",
			Help: "Bytes of records accepted but not yet delivered or dropped (buffered, queued, in flight).",
		}, []string{"exporter"}),
		invalidUTF8: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_exporter_invalid_utf8_total",
			Help: "Strings holding invalid UTF-8 that the exporter made valid (each bad byte sequence became U+FFFD) before sending, by field (line, label, metadata).",
		}, []string{"exporter", "field"}),
	}
	if reg != nil {
		reg.MustRegister(m.sentRecords, m.sentBytes, m.requests, m.retries, m.dropped,
			m.requestDuration, m.batchLatency, m.pendingBytes, m.invalidUTF8)
	}
	return m
}

// InvalidUTF8 returns the counter of strings of field ("line", "label", "metadata")
// that exporter made valid UTF-8 before sending. A nil m gives an unregistered one.
func (m *Metrics) InvalidUTF8(exporter, field string) prometheus.Counter {
	if m == nil {
		m = NewMetrics(nil)
	}
	return m.invalidUTF8.WithLabelValues(exporter, field)
}

// instrument is Metrics with the exporter label bound, so the hot path does no label
// lookups.
type instrument struct {
	sentRecords, sentBytes, retries    prometheus.Counter
	reqSuccess, reqRetry, reqPermanent prometheus.Counter
	durSuccess, durRetry, durPermanent prometheus.Observer
	latency                            prometheus.Observer
	pending                            prometheus.Gauge
	dropped                            *prometheus.CounterVec
}

func (m *Metrics) bind(exporter string) *instrument {
	if m == nil {
		m = NewMetrics(nil)
	}
	// The reasons every exporter can drop for exist at 0 from the start, so that
	// rate() and alerts on drops see a series before the first drop.
	for _, r := range []string{ReasonRetriesExhausted, ReasonUnauthorized, ReasonTooLarge, ReasonBadRequest} {
		m.dropped.WithLabelValues(exporter, r)
	}
	return &instrument{
		sentRecords:  m.sentRecords.WithLabelValues(exporter),
		sentBytes:    m.sentBytes.WithLabelValues(exporter),
		retries:      m.retries.WithLabelValues(exporter),
		reqSuccess:   m.requests.WithLabelValues(exporter, ResultSuccess),
		reqRetry:     m.requests.WithLabelValues(exporter, ResultRetry),
		reqPermanent: m.requests.WithLabelValues(exporter, ResultPermanent),
		durSuccess:   m.requestDuration.WithLabelValues(exporter, ResultSuccess),
		durRetry:     m.requestDuration.WithLabelValues(exporter, ResultRetry),
		durPermanent: m.requestDuration.WithLabelValues(exporter, ResultPermanent),
		latency:      m.batchLatency.WithLabelValues(exporter),
		pending:      m.pendingBytes.WithLabelValues(exporter),
		dropped:      m.dropped.MustCurryWith(prometheus.Labels{"exporter": exporter}),
	}
}
