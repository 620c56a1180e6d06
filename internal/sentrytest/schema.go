package sentrytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

// knownItems are the item types Sentry accepts, and whether their payload is a JSON
// object.
var knownItems = map[string]bool{
	"event": true, "transaction": true, "session": true, "sessions": true, "client_report": true,
	"check_in": true, "log": true, "span": true, "feedback": true, "user_report": true,
	"profile": true, "profile_chunk": true, "replay_event": true, "trace_metric": true,
	"attachment": false, "replay_recording": false, "replay_video": false, "statsd": false, "metric_buckets": false,
}

// CheckEnvelope checks a parsed envelope the way the server does: the header's
// event_id and sent_at, known item types, JSON items that are objects, at most one
// event, and each event against CheckEvent (its event_id agreeing with the header's).
func CheckEnvelope(env *sentryenv.Envelope) error {
	var errs []error
	if v, has := env.Header["event_id"]; has {
		if s, _ := v.(string); !sentryenv.ValidEventID(s) {
			errs = append(errs, fmt.Errorf("envelope header: event_id %s is not 32 lowercase hex digits", short(v)))
		}
	}
	if v, has := env.Header["sent_at"]; has {
		if s, _ := v.(string); !isRFC3339(s) {
			errs = append(errs, fmt.Errorf("envelope header: sent_at %s is not an RFC 3339 time", short(v)))
		}
	}
	if v, has := env.Header["dsn"]; has {
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Errorf("envelope header: dsn %s is not a string", short(v)))
		}
	}
	events := 0
	for i, it := range env.Items {
		isJSON, known := knownItems[it.Type]
		switch {
		case !known:
			errs = append(errs, fmt.Errorf("item %d: unknown item type %q", i, it.Type))
		case it.Type == "event":
			events++
			if events > 1 {
				errs = append(errs, fmt.Errorf("item %d: a second event in one envelope", i))
			}
			if err := CheckEvent(it.Payload); err != nil {
				errs = append(errs, fmt.Errorf("item %d: %w", i, err))
			} else if err := sameEventID(env, it.Payload); err != nil {
				errs = append(errs, fmt.Errorf("item %d: %w", i, err))
			}
		case isJSON:
			if _, err := jsonNumberDecode(it.Payload); err != nil {
				errs = append(errs, fmt.Errorf("item %d: %s payload is not a JSON object: %v", i, it.Type, err))
			}
		}
	}
	return errors.Join(errs...)
}

func sameEventID(env *sentryenv.Envelope, payload []byte) error {
	ev, _ := jsonNumberDecode(payload)
	id, _ := ev["event_id"].(string)
	switch hid := env.EventID(); {
	case id == "" && hid == "":
		return errors.New("neither the event nor the envelope header has an event_id")
	case id != "" && hid != "" && id != hid:
		return fmt.Errorf("event_id %s differs from the envelope header's %s", id, hid)
	}
	return nil
}

// Levels are the event levels Sentry accepts.
var Levels = []string{"fatal", "error", "warning", "info", "debug"}

// CheckEvent checks an event payload against the essentials of Sentry's event schema
// and returns every problem found:
//   - a JSON object; event_id, when present, 32 lowercase hex digits;
//   - timestamp a number or an RFC 3339 string; platform a string; level one of Levels;
//   - message a string or an object with a string "formatted" or "message";
//   - exception {"values": [...]} or a bare array, each value an object with a string
//     type or value (at least one), and an optional stacktrace.frames[] whose frames
//     have at least one of function, filename, abs_path, module, and an integer lineno
//     when present;
//   - contexts.trace, when present, with trace_id of 32 and span_id of 16 lowercase hex
//     digits, not all zero;
//   - tags an object of string values, or an array of [key, value] string pairs.
func CheckEvent(payload []byte) error {
	ev, err := jsonNumberDecode(payload)
	if err != nil {
		return fmt.Errorf("event is not a JSON object: %w", err)
	}
	var c checker
	if v, has := ev["event_id"]; has {
		if s, _ := v.(string); !sentryenv.ValidEventID(s) {
			c.addf("event_id %v is not 32 lowercase hex digits", short(v))
		}
	}
	if v, has := ev["timestamp"]; has {
		switch t := v.(type) {
		case json.Number:
			if f, err := t.Float64(); err != nil || f < 0 {
				c.addf("timestamp %s is not a Unix time", t)
			}
		case string:
			if !isRFC3339(t) {
				c.addf("timestamp %q is neither a number nor an RFC 3339 time", t)
			}
		default:
			c.addf("timestamp %s is neither a number nor an RFC 3339 time", short(v))
		}
	}
	if v, has := ev["platform"]; has {
		if _, ok := v.(string); !ok {
			c.addf("platform %s is not a string", short(v))
		}
	}
	if v, has := ev["level"]; has {
		if s, _ := v.(string); !contains(Levels, s) {
			c.addf("level %s is not one of %s", short(v), strings.Join(Levels, ", "))
		}
	}
	if v, has := ev["message"]; has {
		switch m := v.(type) {
		case string:
		case map[string]any:
			f, okF := m["formatted"].(string)
			g, okM := m["message"].(string)
			if !okF && !okM || f == "" && g == "" {
				c.addf("message object has no string \"formatted\" or \"message\"")
			}
		default:
			c.addf("message %s is neither a string nor an object", short(v))
		}
	}
	if v, has := ev["exception"]; has {
		checkExceptions(&c, v)
	}
	if ctx, has := ev["contexts"]; has {
		m, ok := ctx.(map[string]any)
		if !ok {
			c.addf("contexts is not an object")
		} else if tr, has := m["trace"]; has {
			t, ok := tr.(map[string]any)
			if !ok {
				c.addf("contexts.trace is not an object")
			} else {
				if s, _ := t["trace_id"].(string); !isHex(s, 32) {
					c.addf("contexts.trace.trace_id %s is not 32 lowercase hex digits (not all zero)", short(t["trace_id"]))
				}
				if s, _ := t["span_id"].(string); !isHex(s, 16) {
					c.addf("contexts.trace.span_id %s is not 16 lowercase hex digits (not all zero)", short(t["span_id"]))
				}
			}
		}
	}
	if v, has := ev["tags"]; has {
		checkTags(&c, v)
	}
	return c.err()
}

func checkExceptions(c *checker, v any) {
	var values []any
	switch e := v.(type) {
	case []any:
		values = e
	case map[string]any:
		vs, ok := e["values"].([]any)
		if !ok {
			c.addf("exception has no values array")
			return
		}
		values = vs
	default:
		c.addf("exception is neither {\"values\": [...]} nor an array")
		return
	}
	for i, x := range values {
		ex, ok := x.(map[string]any)
		if !ok {
			c.addf("exception.values[%d] is not an object", i)
			continue
		}
		typ, okT := ex["type"].(string)
		val, okV := ex["value"].(string)
		if _, has := ex["type"]; has && !okT {
			c.addf("exception.values[%d].type is not a string", i)
		}
		if _, has := ex["value"]; has && !okV {
			c.addf("exception.values[%d].value is not a string", i)
		}
		if typ == "" && val == "" {
			c.addf("exception.values[%d] has neither a type nor a value", i)
		}
		st, has := ex["stacktrace"]
		if !has || st == nil {
			continue
		}
		stm, ok := st.(map[string]any)
		if !ok {
			c.addf("exception.values[%d].stacktrace is not an object", i)
			continue
		}
		frames, ok := stm["frames"].([]any)
		if !ok {
			c.addf("exception.values[%d].stacktrace has no frames array", i)
			continue
		}
		for j, f := range frames {
			fr, ok := f.(map[string]any)
			if !ok {
				c.addf("exception.values[%d].stacktrace.frames[%d] is not an object", i, j)
				continue
			}
			named := false
			for _, k := range []string{"function", "filename", "abs_path", "module"} {
				if v, has := fr[k]; has {
					if s, ok := v.(string); !ok {
						c.addf("exception.values[%d].stacktrace.frames[%d].%s is not a string", i, j, k)
					} else if s != "" {
						named = true
					}
				}
			}
			if !named {
				c.addf("exception.values[%d].stacktrace.frames[%d] has none of function, filename, abs_path, module", i, j)
			}
			if v, has := fr["lineno"]; has {
				if n, ok := v.(json.Number); !ok || !isNonNegInt(n) {
					c.addf("exception.values[%d].stacktrace.frames[%d].lineno %s is not an integer", i, j, short(v))
				}
			}
		}
	}
}

func checkTags(c *checker, v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if _, ok := x.(string); !ok {
				c.addf("tags.%s is %s, not a string", k, short(x))
			}
		}
	case []any:
		for i, x := range t {
			pair, ok := x.([]any)
			if !ok || len(pair) != 2 {
				c.addf("tags[%d] is not a [key, value] pair", i)
				continue
			}
			_, okK := pair[0].(string)
			_, okV := pair[1].(string)
			if !okK || !okV {
				c.addf("tags[%d] is not a pair of strings", i)
			}
		}
	default:
		c.addf("tags is neither an object nor an array of pairs")
	}
}

// checker collects event problems.
type checker struct{ problems []string }

func (c *checker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("invalid event: %s", strings.Join(c.problems, "; "))
}

func isRFC3339(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return strings.Trim(s, "0") != ""
}

func isNonNegInt(n json.Number) bool {
	s := string(n)
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%T", v)
	}
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
