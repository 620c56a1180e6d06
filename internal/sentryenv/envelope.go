// Package sentryenv reads and writes Sentry envelopes, the format Sentry SDKs send
// errors, transactions, attachments and the rest in
// (https://develop.sentry.dev/sdk/envelopes/):
//
//	Envelope = Headers "\n" { Item } [ "\n" ]
//	Item     = Headers "\n" Payload ( "\n" | EOF )
//
// Headers are one-line JSON objects. An item header carries its "type" and,
// optionally, the payload's "length" in bytes; without it the payload runs to the next
// newline (so it cannot contain one).
//
// Parse is strict, because its input comes from outside (application SDKs) and is
// forwarded to Sentry: every header must be a JSON object, every item must have a
// string type, a "length" must be a non-negative integer that the data honours. Errors
// are *ParseError, which say where (item index, byte offset) and what is wrong.
// Marshal always writes an explicit "length", so any payload survives a round trip.
package sentryenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/outrider-dev/outrider/internal/jsondepth"
)

// Envelope is a parsed envelope.
type Envelope struct {
	// Header is the envelope header (event_id, sent_at, dsn, sdk, trace, ...). Numbers
	// are json.Number, so that they are written back exactly as they were read.
	Header map[string]any
	// Items are the envelope's items in order.
	Items []Item
}

// Item is one envelope item.
type Item struct {
	// Header holds the item headers other than "type" and "length" (filename,
	// content_type, item_count, attachment_type, ...), numbers as json.Number. Type
	// and len(Payload) are the authority for the two left out; Marshal writes them.
	Header map[string]any
	// Type is the item type: "event", "transaction", "attachment", "session", ...
	Type string
	// Payload is the item's content. Parse returns payloads that alias its input.
	Payload []byte
}

// Limits bound what Parse accepts; a zero field means no limit.
type Limits struct {
	// MaxEnvelopeBytes bounds the whole envelope.
	MaxEnvelopeBytes int
	// MaxItems bounds the number of items.
	MaxItems int
	// MaxItemBytes bounds each item's payload.
	MaxItemBytes int
	// MaxDepth bounds the nesting of objects and arrays in each header, checked
	// before the header is decoded (errors wrap ErrTooDeep).
	MaxDepth int
}

// ErrTooDeep is wrapped by the ParseError of a header nested deeper than
// Limits.MaxDepth.
var ErrTooDeep = errors.New("nested too deep")

// ErrTooLarge is wrapped by the ParseError of an envelope, item count or payload over
// its Limits, so that a receiver can answer 413 rather than 400.
var ErrTooLarge = errors.New("over the size limit")

// ParseError says what is wrong with an envelope and where.
type ParseError struct {
	// Item is the index of the item concerned, or -1 for the envelope header or the
	// envelope as a whole.
	Item int
	// Offset is the byte offset in the envelope where the problem was found.
	Offset int
	// Msg says what is wrong.
	Msg string
	// Err is a sentinel the error wraps (ErrTooLarge), or nil.
	Err error
}

func (e *ParseError) Error() string {
	if e.Item < 0 {
		return fmt.Sprintf("sentry envelope, at byte %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("sentry envelope, item %d at byte %d: %s", e.Item, e.Offset, e.Msg)
}

// Unwrap returns the sentinel the error wraps.
func (e *ParseError) Unwrap() error { return e.Err }

func perr(item, off int, sentinel error, format string, args ...any) *ParseError {
	return &ParseError{Item: item, Offset: off, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// Parse parses an envelope strictly within lim. The returned items' payloads alias
// data: do not change data while the envelope is in use.
func Parse(data []byte, lim Limits) (*Envelope, error) {
	if lim.MaxEnvelopeBytes > 0 && len(data) > lim.MaxEnvelopeBytes {
		return nil, perr(-1, 0, ErrTooLarge, "envelope of %d bytes is larger than the limit of %d", len(data), lim.MaxEnvelopeBytes)
	}
	if len(data) == 0 {
		return nil, perr(-1, 0, nil, "empty body; an envelope starts with a JSON header line")
	}
	line, next := nextLine(data, 0)
	env := &Envelope{}
	h, err := parseHeader(line, lim.MaxDepth)
	if err != nil {
		return nil, perr(-1, 0, sentinel(err), "envelope header: %v", err)
	}
	env.Header = h
	pos := next
	for pos < len(data) {
		// One newline after the last item (or after the header) ends the envelope.
		if pos == len(data)-1 && data[pos] == '\n' {
			break
		}
		idx := len(env.Items)
		if lim.MaxItems > 0 && idx >= lim.MaxItems {
			return nil, perr(idx, pos, ErrTooLarge, "more than %d items", lim.MaxItems)
		}
		item, end, err := parseItem(data, pos, idx, lim)
		if err != nil {
			return nil, err
		}
		env.Items = append(env.Items, item)
		pos = end
	}
	return env, nil
}

// nextLine returns the line starting at pos (without its newline) and the position
// after the newline (len(data) when the line ends at EOF).
func nextLine(data []byte, pos int) (line []byte, next int) {
	i := bytes.IndexByte(data[pos:], '\n')
	if i < 0 {
		return data[pos:], len(data)
	}
	return data[pos : pos+i], pos + i + 1
}

// parseItem parses the item whose header starts at pos and returns it with the
// position after it.
func parseItem(data []byte, pos, idx int, lim Limits) (Item, int, error) {
	line, next := nextLine(data, pos)
	h, err := parseHeader(line, lim.MaxDepth)
	if err != nil {
		return Item{}, 0, perr(idx, pos, sentinel(err), "item header: %v", err)
	}
	typ, ok := h["type"].(string)
	switch {
	case !ok && h["type"] == nil:
		return Item{}, 0, perr(idx, pos, nil, `item header has no "type"`)
	case !ok:
		return Item{}, 0, perr(idx, pos, nil, `item header "type" must be a string, got %s`, jsonKind(h["type"]))
	case typ == "":
		return Item{}, 0, perr(idx, pos, nil, `item header "type" is empty`)
	}
	delete(h, "type")
	item := Item{Header: h, Type: typ}
	start := next
	if lv, has := h["length"]; has {
		delete(h, "length")
		n, ok := lv.(json.Number)
		length, err := strconv.ParseInt(string(n), 10, 64)
		if !ok || err != nil || length < 0 {
			return Item{}, 0, perr(idx, pos, nil, `item header "length" must be a non-negative integer, got %s`, jsonText(lv))
		}
		if lim.MaxItemBytes > 0 && length > int64(lim.MaxItemBytes) {
			return Item{}, 0, perr(idx, pos, ErrTooLarge, "%s item of %d bytes is larger than the limit of %d", typ, length, lim.MaxItemBytes)
		}
		if length > int64(len(data)-start) {
			return Item{}, 0, perr(idx, start, nil, `item header says "length": %d but only %d bytes follow`, length, len(data)-start)
		}
		end := start + int(length)
		item.Payload = data[start:end:end]
		switch {
		case end == len(data):
			return item, end, nil
		case data[end] == '\n':
			return item, end + 1, nil
		default:
			return Item{}, 0, perr(idx, end, nil, `payload of "length": %d is followed by %q, not a newline; is the length right?`, length, data[end])
		}
	}
	if start >= len(data) {
		return item, len(data), nil
	}
	payload, end := nextLine(data, start)
	if lim.MaxItemBytes > 0 && len(payload) > lim.MaxItemBytes {
		return Item{}, 0, perr(idx, start, ErrTooLarge, "%s item of %d bytes is larger than the limit of %d", typ, len(payload), lim.MaxItemBytes)
	}
	item.Payload = payload[:len(payload):len(payload)]
	return item, end, nil
}

// sentinel returns ErrTooDeep when err wraps it, else nil.
func sentinel(err error) error {
	if errors.Is(err, ErrTooDeep) {
		return ErrTooDeep
	}
	return nil
}

// parseHeader decodes a header line: exactly one JSON object, numbers as json.Number,
// nested at most maxDepth deep (0: no limit).
func parseHeader(line []byte, maxDepth int) (map[string]any, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, errors.New("empty line where a JSON object was expected")
	}
	if maxDepth > 0 {
		if _, err := jsondepth.Scan(line, jsondepth.Limits{MaxDepth: maxDepth}); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTooDeep, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object, got %s", jsonKind(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return m, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return jsonKind(v)
	}
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Marshal serializes the envelope: the header line, then each item's header with its
// "type" and an explicit "length", its payload and a newline. Keys are sorted and HTML
// characters are not escaped. Header values that JSON cannot represent (NaN, channels)
// are written as null.
func (e *Envelope) Marshal() []byte {
	size := 128
	for _, it := range e.Items {
		size += len(it.Payload) + 64
	}
	return e.AppendMarshal(make([]byte, 0, size))
}

// AppendMarshal appends the serialized envelope to dst; see Marshal.
func (e *Envelope) AppendMarshal(dst []byte) []byte {
	var w objWriter
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false)
	dst = w.appendObject(dst, e.Header, "", 0)
	dst = append(dst, '\n')
	for _, it := range e.Items {
		dst = w.appendObject(dst, it.Header, it.Type, len(it.Payload))
		dst = append(dst, '\n')
		dst = append(dst, it.Payload...)
		dst = append(dst, '\n')
	}
	return dst
}

// objWriter encodes header objects with one reusable encoder.
type objWriter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// encode returns v as compact JSON (valid until the next call), or an error.
func (w *objWriter) encode(v any) ([]byte, error) {
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(w.buf.Bytes(), []byte{'\n'}), nil
}

// appendObject writes m as a JSON object with sorted keys. When typ is set, "type" and
// "length" come first and m's own "type" and "length" are left out.
func (w *objWriter) appendObject(dst []byte, m map[string]any, typ string, length int) []byte {
	if typ != "" {
		if _, ok := m["type"]; ok {
			m = without(m, "type", "length")
		} else if _, ok := m["length"]; ok {
			m = without(m, "type", "length")
		}
		t, _ := w.encode(typ)
		dst = append(dst, `{"type":`...)
		dst = append(dst, t...)
		dst = append(dst, `,"length":`...)
		dst = strconv.AppendInt(dst, int64(length), 10)
		if len(m) == 0 {
			return append(dst, '}')
		}
		dst = append(dst, ',')
	} else {
		dst = append(dst, '{')
		if len(m) == 0 {
			return append(dst, '}')
		}
	}
	if b, err := w.encode(m); err == nil {
		return append(dst, b[1:]...) // the object without its '{'
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		b, _ := w.encode(k)
		dst = append(dst, b...)
		dst = append(dst, ':')
		if b, err := w.encode(m[k]); err == nil {
			dst = append(dst, b...)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}')
}

func without(m map[string]any, drop ...string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !slices.Contains(drop, k) {
			out[k] = v
		}
	}
	return out
}

// EventID returns the envelope header's "event_id", or "" when it has none.
func (e *Envelope) EventID() string {
	s, _ := e.Header["event_id"].(string)
	return s
}

// Category returns the Sentry rate-limit data category of an item type, as named in
// X-Sentry-Rate-Limits; "default" for types it does not know.
func Category(itemType string) string {
	switch itemType {
	case "event":
		return "error"
	case "transaction":
		return "transaction"
	case "attachment":
		return "attachment"
	case "session", "sessions":
		return "session"
	case "client_report":
		return "internal"
	case "check_in":
		return "monitor"
	case "profile", "profile_chunk":
		return "profile"
	case "replay_event", "replay_recording", "replay_video":
		return "replay"
	case "log":
		return "log_item"
	case "span":
		return "span"
	case "feedback", "user_report":
		return "feedback"
	case "statsd", "metric_buckets":
		return "metric_bucket"
	case "trace_metric":
		return "trace_metric"
	}
	return "default"
}

// NewEventEnvelope returns a serialized envelope with one "event" item: the header
// carries eventID (left out when "") and sentAt (when not zero, in UTC), and event is
// the event's JSON, used as is.
func NewEventEnvelope(eventID string, event []byte, sentAt time.Time) []byte {
	h := make(map[string]any, 2)
	if eventID != "" {
		h["event_id"] = eventID
	}
	if !sentAt.IsZero() {
		h["sent_at"] = sentAt.UTC().Format(time.RFC3339Nano)
	}
	env := Envelope{Header: h, Items: []Item{{Type: "event", Payload: event}}}
	return env.Marshal()
}
