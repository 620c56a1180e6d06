package otlpreceiver

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/outrider-dev/outrider/pipeline"
)

// Stream labels taken from resource attributes, the same small fixed set the file
// sources use; the "source" label of OTLP logs is SourceLabel.
var streamLabelAttrs = [...]struct{ label, attr string }{
	{"service", "service.name"},
	{"namespace", "k8s.namespace.name"},
	{"pod", "k8s.pod.name"},
	{"container", "k8s.container.name"},
}

// SourceLabel is the "source" label of log records received over OTLP.
const SourceLabel = "otlp"

// requestIDAttrs are the log attributes read as the request ID, in order.
var requestIDAttrs = [...]string{"request_id", "requestId", "requestID", "http.request_id", "http.request.id", "x_request_id"}

// LogRecords turns OTLP logs into pipeline records for the Loki exporter:
//
//   - the line is the body: a string body as it is, any other body (a map, say) as
//     JSON, so Grafana shows the message the application wrote;
//   - the level comes from the severity number (TRACE..FATAL ranges), else from the
//     severity text;
//   - trace_id, span_id and the request ID (attribute request_id and its usual
//     spellings) go to the record's correlation fields, i.e. structured metadata;
//   - the other log attributes become structured metadata, their names with every
//     character outside [A-Za-z0-9_] replaced by "_" (http.status_code becomes
//     http_status_code), values as strings, maps and lists as JSON — Grafana lists
//     them as fields of the line and LogQL filters on them without parsing;
//   - the stream labels are service, namespace, pod and container from the resource
//     (after enrichment) and source="otlp"; other resource attributes stay out of
//     Loki to keep streams few.
//
// A record without a timestamp gets its observed time, else now.
func LogRecords(ld plog.Logs, now time.Time) []pipeline.Record {
	out := make([]pipeline.Record, 0, ld.LogRecordCount())
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		stream := streamOf(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, record(lrs.At(k), stream, now))
			}
		}
	}
	return out
}

func streamOf(res pcommon.Map) *pipeline.Stream {
	labels := make(map[string]string, len(streamLabelAttrs)+1)
	for _, l := range streamLabelAttrs {
		if v, ok := res.Get(l.attr); ok && v.AsString() != "" {
			labels[l.label] = v.AsString()
		}
	}
	labels["source"] = SourceLabel
	return pipeline.NewStream(labels)
}

func record(lr plog.LogRecord, stream *pipeline.Stream, now time.Time) pipeline.Record {
	r := pipeline.Record{Stream: stream, Line: lr.Body().AsString()}
	switch {
	case lr.Timestamp() != 0:
		r.Time = lr.Timestamp().AsTime()
	case lr.ObservedTimestamp() != 0:
		r.Time = lr.ObservedTimestamp().AsTime()
	default:
		r.Time = now
	}
	r.Level = levelOf(lr.SeverityNumber())
	if r.Level == pipeline.LevelUnknown {
		r.Level = pipeline.ParseLevel(lr.SeverityText())
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		r.TraceID = id.String()
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		r.SpanID = id.String()
	}
	attrs := lr.Attributes()
	reqKey := ""
	for _, k := range requestIDAttrs {
		if v, ok := attrs.Get(k); ok && v.AsString() != "" {
			r.RequestID, reqKey = v.AsString(), k
			break
		}
	}
	if n := attrs.Len(); n > 0 {
		r.Metadata = make([]pipeline.Label, 0, n)
		attrs.Range(func(k string, v pcommon.Value) bool {
			if k != reqKey {
				r.Metadata = append(r.Metadata, pipeline.Label{Name: metadataName(k), Value: v.AsString()})
			}
			return true
		})
	}
	return r
}

// levelOf maps an OTLP severity number to a level.
func levelOf(n plog.SeverityNumber) pipeline.Level {
	switch {
	case n >= plog.SeverityNumberTrace && n <= plog.SeverityNumberTrace4:
		return pipeline.LevelTrace
	case n >= plog.SeverityNumberDebug && n <= plog.SeverityNumberDebug4:
		return pipeline.LevelDebug
	case n >= plog.SeverityNumberInfo && n <= plog.SeverityNumberInfo4:
		return pipeline.LevelInfo
	case n >= plog.SeverityNumberWarn && n <= plog.SeverityNumberWarn4:
		return pipeline.LevelWarn
	case n >= plog.SeverityNumberError && n <= plog.SeverityNumberError4:
		return pipeline.LevelError
	case n >= plog.SeverityNumberFatal && n <= plog.SeverityNumberFatal4:
		return pipeline.LevelFatal
	}
	return pipeline.LevelUnknown
}

// metadataName makes an attribute name a valid structured metadata name.
func metadataName(k string) string {
	ok := k != ""
	for i := 0; i < len(k) && ok; i++ {
		ok = isNameByte(k[i], i)
	}
	if ok {
		return k
	}
	b := []byte(k)
	for i := range b {
		if !isNameByte(b[i], i) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

func isNameByte(c byte, i int) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
}
