package tail

import "github.com/prometheus/client_golang/prometheus"

// Reasons of outrider_tail_lost_bytes_total.
const (
	// lostTruncated: bytes seen in a file that neither it nor its copy held any more when
	// it was found truncated (copytruncate's copy→truncate window, or a truncation with
	// no copy).
	lostTruncated = "truncated"
	// lostDeleted: bytes of a rotated file that was deleted (or compressed away) while
	// it waited, closed, for its turn to be read.
	lostDeleted = "deleted"
)

// Metrics are the file sources' metrics, labelled by source name. The agent creates
// them once per process and shares them between every Source it builds, including
// after a configuration reload; a Source registers nothing itself, and adds to the
// gauges only what it contributes, removing it when it stops.
type Metrics struct {
	linesRead       *prometheus.CounterVec
	bytesRead       *prometheus.CounterVec
	linesTruncated  *prometheus.CounterVec
	invalidUTF8     *prometheus.CounterVec
	filesOpen       *prometheus.GaugeVec
	rotations       *prometheus.CounterVec
	truncations     *prometheus.CounterVec
	copies          *prometheus.CounterVec
	cutLines        *prometheus.CounterVec
	lostBytes       *prometheus.CounterVec
	positionLag     *prometheus.GaugeVec
	batchesInflight *prometheus.GaugeVec
	malformed       *prometheus.CounterVec
	pathUnmatched   *prometheus.CounterVec
	partsJoined     *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"source"})
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"source"})
	}
	m := &Metrics{
		linesRead:      counter("outrider_tail_lines_read_total", "Lines read from files."),
		bytesRead:      counter("outrider_tail_bytes_read_total", "Bytes read from files."),
		linesTruncated: counter("outrider_tail_lines_truncated_total", "Lines longer than max_line_bytes, cut to that size."),
		invalidUTF8:    counter("outrider_tail_invalid_utf8_total", "Lines with invalid UTF-8, whose bad bytes were replaced with U+FFFD."),
		filesOpen:      gauge("outrider_tail_files_open", "Files open for reading."),
		rotations:      counter("outrider_tail_rotations_total", "Files replaced by a new file at the same path (rename and create)."),
		truncations:    counter("outrider_tail_truncations_total", "Files found shorter than the read position (copytruncate, truncation), read again from the start."),
		copies:         counter("outrider_tail_truncation_copies_total", "Truncated files whose unread part was read from their copy (copytruncate)."),
		cutLines:       counter("outrider_tail_cut_lines_dropped_total", "Unfinished lines whose rest a truncation destroyed; dropped, never shipped cut."),
		lostBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_tail_lost_bytes_total",
			Help: "Bytes seen in a file and destroyed before they could be read: reason=truncated (copytruncate's copy-to-truncate window, or a truncation with no copy), reason=deleted (a rotated file deleted while waiting to be read).",
		}, []string{"source", "reason"}),
		positionLag:     gauge("outrider_tail_position_lag_bytes", "Bytes of the tailed files not yet acknowledged by the sink."),
		batchesInflight: gauge("outrider_tail_batches_inflight", "Batches handed to the sink and not yet acknowledged."),
		malformed:       counter("outrider_tail_malformed_lines_total", "Lines of a cri or docker file not in that format, passed on as they are."),
		pathUnmatched:   counter("outrider_tail_path_metadata_unmatched_total", "Files whose path does not follow the path_metadata layout, read without the labels it gives."),
		partsJoined:     counter("outrider_tail_runtime_parts_joined_total", "Parts of lines the container runtime split (CRI P, docker without a line end), joined back to the line."),
	}
	if reg != nil {
		reg.MustRegister(m.linesRead, m.bytesRead, m.linesTruncated, m.invalidUTF8, m.filesOpen,
			m.rotations, m.truncations, m.copies, m.cutLines, m.lostBytes, m.positionLag, m.batchesInflight,
			m.malformed, m.pathUnmatched, m.partsJoined)
	}
	return m
}

// sourceMetrics are the metrics of one source, resolved once.
type sourceMetrics struct {
	linesRead, bytesRead, linesTruncated, invalidUTF8 prometheus.Counter
	rotations, truncations, copies, cutLines          prometheus.Counter
	lostTruncated, lostDeleted                        prometheus.Counter
	filesOpen, positionLag, batchesInflight           prometheus.Gauge
	malformed, pathUnmatched, partsJoined             prometheus.Counter
}

func (m *Metrics) forSource(name string) sourceMetrics {
	return sourceMetrics{
		linesRead:       m.linesRead.WithLabelValues(name),
		bytesRead:       m.bytesRead.WithLabelValues(name),
		linesTruncated:  m.linesTruncated.WithLabelValues(name),
		invalidUTF8:     m.invalidUTF8.WithLabelValues(name),
		rotations:       m.rotations.WithLabelValues(name),
		truncations:     m.truncations.WithLabelValues(name),
		copies:          m.copies.WithLabelValues(name),
		cutLines:        m.cutLines.WithLabelValues(name),
		lostTruncated:   m.lostBytes.WithLabelValues(name, lostTruncated),
		lostDeleted:     m.lostBytes.WithLabelValues(name, lostDeleted),
		filesOpen:       m.filesOpen.WithLabelValues(name),
		positionLag:     m.positionLag.WithLabelValues(name),
		batchesInflight: m.batchesInflight.WithLabelValues(name),
		malformed:       m.malformed.WithLabelValues(name),
		pathUnmatched:   m.pathUnmatched.WithLabelValues(name),
		partsJoined:     m.partsJoined.WithLabelValues(name),
	}
}
