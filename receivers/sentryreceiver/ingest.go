package sentryreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

// decode turns a request body into an envelope: parsed strictly for the envelope
// endpoint, or wrapped around the event for the store endpoint. The envelope aliases
// body.
func (r *Receiver) decode(endpoint string, body []byte) (*sentryenv.Envelope, *httpError) {
	if endpoint == endpointStore {
		if len(body) > MaxEventBytes {
			return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("event of %d bytes is larger than Sentry's limit of %d", len(body), MaxEventBytes)}
		}
		return &sentryenv.Envelope{
			Header: map[string]any{},
			Items:  []sentryenv.Item{{Type: "event", Payload: body}},
		}, nil
	}
	env, err := sentryenv.Parse(body, r.lim)
	if err != nil {
		switch {
		case errors.Is(err, sentryenv.ErrTooLarge):
			return nil, &httpError{http.StatusRequestEntityTooLarge, err.Error()}
		case errors.Is(err, sentryenv.ErrTooDeep):
			return nil, badRequest("%v (receivers.sentry.max_json_depth); send shallower headers or raise the limit", err)
		}
		return nil, badRequest("%v", err)
	}
	return env, nil
}

// ingestResult is what happened to an envelope that was valid.
type ingestResult struct {
	eventID string
	events  int   // events stored, or refused when err is set
	limited int   // events Process dropped
	err     error // storing failed: the queue's error
}

// jsonItems are the item types whose payload is a JSON object.
var jsonItems = map[string]bool{
	"event": true, "transaction": true, "session": true, "sessions": true, "client_report": true,
	"check_in": true, "log": true, "span": true, "feedback": true, "user_report": true,
	"profile": true, "profile_chunk": true, "replay_event": true, "trace_metric": true,
}

// ingest validates env, processes its event, and stores what remains. A *httpError
// means env is malformed; it was not stored.
func (r *Receiver) ingest(ctx context.Context, env *sentryenv.Envelope) (ingestResult, *httpError) {
	var res ingestResult
	if v, has := env.Header["event_id"]; has && v == nil {
		delete(env.Header, "event_id")
	} else if has {
		s, _ := v.(string)
		id, ok := sentryenv.NormalizeEventID(s)
		if !ok {
			return res, badRequest("envelope header: event_id must be 32 hexadecimal digits, got %s", short(v))
		}
		env.Header["event_id"] = id
		res.eventID = id
	}
	eventIdx := -1
	for i := range env.Items {
		it := &env.Items[i]
		if !validType(it.Type) {
			return res, badRequest("item %d: type %s is not a Sentry item type (lowercase letters, digits, \"_\")", i, short(it.Type))
		}
		if jsonItems[it.Type] && len(it.Payload) > MaxEventBytes {
			return res, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("item %d: %s of %d bytes is larger than Sentry's limit of %d", i, it.Type, len(it.Payload), MaxEventBytes)}
		}
		if fn, has := it.Header["filename"]; has {
			if _, ok := fn.(string); !ok {
				return res, badRequest("item %d: header \"filename\" must be a string", i)
			}
		}
		switch {
		case it.Type == "event":
			if eventIdx >= 0 {
				return res, badRequest("item %d: a second event; an envelope holds at most one", i)
			}
			eventIdx = i
		case jsonItems[it.Type]:
			if !isJSONObject(it.Payload) {
				return res, badRequest("item %d: %s payload must be a JSON object", i, it.Type)
			}
		}
	}
	if eventIdx >= 0 {
		keep, herr := r.event(env, eventIdx)
		if herr != nil {
			return res, herr
		}
		res.eventID = env.EventID()
		if keep {
			res.events = 1
		} else {
			res.limited = 1
			kept := env.Items[:0]
			for _, it := range env.Items {
				if it.Type != "event" && it.Type != "attachment" {
					kept = append(kept, it)
				}
			}
			env.Items = kept
		}
	}
	if r.scrub != nil {
		if n := r.scrub(env); n > 0 {
			r.log.Warn("dropped Sentry envelope items whose type holds a secret value", "items", n)
		}
	}
	if len(env.Items) == 0 {
		return res, nil
	}
	bp := entryPool.Get().(*[]byte)
	entry := env.AppendMarshal((*bp)[:0])
	res.err = r.queue.Append(ctx, entry)
	if cap(entry) <= maxPooledBody {
		*bp = entry[:0]
		entryPool.Put(bp)
	}
	return res, nil
}

// entryPool holds buffers queue entries are serialized into.
var entryPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// event checks and processes the event item at idx: a JSON object whose event_id, if
// any, agrees with the envelope header's; the missing one of the two is filled in.
// keep false means Process dropped it.
func (r *Receiver) event(env *sentryenv.Envelope, idx int) (keep bool, herr *httpError) {
	it := &env.Items[idx]
	ev, err := decodeObject(it.Payload)
	if err != nil {
		return false, badRequest("item %d: the event is not a JSON object: %v", idx, err)
	}
	changed := false
	headerID := env.EventID()
	switch v, has := ev["event_id"]; {
	case has && v != nil:
		s, _ := v.(string)
		id, ok := sentryenv.NormalizeEventID(s)
		if !ok {
			return false, badRequest("item %d: event_id must be 32 hexadecimal digits, got %s", idx, short(v))
		}
		if headerID != "" && id != headerID {
			return false, badRequest("item %d: event_id %s differs from the envelope header's %s", idx, id, headerID)
		}
		if id != s {
			ev["event_id"], changed = id, true
		}
		env.Header["event_id"] = id
	default:
		if headerID == "" {
			headerID = sentryenv.NewEventID()
			env.Header["event_id"] = headerID
		}
		ev["event_id"], changed = headerID, true
	}
	if r.process != nil {
		if !r.process(ev) {
			return false, nil
		}
		changed = true
	}
	if changed {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(ev); err != nil {
			r.log.Error("cannot encode a Sentry event after processing; it is refused", "error", err)
			return false, &httpError{http.StatusInternalServerError, "outrider could not encode the processed event: " + err.Error()}
		}
		it.Payload = bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	}
	return true, nil
}

// decodeObject decodes data as exactly one JSON object, numbers as json.Number.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("got another JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return m, nil
}

func isJSONObject(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// validType reports whether t looks like a Sentry item type.
func validType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// short renders a client's value for an error message, cut to a readable length.
func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%T", v)
	}
	if len(b) > 48 {
		return string(b[:48]) + "..."
	}
	return string(b)
}
