package sentryenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testdata/sentry-go-*.envelope were captured from sentry-go v0.50.0 (CaptureException,
// CaptureMessage, attachments, a transaction, a log line), with the default telemetry
// transport and the legacy HTTPTransport (DisableTelemetryBuffer), which writes log
// items without a "length".
func sentryGoEnvelopes(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob("testdata/*.envelope")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no testdata envelopes: %v", err)
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestParseSentryGoEnvelopes(t *testing.T) {
	want := map[string][]string{
		"sentry-go-exception.envelope":          {"event"},
		"sentry-go-message.envelope":            {"event"},
		"sentry-go-attachments.envelope":        {"event", "attachment", "attachment"},
		"sentry-go-transaction.envelope":        {"transaction"},
		"sentry-go-log.envelope":                {"log"},
		"sentry-go-legacy-exception.envelope":   {"event"},
		"sentry-go-legacy-attachments.envelope": {"event", "attachment", "attachment"},
		"sentry-go-legacy-log.envelope":         {"log"},
	}
	for name, data := range sentryGoEnvelopes(t) {
		t.Run(name, func(t *testing.T) {
			env, err := Parse(data, Limits{MaxEnvelopeBytes: 1 << 20, MaxItems: 10, MaxItemBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, it := range env.Items {
				types = append(types, it.Type)
				if it.Type == "event" || it.Type == "transaction" || it.Type == "log" {
					var m map[string]any
					if err := json.Unmarshal(it.Payload, &m); err != nil {
						t.Errorf("%s payload is not a JSON object: %v", it.Type, err)
					}
				}
			}
			if !reflect.DeepEqual(types, want[name]) {
				t.Errorf("item types %v, want %v", types, want[name])
			}
			if !ValidEventID(env.EventID()) {
				t.Errorf("EventID() = %q", env.EventID())
			}
			if name == "sentry-go-attachments.envelope" {
				if got := string(env.Items[1].Payload); got != "line1\nline2\n" {
					t.Errorf("attachment payload %q", got)
				}
				if env.Items[1].Header["filename"] != "a.txt" || env.Items[1].Header["content_type"] != "text/plain" {
					t.Errorf("attachment headers %v", env.Items[1].Header)
				}
				if len(env.Items[2].Payload) != 0 {
					t.Errorf("empty attachment has %d bytes", len(env.Items[2].Payload))
				}
			}
			if _, has := env.Items[0].Header["length"]; has {
				t.Error(`Item.Header keeps "length"`)
			}
			checkRoundTrip(t, env)
		})
	}
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		types    []string
		payloads []string
		header   map[string]any
	}{
		{"header only", `{}`, nil, nil, map[string]any{}},
		{"header only with newline", "{}\n", nil, nil, map[string]any{}},
		{"header fields", `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2024-01-01T00:00:00Z","n":12}` + "\n",
			nil, nil, map[string]any{"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "sent_at": "2024-01-01T00:00:00Z", "n": json.Number("12")}},
		{"with length, trailing newline", "{}\n{\"type\":\"event\",\"length\":2}\n{}\n", []string{"event"}, []string{"{}"}, nil},
		{"with length, no trailing newline", "{}\n{\"type\":\"event\",\"length\":2}\n{}", []string{"event"}, []string{"{}"}, nil},
		{"length covers newlines", "{}\n{\"type\":\"attachment\",\"length\":4}\na\nb\n\n", []string{"attachment"}, []string{"a\nb\n"}, nil},
		{"without length", "{}\n{\"type\":\"event\"}\n{\"a\":1}\n", []string{"event"}, []string{`{"a":1}`}, nil},
		{"without length at EOF", "{}\n{\"type\":\"event\"}\n{\"a\":1}", []string{"event"}, []string{`{"a":1}`}, nil},
		{"empty payload with length 0", "{}\n{\"type\":\"attachment\",\"length\":0}\n\n", []string{"attachment"}, []string{""}, nil},
		{"empty payload without length", "{}\n{\"type\":\"session\"}\n\n{\"type\":\"event\",\"length\":2}\n{}\n", []string{"session", "event"}, []string{"", "{}"}, nil},
		{"item header at EOF", "{}\n{\"type\":\"client_report\"}", []string{"client_report"}, []string{""}, nil},
		{"item header with newline at EOF", "{}\n{\"type\":\"client_report\"}\n", []string{"client_report"}, []string{""}, nil},
		{"several items", "{}\n{\"type\":\"event\",\"length\":2}\n{}\n{\"type\":\"attachment\",\"length\":3,\"filename\":\"f\"}\nabc\n{\"type\":\"log\",\"item_count\":1}\n{\"items\":[]}\n",
			[]string{"event", "attachment", "log"}, []string{"{}", "abc", `{"items":[]}`}, nil},
		{"spaces in header lines", " { \"a\" : 1 } \n {\"type\":\"event\" , \"length\": 2 }\n{}\n", []string{"event"}, []string{"{}"}, nil},
		{"unknown item type", "{}\n{\"type\":\"future_thing\",\"length\":1}\nx\n", []string{"future_thing"}, []string{"x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Parse([]byte(tt.in), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var types, payloads []string
			for _, it := range env.Items {
				types = append(types, it.Type)
				payloads = append(payloads, string(it.Payload))
			}
			if !reflect.DeepEqual(types, tt.types) || !reflect.DeepEqual(payloads, tt.payloads) {
				t.Errorf("got types %q payloads %q, want %q %q", types, payloads, tt.types, tt.payloads)
			}
			if tt.header != nil && !reflect.DeepEqual(env.Header, tt.header) {
				t.Errorf("header %#v, want %#v", env.Header, tt.header)
			}
			checkRoundTrip(t, env)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		lim      Limits
		item     int
		offset   int
		contains string
		tooLarge bool
	}{
		{"empty", "", Limits{}, -1, 0, "empty body", false},
		{"header not JSON", "hello\n", Limits{}, -1, 0, "not valid JSON", false},
		{"header an array", "[]\n", Limits{}, -1, 0, "must be a JSON object, got an array", false},
		{"header null", "null\n", Limits{}, -1, 0, "got null", false},
		{"header trailing data", "{} {}\n", Limits{}, -1, 0, "unexpected data after the JSON object", false},
		{"header empty line", "\n{\"type\":\"event\"}\n{}\n", Limits{}, -1, 0, "empty line", false},
		{"item header not JSON", "{}\n{type:event}\n{}\n", Limits{}, 0, 3, "item header: not valid JSON", false},
		{"item header a string", "{}\n\"event\"\n{}\n", Limits{}, 0, 3, "got a string", false},
		{"blank line between items", "{}\n{\"type\":\"event\",\"length\":2}\n{}\n\n{\"type\":\"event\",\"length\":2}\n{}\n", Limits{}, 1, 34, "empty line", false},
		{"no type", "{}\n{\"length\":2}\n{}\n", Limits{}, 0, 3, `has no "type"`, false},
		{"type null", "{}\n{\"type\":null}\n{}\n", Limits{}, 0, 3, `has no "type"`, false},
		{"type a number", "{}\n{\"type\":5}\n{}\n", Limits{}, 0, 3, `"type" must be a string, got a number`, false},
		{"type empty", "{}\n{\"type\":\"\"}\n{}\n", Limits{}, 0, 3, `"type" is empty`, false},
		{"length a string", "{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}\n", Limits{}, 0, 3, `"length" must be a non-negative integer, got "2"`, false},
		{"length fractional", "{}\n{\"type\":\"event\",\"length\":2.0}\n{}\n", Limits{}, 0, 3, `got 2.0`, false},
		{"length exponent", "{}\n{\"type\":\"event\",\"length\":2e0}\n{}\n", Limits{}, 0, 3, `non-negative integer`, false},
		{"length negative", "{}\n{\"type\":\"event\",\"length\":-1}\n{}\n", Limits{}, 0, 3, `non-negative integer`, false},
		{"length null", "{}\n{\"type\":\"event\",\"length\":null}\n{}\n", Limits{}, 0, 3, `got null`, false},
		{"length huge", "{}\n{\"type\":\"event\",\"length\":99999999999999999999}\n{}\n", Limits{}, 0, 3, `non-negative integer`, false},
		{"length past the end", "{}\n{\"type\":\"event\",\"length\":10}\n{}\n", Limits{}, 0, 32, `"length": 10 but only 3 bytes follow`, false},
		{"length too short", "{}\n{\"type\":\"event\",\"length\":1}\n{}\n", Limits{}, 0, 32, `followed by '}', not a newline`, false},
		{"second item bad", "{}\n{\"type\":\"event\",\"length\":2}\n{}\n{\"type\":\"attachment\",\"length\":9}\nabc\n", Limits{}, 1, 67, "only 4 bytes follow", false},
		{"envelope over limit", "{}\n{\"type\":\"event\",\"length\":2}\n{}\n", Limits{MaxEnvelopeBytes: 10}, -1, 0, "larger than the limit of 10", true},
		{"too many items", "{}\n{\"type\":\"a\"}\nx\n{\"type\":\"b\"}\ny\n", Limits{MaxItems: 1}, 1, 18, "more than 1 items", true},
		{"item over limit with length", "{}\n{\"type\":\"attachment\",\"length\":5}\nabcde\n", Limits{MaxItemBytes: 4}, 0, 3, "attachment item of 5 bytes is larger than the limit of 4", true},
		{"item over limit without length", "{}\n{\"type\":\"event\"}\n{\"a\":1}\n", Limits{MaxItemBytes: 4}, 0, 20, "event item of 7 bytes", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Parse([]byte(tt.in), tt.lim)
			if err == nil {
				t.Fatalf("accepted: %+v", env)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if pe.Item != tt.item || pe.Offset != tt.offset {
				t.Errorf("error at item %d byte %d, want item %d byte %d (%v)", pe.Item, pe.Offset, tt.item, tt.offset, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			if errors.Is(err, ErrTooLarge) != tt.tooLarge {
				t.Errorf("errors.Is(ErrTooLarge) = %v, want %v", !tt.tooLarge, tt.tooLarge)
			}
		})
	}
}

func TestParseErrorSaysWhere(t *testing.T) {
	_, err := Parse([]byte("{}\n{\"type\":\"event\",\"length\":2}\n{}\n{\"type\":3}\n"), Limits{})
	if err == nil || err.Error() != `sentry envelope, item 1 at byte 34: item header "type" must be a string, got a number` {
		t.Fatalf("error = %v", err)
	}
	_, err = Parse([]byte("x"), Limits{})
	if err == nil || !strings.HasPrefix(err.Error(), "sentry envelope, at byte 0: envelope header: not valid JSON") {
		t.Fatalf("error = %v", err)
	}
}

func TestMarshal(t *testing.T) {
	env := &Envelope{
		Header: map[string]any{"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "html": "<a&b>", "n": json.Number("1.50")},
		Items: []Item{
			{Type: "event", Payload: []byte(`{"message":"x"}`)},
			{Type: "attachment", Header: map[string]any{"filename": "f.txt", "type": "ignored", "length": 99}, Payload: []byte("a\nb")},
			{Type: "session", Payload: nil},
		},
	}
	want := `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","html":"<a&b>","n":1.50}` + "\n" +
		`{"type":"event","length":15}` + "\n" + `{"message":"x"}` + "\n" +
		`{"type":"attachment","length":3,"filename":"f.txt"}` + "\n" + "a\nb\n" +
		`{"type":"session","length":0}` + "\n\n"
	if got := string(env.Marshal()); got != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", got, want)
	}
	if env.Items[1].Header["type"] != "ignored" {
		t.Error("Marshal changed the item header")
	}
	checkRoundTrip(t, env)

	odd := &Envelope{Header: map[string]any{"bad": func() {}, "ok": 1}}
	if got := string(odd.Marshal()); got != `{"bad":null,"ok":1}`+"\n" {
		t.Errorf("unencodable header value: %s", got)
	}
	if got := string((&Envelope{}).Marshal()); got != "{}\n" {
		t.Errorf("empty envelope: %q", got)
	}
}

func TestNewEventEnvelope(t *testing.T) {
	ev := []byte("{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"message\":\"a\\nb\"}")
	data := NewEventEnvelope("9ec79c33ec9942ab8353589fcb2e04dc", ev, time.Date(2024, 5, 6, 7, 8, 9, 500, time.FixedZone("x", 3600)))
	want := `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2024-05-06T06:08:09.0000005Z"}` + "\n" +
		`{"type":"event","length":64}` + "\n" + string(ev) + "\n"
	if string(data) != want {
		t.Fatalf("got\n%s\nwant\n%s", data, want)
	}
	env, err := Parse(data, Limits{})
	if err != nil || env.EventID() != "9ec79c33ec9942ab8353589fcb2e04dc" || len(env.Items) != 1 || !bytes.Equal(env.Items[0].Payload, ev) {
		t.Fatalf("does not parse back: %v %+v", err, env)
	}
	if got := string(NewEventEnvelope("", []byte("{}"), time.Time{})); got != "{}\n{\"type\":\"event\",\"length\":2}\n{}\n" {
		t.Errorf("without id and time: %q", got)
	}
}

func TestCategory(t *testing.T) {
	for typ, want := range map[string]string{
		"event": "error", "transaction": "transaction", "attachment": "attachment", "session": "session",
		"sessions": "session", "client_report": "internal", "check_in": "monitor", "profile": "profile",
		"replay_event": "replay", "replay_recording": "replay", "log": "log_item", "span": "span",
		"feedback": "feedback", "statsd": "metric_bucket", "metric_buckets": "metric_bucket", "something_new": "default", "": "default",
	} {
		if got := Category(typ); got != want {
			t.Errorf("Category(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestEventIDs(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"9ec79c33ec9942ab8353589fcb2e04dc", "9ec79c33ec9942ab8353589fcb2e04dc", true},
		{"9EC79C33EC9942AB8353589FCB2E04DC", "9ec79c33ec9942ab8353589fcb2e04dc", true},
		{"9ec79c33-ec99-42ab-8353-589fcb2e04dc", "9ec79c33ec9942ab8353589fcb2e04dc", true},
		{"9ec79c33ec9942ab8353589fcb2e04d", "", false},
		{"9ec79c33ec9942ab8353589fcb2e04dg", "", false},
		{"9ec79c33-ec99-42ab-8353_589fcb2e04dc", "", false},
		{"9ec79c33-ec99-42ab-8353-589fcb2e04d-", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeEventID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeEventID(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if ValidEventID("9EC79C33EC9942AB8353589FCB2E04DC") {
		t.Error("ValidEventID accepts upper case")
	}
	a, b := NewEventID(), NewEventID()
	if !ValidEventID(a) || a == b || a[12] != '4' {
		t.Errorf("NewEventID: %q %q", a, b)
	}
}

// checkRoundTrip checks that Parse(Marshal(env)) gives env back.
func checkRoundTrip(t testing.TB, env *Envelope) {
	t.Helper()
	data := env.Marshal()
	again, err := Parse(data, Limits{})
	if err != nil {
		t.Fatalf("Marshal output does not parse: %v\n%s", err, data)
	}
	if !sameEnvelope(env, again) {
		t.Fatalf("round trip changed the envelope:\n%#v\n%#v", env, again)
	}
}

// sameEnvelope compares two envelopes as JSON values: headers after a JSON round trip
// (so that 1 and json.Number("1") are alike), types and payloads exactly.
func sameEnvelope(a, b *Envelope) bool {
	if !sameJSON(a.Header, b.Header) || len(a.Items) != len(b.Items) {
		return false
	}
	for i := range a.Items {
		x, y := a.Items[i], b.Items[i]
		hx := without(x.Header, "type", "length")
		if x.Type != y.Type || !bytes.Equal(x.Payload, y.Payload) || !sameJSON(hx, y.Header) {
			return false
		}
	}
	return true
}

func sameJSON(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	var va, vb any
	return decodeNumbers(ja, &va) == nil && decodeNumbers(jb, &vb) == nil && reflect.DeepEqual(va, vb)
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

func BenchmarkParse(b *testing.B) {
	data := sentryGoEnvelopes(b)["sentry-go-attachments.envelope"]
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	env, err := Parse(sentryGoEnvelopes(b)["sentry-go-attachments.envelope"], Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = env.Marshal()
	}
}
