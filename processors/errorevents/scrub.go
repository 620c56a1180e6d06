package errorevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unsafe"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

// ScrubEnvelope replaces live secret values everywhere in an envelope the
// application's SDK sent, in place, before it is stored: in the envelope header and
// every item header (keys and values, "filename" included), in every JSON item
// (event, transaction, log, span, session, sessions, user_report, feedback,
// check_in, profile, replay_event, client_report and any other type whose payload is
// a JSON object: every string and every object key, decoded, so JSON escapes hide
// nothing), and in the payload of attachments and of any item that is not a JSON
// object, scrubbed as bytes. An item whose type holds a secret value is dropped
// (a type is a short identifier; such an item is not one Sentry knows). It returns
// how many items it dropped. Nothing happens while no value is registered.
func (b *Builder) ScrubEnvelope(env *sentryenv.Envelope) (dropped int) {
	if b.red == nil || b.red.Empty() {
		return 0
	}
	if env.Header != nil {
		b.scrubObject(env.Header)
	}
	kept := env.Items[:0]
	for _, it := range env.Items {
		if _, ok := b.red.Redact(it.Type); ok {
			dropped++
			continue
		}
		if it.Header != nil {
			b.scrubObject(it.Header)
		}
		it.Payload = b.scrubPayload(it.Type, it.Payload)
		kept = append(kept, it)
	}
	clear(env.Items[len(kept):])
	env.Items = kept
	return dropped
}

// scrubPayload returns p scrubbed: decoded and re-encoded when it is a JSON object
// (and not an attachment, whose bytes are the file's), else as bytes. p is not
// modified; the result is p itself when nothing changed.
func (b *Builder) scrubPayload(typ string, p []byte) []byte {
	if typ != "attachment" {
		if obj, err := decodeJSONObject(p); err == nil {
			if !b.scrubObject(obj) {
				return p
			}
			if out, err := encodeJSON(obj); err == nil {
				return out
			}
		}
	}
	if len(p) == 0 {
		return p
	}
	if out, ok := b.red.Redact(unsafe.String(unsafe.SliceData(p), len(p))); ok {
		return []byte(out)
	}
	return p
}

// scrubObject replaces secret values in every string and object key of m, in place,
// and reports whether anything changed. A key that becomes the same as another gets
// a number, so no member is lost.
func (b *Builder) scrubObject(m map[string]any) bool {
	changed := false
	var renamed map[string]any
	for k, v := range m {
		if nv, ok := b.scrubValue(v); ok {
			m[k] = nv
			changed = true
		}
		if nk, ok := b.red.Redact(k); ok {
			if renamed == nil {
				renamed = map[string]any{}
			}
			renamed[k] = nk
		}
	}
	for old, nk := range renamed {
		v := m[old]
		delete(m, old)
		key := nk.(string)
		for i := 2; ; i++ {
			if _, taken := m[key]; !taken {
				break
			}
			key = nk.(string) + " (" + strconv.Itoa(i) + ")"
		}
		m[key] = v
		changed = true
	}
	return changed
}

// scrubValue returns v scrubbed and whether it changed; maps and arrays are changed
// in place.
func (b *Builder) scrubValue(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		if out, ok := b.red.Redact(x); ok {
			return out, true
		}
	case map[string]any:
		return x, b.scrubObject(x)
	case []any:
		changed := false
		for i, e := range x {
			if ne, ok := b.scrubValue(e); ok {
				x[i], changed = ne, true
			}
		}
		return x, changed
	}
	return v, false
}

// decodeJSONObject decodes data as exactly one JSON object, numbers as json.Number
// so that they are written back as they were.
func decodeJSONObject(data []byte) (map[string]any, error) {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// encodeJSON encodes v compactly without HTML escaping, as the SDKs do.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
