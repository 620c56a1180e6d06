package stacktrace

import (
	"encoding/json"
	"strings"
)

// stackFields are the JSON fields that hold a stack trace, in the order they are tried.
var stackFields = []string{
	"stack", "stacktrace", "stack_trace", "exception", "exc_info",
	"error.stack", "error.stack_trace", "err.stack",
}

// nestedStackObjects are the JSON objects whose stackFields are tried next (pino's
// "err", ECS's "error").
var nestedStackObjects = []string{"error", "err", "exception"}

// messageFields are tried last: some loggers put the whole trace in the message.
var messageFields = []string{"message", "msg", "log"}

// unwrapJSON returns the stack trace held by text when text is one JSON object, and
// text itself otherwise. A JSON object without a trace field gives "". A trace taken
// from a stack field comes after a line with the record's message (and its "error"
// string, as zap logs it), which gives the value when the trace has no exception line
// of its own (zap's Go stacks); the parsers skip it otherwise.
func unwrapJSON(text string) string {
	t := strings.TrimSpace(text)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return text
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(t), &m); err != nil {
		return text
	}
	if s, ok := stringField(m, stackFields); ok {
		return withMessage(m, s)
	}
	for _, name := range nestedStackObjects {
		if obj, ok := m[name].(map[string]any); ok {
			if s, ok := stringField(obj, stackFields); ok {
				return withMessage(m, s)
			}
		}
	}
	if s, ok := stringField(m, messageFields); ok {
		return s
	}
	return ""
}

// stringField returns the first of names that m holds as a string of more than one
// line.
func stringField(m map[string]any, names []string) (string, bool) {
	for _, name := range names {
		if s, ok := m[name].(string); ok && strings.IndexByte(s, '\n') >= 0 {
			return s, true
		}
	}
	return "", false
}

// withMessage puts the record's one-line message, "msg: error" when both are there,
// before stack.
func withMessage(m map[string]any, stack string) string {
	msg := ""
	for _, name := range messageFields {
		if s, ok := m[name].(string); ok && s != "" {
			msg = s
			break
		}
	}
	if e, ok := m["error"].(string); ok && e != "" {
		if msg != "" {
			msg += ": "
		}
		msg += e
	}
	if msg == "" || strings.IndexByte(msg, '\n') >= 0 {
		return stack
	}
	return msg + "\n" + stack
}
