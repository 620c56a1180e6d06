package lokiexporter

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/pipeline"
)

// ReprobeInterval is how long an exporter in structured_metadata auto mode sends
// without structured metadata after Loki refused it, before it sends it again to see
// whether Loki now accepts it. A reload, which builds a new exporter, asks at once.
const ReprobeInterval = time.Hour

// MetaEventID is the structured metadata name of the Sentry event a line produced
// (errorevents.MetadataEventID); it is kept in the line without structured metadata.
const MetaEventID = "sentry_event_id"

// lineIDs are the names whose values are kept in the line when structured metadata is
// not sent, in this order. Other metadata (the file name, OTLP attributes) is left
// out: it is not what links a line to a trace or an event.
var lineIDs = [...]string{MetaTraceID, MetaSpanID, MetaRequestID, MetaEventID}

// Metrics are the Loki exporter's own metrics, beside the exporterhelper.Metrics every
// exporter shares. Create them once per process with NewMetrics and pass them to every
// Exporter (WithMetrics), including those built after a configuration reload.
type Metrics struct {
	disallowed *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg; a nil reg leaves them
// unregistered (tests).
//
// outrider_loki_structured_metadata_disallowed{exporter} is 1 while an exporter in
// structured_metadata auto mode sends without structured metadata because Loki
// refused it, else 0.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		disallowed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_loki_structured_metadata_disallowed",
			Help: "1 while the Loki exporter sends without structured metadata (IDs in the line) because Loki refused it (structured_metadata: auto), else 0.",
		}, []string{"exporter"}),
	}
	if reg != nil {
		reg.MustRegister(m.disallowed)
	}
	return m
}

// Option configures an Exporter beyond its Config and Settings.
type Option func(*Exporter)

// WithMetrics makes the exporter report to m (see NewMetrics); without it, its own
// metrics are unregistered.
func WithMetrics(m *Metrics) Option {
	return func(e *Exporter) { e.metrics = m }
}

// metaPolicy decides, for each push, whether structured metadata is sent: always
// (on), never (off), or in auto mode until Loki refuses it, then not for
// ReprobeInterval. It logs the change once.
type metaPolicy struct {
	mode  string
	log   *slog.Logger
	gauge prometheus.Gauge

	mu        sync.Mutex
	stripped  bool      // auto: Loki refused structured metadata
	since     time.Time // when it last did
	announced bool      // the refusal was logged at warn level
}

// strip reports whether the push about to be made at now leaves structured metadata
// out.
func (p *metaPolicy) strip(now time.Time) bool {
	switch p.mode {
	case StructuredMetadataOff:
		return true
	case StructuredMetadataOn:
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stripped && now.Sub(p.since) < ReprobeInterval
}

// refused records that Loki refused structured metadata at now.
func (p *metaPolicy) refused(now time.Time) {
	p.mu.Lock()
	first, was := !p.announced, p.stripped
	p.stripped, p.since, p.announced = true, now, true
	p.mu.Unlock()
	p.gauge.Set(1)
	switch {
	case first:
		p.log.Warn("loki refuses structured metadata (limits_config.allow_structured_metadata is false, or Loki is older than 3.0); "+
			"sending the refused entries again and every entry from now on without it, with trace_id, span_id, request_id and sentry_event_id written into the line",
			"recheck_after", ReprobeInterval.String(),
			"hint", "allow structured metadata in Loki to keep the IDs out of the line, or set exporters.loki.structured_metadata: off to stop asking")
	case !was:
		p.log.Debug("loki still refuses structured metadata", "recheck_after", ReprobeInterval.String())
	}
}

// accepted records that Loki stored entries that carried structured metadata.
func (p *metaPolicy) accepted() {
	if p.mode != StructuredMetadataAuto {
		return
	}
	p.mu.Lock()
	was := p.stripped
	p.stripped = false
	p.mu.Unlock()
	if was {
		p.gauge.Set(0)
		p.log.Info("loki accepts structured metadata again; sending trace_id, span_id and request_id as structured metadata")
	}
}

// hasMetadata reports whether r is sent with structured metadata when it is on.
func hasMetadata(r *pipeline.Record) bool {
	return r.TraceID != "" || r.SpanID != "" || r.RequestID != "" || len(r.Metadata) > 0
}

// lineWithIDs returns r's line as sent without structured metadata: the IDs of
// lineIDs that r carries and whose value the line does not already contain are added
// to it. A line that is a JSON object gets them as keys before its closing brace
// ({"msg":"x","trace_id":"…"}); any other line gets them as logfmt pairs at the end
// of its first line ("msg trace_id=… span_id=…"), so a stack trace under it stays
// intact.
func lineWithIDs(r *pipeline.Record) string {
	var ids [len(lineIDs)][2]string
	n := 0
	add := func(name, value string) {
		if value == "" || strings.Contains(r.Line, value) {
			return
		}
		for _, id := range ids[:n] {
			if id[0] == name {
				return
			}
		}
		ids[n] = [2]string{name, value}
		n++
	}
	add(MetaTraceID, r.TraceID)
	add(MetaSpanID, r.SpanID)
	add(MetaRequestID, r.RequestID)
	for _, m := range r.Metadata {
		if m.Name == MetaEventID {
			add(MetaEventID, m.Value)
		}
	}
	if n == 0 {
		return r.Line
	}
	if body, tail, ok := jsonObjectBody(r.Line); ok {
		var b strings.Builder
		b.Grow(len(r.Line) + n*48)
		b.WriteString(body)
		empty := strings.TrimSpace(body) == "{"
		for i, id := range ids[:n] {
			if i > 0 || !empty {
				b.WriteByte(',')
			}
			writeJSONString(&b, id[0])
			b.WriteByte(':')
			writeJSONString(&b, id[1])
		}
		b.WriteByte('}')
		b.WriteString(tail)
		return b.String()
	}
	first, rest, multi := strings.Cut(r.Line, "\n")
	var b strings.Builder
	b.Grow(len(r.Line) + n*48)
	b.WriteString(first)
	for _, id := range ids[:n] {
		b.WriteByte(' ')
		b.WriteString(id[0])
		b.WriteByte('=')
		writeLogfmtValue(&b, id[1])
	}
	if multi {
		b.WriteByte('\n')
		b.WriteString(rest)
	}
	return b.String()
}

// jsonObjectBody splits line around the closing brace of the JSON object it holds,
// when the whole line is one JSON object (spaces around it allowed).
func jsonObjectBody(line string) (body, tail string, ok bool) {
	t := strings.TrimSpace(line)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' || !json.Valid([]byte(t)) {
		return "", "", false
	}
	end := strings.LastIndexByte(line, '}')
	return line[:end], line[end+1:], true
}

func writeJSONString(b *strings.Builder, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// writeLogfmtValue writes s bare when it holds no space, quote, '=' or control
// character, else quoted.
func writeLogfmtValue(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f {
			b.WriteString(strconv.Quote(s))
			return
		}
	}
	b.WriteString(s)
}
