package errorevents

import (
	"time"

	"github.com/getsentry/sentry-go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/processors/stacktrace"
)

// OpenTelemetry semantic conventions for exceptions.
const (
	exceptionEvent      = "exception"
	attrExceptionType   = "exception.type"
	attrExceptionMsg    = "exception.message"
	attrExceptionStack  = "exception.stacktrace"
	attrRequestID       = "request_id"
	attrHTTPRequestID   = "http.request_id"
	spanErrorType       = "SpanError"
	maxEventsPerRequest = 100
)

// FromTraces returns an event for every exception event of every span, and one for
// each span with status ERROR that has none, with the span's trace context. Events
// the limiter holds back are left out.
func (b *Builder) FromTraces(td ptrace.Traces) []*sentry.Event {
	if !*b.cfg.FromSpans {
		return nil
	}
	var out []*sentry.Event
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len() && len(out) < maxEventsPerRequest; i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len() && len(out) < maxEventsPerRequest; k++ {
				out = append(out, b.fromSpan(spans.At(k), res)...)
			}
		}
	}
	return out
}

func (b *Builder) fromSpan(sp ptrace.Span, res pcommon.Map) []*sentry.Event {
	var out []*sentry.Event
	evs := sp.Events()
	for i := 0; i < evs.Len(); i++ {
		e := evs.At(i)
		if e.Name() != exceptionEvent {
			continue
		}
		a := e.Attributes()
		typ, msg, stack := str(a, attrExceptionType), str(a, attrExceptionMsg), str(a, attrExceptionStack)
		if typ == "" && msg == "" {
			continue
		}
		ts := e.Timestamp().AsTime()
		if e.Timestamp() == 0 {
			ts = sp.EndTimestamp().AsTime()
		}
		if ev := b.spanEvent(sp, res, typ, msg, stack, ts); ev != nil {
			out = append(out, ev)
		}
	}
	if len(out) == 0 && sp.Status().Code() == ptrace.StatusCodeError {
		msg := sp.Status().Message()
		if msg == "" {
			msg = sp.Name() + " failed"
		}
		if ev := b.spanEvent(sp, res, spanErrorType, msg, "", sp.EndTimestamp().AsTime()); ev != nil {
			out = append(out, ev)
		}
	}
	return out
}

func (b *Builder) spanEvent(sp ptrace.Span, res pcommon.Map, typ, msg, stack string, ts time.Time) *sentry.Event {
	ev := b.newEvent(SourceSpan, ts)
	ev.Level = sentry.LevelError
	ev.Transaction = sp.Name()
	for _, k := range []string{"service.name", "service.version", "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "deployment.environment"} {
		if v, ok := res.Get(k); ok && v.AsString() != "" {
			ev.Tags[k] = v.AsString()
		}
	}
	if v, ok := res.Get("service.version"); ok && ev.Release == "" {
		ev.Release = v.AsString()
	}
	exc := sentry.Exception{Type: typ, Value: msg}
	if exc.Type == "" {
		exc.Type = "Error"
	}
	ev.Platform = "other"
	if tr, ok := stacktrace.Parse(stack); ok && len(tr.Exceptions) > 0 {
		ev.Platform = platformOf(tr.Language)
		parsed := exceptions(tr)
		last := parsed[len(parsed)-1]
		exc.Stacktrace, exc.Module = last.Stacktrace, last.Module
		ev.Exception = append(parsed[:len(parsed)-1], exc)
	} else {
		ev.Exception = []sentry.Exception{exc}
	}
	requestID := str(sp.Attributes(), attrRequestID)
	if requestID == "" {
		requestID = str(sp.Attributes(), attrHTTPRequestID)
	}
	b.correlate(ev, sp.TraceID().String(), sp.SpanID().String(), requestID)
	if !b.finish(ev, SourceSpan, exc.Type, exc.Value, framesOf(exc)) {
		return nil
	}
	return ev
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}
