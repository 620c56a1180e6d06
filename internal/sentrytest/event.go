package sentrytest

import "fmt"

// Exception is one exception of an event, for assertions.
type Exception struct {
	Type, Value, Module string
	Frames              []Frame
}

// Frame is one stack frame, for assertions.
type Frame struct {
	Function, Module, Filename, AbsPath string
	Lineno                              int
	InApp                               bool
}

// EventID returns the event's event_id.
func (e Event) EventID() string { return e.str("event_id") }

// Level returns the event's level.
func (e Event) Level() string { return e.str("level") }

// Message returns the event's message, whether a string or {"formatted": ...}.
func (e Event) Message() string {
	switch m := e.Payload["message"].(type) {
	case string:
		return m
	case map[string]any:
		if f, _ := m["formatted"].(string); f != "" {
			return f
		}
		s, _ := m["message"].(string)
		return s
	}
	if le, ok := e.Payload["logentry"].(map[string]any); ok {
		s, _ := le["message"].(string)
		return s
	}
	return ""
}

// TraceID returns contexts.trace.trace_id.
func (e Event) TraceID() string { return e.trace("trace_id") }

// SpanID returns contexts.trace.span_id.
func (e Event) SpanID() string { return e.trace("span_id") }

// Tag returns the tag's value in either tags form, and whether it is set.
func (e Event) Tag(name string) (string, bool) {
	switch t := e.Payload["tags"].(type) {
	case map[string]any:
		s, ok := t[name].(string)
		return s, ok
	case []any:
		for _, x := range t {
			if p, ok := x.([]any); ok && len(p) == 2 && p[0] == name {
				s, ok := p[1].(string)
				return s, ok
			}
		}
	}
	return "", false
}

// Exceptions returns the event's exceptions, from {"values": [...]} or a bare array,
// in the order sent (Sentry's order: the outermost exception last).
func (e Event) Exceptions() []Exception {
	var values []any
	switch x := e.Payload["exception"].(type) {
	case []any:
		values = x
	case map[string]any:
		values, _ = x["values"].([]any)
	}
	out := make([]Exception, 0, len(values))
	for _, v := range values {
		m, _ := v.(map[string]any)
		ex := Exception{Type: str(m, "type"), Value: str(m, "value"), Module: str(m, "module")}
		st, _ := m["stacktrace"].(map[string]any)
		frames, _ := st["frames"].([]any)
		for _, f := range frames {
			fm, _ := f.(map[string]any)
			line, _ := fm["lineno"].(float64)
			inApp, _ := fm["in_app"].(bool)
			ex.Frames = append(ex.Frames, Frame{
				Function: str(fm, "function"), Module: str(fm, "module"), Filename: str(fm, "filename"),
				AbsPath: str(fm, "abs_path"), Lineno: int(line), InApp: inApp,
			})
		}
		out = append(out, ex)
	}
	return out
}

// String summarizes the event for test failure messages.
func (e Event) String() string {
	return fmt.Sprintf("event %s level=%s message=%q exceptions=%d trace=%s", e.EventID(), e.Level(), e.Message(), len(e.Exceptions()), e.TraceID())
}

func (e Event) str(k string) string { return str(e.Payload, k) }

func (e Event) trace(k string) string {
	ctx, _ := e.Payload["contexts"].(map[string]any)
	tr, _ := ctx["trace"].(map[string]any)
	return str(tr, k)
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
