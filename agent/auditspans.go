package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// auditScope is the instrumentation scope of audit spans.
const auditScope = "outrider.audit"

// auditTraces turns audit events into spans, one per event, under the application's
// resource (so they appear with its own traces in Tempo): the span is named
// "outrider.secrets <kind>", covers the operation's duration, has status Error when the
// event failed, and carries the event — kind, outcome, path, lease, version, TTL,
// error, never a value — as attributes and as a span event of the same name.
func auditTraces(events []audit.Event, resource map[string]string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for k, v := range resource {
		rs.Resource().Attributes().PutStr(k, v)
	}
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(auditScope)
	spans := ss.Spans()
	spans.EnsureCapacity(len(events))
	for _, e := range events {
		sp := spans.AppendEmpty()
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		fillRandom(tid[:])
		fillRandom(sid[:])
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName("outrider.secrets " + string(e.Kind))
		sp.SetKind(ptrace.SpanKindInternal)
		end := e.Time
		if end.IsZero() {
			end = time.Now()
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-e.Duration)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		ev := sp.Events().AppendEmpty()
		ev.SetName(string(e.Kind))
		ev.SetTimestamp(pcommon.NewTimestampFromTime(end))
		for _, m := range []pcommon.Map{sp.Attributes(), ev.Attributes()} {
			for k, v := range auditLine(e) {
				switch x := v.(type) {
				case string:
					m.PutStr("outrider.audit."+k, x)
				case int:
					m.PutInt("outrider.audit."+k, int64(x))
				}
			}
		}
		if e.Outcome != "" && e.Outcome != "ok" {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(e.Error)
		}
	}
	return td
}

func fillRandom(b []byte) {
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	if b[0] == 0 {
		b[0] = 1 // never the all-zero (invalid) ID
	}
}

// exportSpans sends events as audit spans, best effort: like the audit stream, they
// are an annotation, and the agent's log keeps every event.
func (a *auditLog) exportSpans(ctx context.Context, sink pipeline.TraceSink, events []audit.Event, resource map[string]string) {
	td := auditTraces(events, resource)
	var m ptrace.ProtoMarshaler
	data, err := m.MarshalTraces(td)
	if err != nil {
		return
	}
	if err := sink.ExportTraces(ctx, pipeline.TraceBatch{Data: data, Spans: len(events)}); err != nil {
		a.dropped.Add(float64(len(events)))
	}
}
