package diskqueue

import "github.com/prometheus/client_golang/prometheus"

// Corruption reasons, the values of the reason label of outrider_queue_corrupt_total.
const (
	// ReasonChecksum: a record's payload does not match its CRC-32C.
	ReasonChecksum = "checksum"
	// ReasonLength: a record's length is larger than its segment allows.
	ReasonLength = "length"
	// ReasonHeader: a segment's header is not one this version writes.
	ReasonHeader = "header"
	// ReasonTruncated: a segment ends inside a record (a crash during a write).
	ReasonTruncated = "truncated"
	// ReasonMissing: a segment file disappeared while the queue was open.
	ReasonMissing = "missing"
)

// Metrics are the disk queue metrics, labelled by queue name. Create them once per
// process with NewMetrics and pass them to every Queue, including those opened after
// a configuration reload.
type Metrics struct {
	bytes           *prometheus.GaugeVec
	entries         *prometheus.GaugeVec
	segments        *prometheus.GaugeVec
	appendedEntries *prometheus.CounterVec
	appendedBytes   *prometheus.CounterVec
	ackedEntries    *prometheus.CounterVec
	rejectedFull    *prometheus.CounterVec
	writeErrors     *prometheus.CounterVec
	corrupt         *prometheus.CounterVec
	fsyncDuration   *prometheus.HistogramVec
	quarantined     *prometheus.CounterVec
	quarantineBytes *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg; a nil reg leaves them
// unregistered (tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	q := []string{"queue"}
	m := &Metrics{
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_queue_bytes",
			Help: "Bytes of segment files on disk, the amount bounded by max_size.",
		}, q),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_queue_entries",
			Help: "Entries stored and not yet acknowledged.",
		}, q),
		segments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_queue_segments",
			Help: "Segment files on disk.",
		}, q),
		appendedEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_queue_appended_entries_total",
			Help: "Entries written to the queue.",
		}, q),
		appendedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_queue_appended_bytes_total",
			Help: "Payload bytes written to the queue.",
		}, q),
		ackedEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_queue_acked_entries_total",
			Help: "Entries acknowledged (delivered or dropped) by the consumer.",
		}, q),
		rejectedFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_queue_rejected_full_total",
			Help: "Appends refused because the queue had reached max_size.",
		}, q),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_queue_write_errors_total",
			Help: "Failed segment writes, creations and fsyncs (for example a full disk).",
		}, q),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_queue_corrupt_total",
			Help: "Damaged places found while reading segments, by reason (checksum, length, header, truncated, missing); the rest of such a segment is skipped.",
		}, []string{"queue", "reason"}),
		fsyncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrider_queue_fsync_duration_seconds",
			Help:    "Duration of fsyncs of segment files.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, q),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_queue_quarantined_total",
			Help: "Entries the consumer could not process (undecodable, or processing panicked), set aside in the quarantine directory and acknowledged.",
		}, q),
		quarantineBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_queue_quarantine_bytes",
			Help: "Bytes of quarantined entries kept on disk, the amount bounded by quarantine_max_size.",
		}, q),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.entries, m.segments, m.appendedEntries, m.appendedBytes,
			m.ackedEntries, m.rejectedFull, m.writeErrors, m.corrupt, m.fsyncDuration,
			m.quarantined, m.quarantineBytes)
	}
	return m
}

// instrument is Metrics with the queue label bound, so the hot path does no label
// lookups.
type instrument struct {
	bytes, entries, segments                     prometheus.Gauge
	appendedEntries, appendedBytes, ackedEntries prometheus.Counter
	rejectedFull, writeErrors                    prometheus.Counter
	corrupt                                      *prometheus.CounterVec
	fsync                                        prometheus.Observer
	quarantined                                  prometheus.Counter
	quarantineBytes                              prometheus.Gauge
}

func (m *Metrics) bind(queue string) *instrument {
	if m == nil {
		m = NewMetrics(nil)
	}
	corrupt := m.corrupt.MustCurryWith(prometheus.Labels{"queue": queue})
	// Every reason exists at 0 from the start, so that the dashboard and alerts see a
	// series (and increase() counts the first damage) before anything is damaged.
	for _, r := range []string{ReasonChecksum, ReasonLength, ReasonHeader, ReasonTruncated, ReasonMissing} {
		corrupt.WithLabelValues(r)
	}
	return &instrument{
		bytes:           m.bytes.WithLabelValues(queue),
		entries:         m.entries.WithLabelValues(queue),
		segments:        m.segments.WithLabelValues(queue),
		appendedEntries: m.appendedEntries.WithLabelValues(queue),
		appendedBytes:   m.appendedBytes.WithLabelValues(queue),
		ackedEntries:    m.ackedEntries.WithLabelValues(queue),
		rejectedFull:    m.rejectedFull.WithLabelValues(queue),
		writeErrors:     m.writeErrors.WithLabelValues(queue),
		corrupt:         corrupt,
		fsync:           m.fsyncDuration.WithLabelValues(queue),
		quarantined:     m.quarantined.WithLabelValues(queue),
		quarantineBytes: m.quarantineBytes.WithLabelValues(queue),
	}
}
