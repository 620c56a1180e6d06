package errorevents

import (
	"strings"
)

// Process treats an event the application's Sentry SDK sent to the sidecar (decoded
// JSON): it scrubs live secret values from every string and object key, adds the pod's tags, the
// environment and release when missing, the request_id and trace_id tags and Grafana
// links, and admits it through the same per-fingerprint limit as derived events. It
// returns false for an event to leave out (limited or sampled).
func (b *Builder) Process(ev map[string]any) bool {
	if b.red != nil && !b.red.Empty() {
		b.scrubObject(ev)
	}
	tags := tagSetter(ev)
	for k, v := range b.tags {
		tags.setDefault(k, v)
	}
	tags.set("outrider.source", SourceSDK)
	for _, k := range []string{"environment", "release"} {
		want := b.cfg.Environment
		if k == "release" {
			want = b.cfg.Release
		}
		if s, _ := ev[k].(string); s == "" && want != "" {
			ev[k] = want
		}
	}
	contexts, _ := ev["contexts"].(map[string]any)
	traceID := ""
	if tc, ok := contexts["trace"].(map[string]any); ok {
		traceID, _ = tc["trace_id"].(string)
	}
	requestID := tags.get("request_id")
	if requestID == "" {
		requestID = requestHeader(ev, "x-request-id")
		if requestID != "" {
			tags.set("request_id", requestID)
		}
	}
	if traceID != "" {
		tags.setDefault("trace_id", traceID)
	}
	at, ok := sdkEventTime(ev["timestamp"])
	if !ok {
		at = b.now()
	}
	if l := b.grafana.links(traceID, requestID, b.service, at); l != nil {
		if contexts == nil {
			contexts = map[string]any{}
			ev["contexts"] = contexts
		}
		contexts["grafana"] = l
	}

	fp := sdkFingerprint(ev)
	ok, suppressed := b.admit(SourceSDK, fp)
	if !ok {
		return false
	}
	if suppressed > 0 {
		if contexts == nil {
			contexts = map[string]any{}
			ev["contexts"] = contexts
		}
		contexts[contextOutrider] = map[string]any{suppressedKey: suppressed}
	}
	return true
}

// tags is the event's tags in either form the protocol allows: an object, or an array
// of [key, value] pairs.
type tags struct {
	ev   map[string]any
	obj  map[string]any
	list []any
}

func tagSetter(ev map[string]any) *tags {
	t := &tags{ev: ev}
	switch x := ev["tags"].(type) {
	case map[string]any:
		t.obj = x
	case []any:
		t.list = x
	default:
		t.obj = map[string]any{}
		ev["tags"] = t.obj
	}
	return t
}

func (t *tags) get(k string) string {
	if t.obj != nil {
		s, _ := t.obj[k].(string)
		return s
	}
	for _, p := range t.list {
		if pair, ok := p.([]any); ok && len(pair) == 2 && pair[0] == k {
			s, _ := pair[1].(string)
			return s
		}
	}
	return ""
}

func (t *tags) has(k string) bool {
	if t.obj != nil {
		_, ok := t.obj[k]
		return ok
	}
	for _, p := range t.list {
		if pair, ok := p.([]any); ok && len(pair) == 2 && pair[0] == k {
			return true
		}
	}
	return false
}

func (t *tags) setDefault(k, v string) {
	if !t.has(k) {
		t.set(k, v)
	}
}

func (t *tags) set(k, v string) {
	if t.obj != nil {
		t.obj[k] = v
		return
	}
	for _, p := range t.list {
		if pair, ok := p.([]any); ok && len(pair) == 2 && pair[0] == k {
			pair[1] = v
			return
		}
	}
	t.list = append(t.list, []any{k, v})
	t.ev["tags"] = t.list
}

// requestHeader returns a header of the event's request (headers as an object or as
// [name, value] pairs), matching the name case-insensitively.
func requestHeader(ev map[string]any, name string) string {
	req, _ := ev["request"].(map[string]any)
	switch h := req["headers"].(type) {
	case map[string]any:
		for k, v := range h {
			if strings.EqualFold(k, name) {
				s, _ := v.(string)
				return s
			}
		}
	case []any:
		for _, p := range h {
			if pair, ok := p.([]any); ok && len(pair) == 2 {
				if k, _ := pair[0].(string); strings.EqualFold(k, name) {
					s, _ := pair[1].(string)
					return s
				}
			}
		}
	}
	return ""
}

// sdkFingerprint is the app's own fingerprint when it set one, else one computed like
// the derived events': exception type and in-app frames, or the message.
func sdkFingerprint(ev map[string]any) string {
	if fp, ok := ev["fingerprint"].([]any); ok && len(fp) > 0 {
		parts := make([]string, 0, len(fp))
		for _, p := range fp {
			s, _ := p.(string)
			parts = append(parts, s)
		}
		return fingerprint("app", strings.Join(parts, "\x00"), nil)
	}
	if values := exceptionValues(ev); len(values) > 0 {
		last, _ := values[len(values)-1].(map[string]any)
		typ, _ := last["type"].(string)
		val, _ := last["value"].(string)
		var frames []frameKey
		if st, ok := last["stacktrace"].(map[string]any); ok {
			fs, _ := st["frames"].([]any)
			for _, f := range fs {
				fm, _ := f.(map[string]any)
				mod, _ := fm["module"].(string)
				fn, _ := fm["function"].(string)
				inApp, _ := fm["in_app"].(bool)
				frames = append(frames, frameKey{module: mod, function: fn, inApp: inApp})
			}
		}
		return fingerprint(typ, val, frames)
	}
	msg := ""
	switch m := ev["message"].(type) {
	case string:
		msg = m
	case map[string]any:
		msg, _ = m["formatted"].(string)
		if msg == "" {
			msg, _ = m["message"].(string)
		}
	}
	if le, ok := ev["logentry"].(map[string]any); ok && msg == "" {
		msg, _ = le["message"].(string)
	}
	return fingerprint("message", msg, nil)
}

// exceptionValues is the event's list of exceptions, in either form the protocol
// allows: {"values": [...]} or the list itself.
func exceptionValues(ev map[string]any) []any {
	switch x := ev["exception"].(type) {
	case map[string]any:
		values, _ := x["values"].([]any)
		return values
	case []any:
		return x
	}
	return nil
}
