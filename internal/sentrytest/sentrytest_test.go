package sentrytest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	eventID = "9ec79c33ec9942ab8353589fcb2e04dc"
	auth    = "Sentry sentry_version=7, sentry_client=test/1.0, sentry_key=" + DefaultPublicKey
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// send posts body to path and returns the status and response headers.
func send(t *testing.T, s *Server, path string, hdr map[string]string, body []byte) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Sentry-Auth", auth)
	req.Header.Set("Content-Type", "application/x-sentry-envelope")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func eventEnvelope(event string) []byte {
	return fmt.Appendf(nil, "{\"event_id\":%q}\n{\"type\":\"event\",\"length\":%d}\n%s\n", eventID, len(event), event)
}

const goodEvent = `{"event_id":"` + eventID + `","timestamp":1700000000.5,"platform":"go","level":"error",` +
	`"exception":{"values":[{"type":"*errors.errorString","value":"boom","stacktrace":{"frames":[{"function":"main","module":"main","lineno":12}]}}]},` +
	`"contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}},"tags":{"request_id":"req-1"}}`

func TestRealSDK(t *testing.T) {
	s := Start(t, WithProject(42))
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: s.DSN(DefaultPublicKey, 42), EnableTracing: true, TracesSampleRate: 1, AttachStacktrace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hub := sentry.NewHub(client, sentry.NewScope())
	tx := sentry.StartTransaction(sentry.SetHubOnContext(context.Background(), hub), "GET /checkout")
	hub.Scope().SetSpan(tx)
	hub.Scope().SetTag("request_id", "req-7")
	id := hub.CaptureException(errors.New("card declined"))
	hub.CaptureMessage("just a message")
	tx.Finish()
	hub.Flush(5 * time.Second)

	evs, err := s.WaitEvents(ctxT(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Errors()) != 0 {
		t.Fatalf("the real SDK's envelopes were refused: %v", s.Errors())
	}
	ev := evs[0]
	if ev.EventID() != string(*id) || ev.Level() != "error" {
		t.Errorf("first event %s, want exception %s", ev, *id)
	}
	exc := ev.Exceptions()
	if len(exc) != 1 || exc[0].Value != "card declined" || len(exc[0].Frames) == 0 || exc[0].Frames[len(exc[0].Frames)-1].Lineno == 0 {
		t.Errorf("exceptions %+v", exc)
	}
	if ev.TraceID() != tx.TraceID.String() || ev.SpanID() == "" {
		t.Errorf("trace %s/%s, want the transaction's %s", ev.TraceID(), ev.SpanID(), tx.TraceID)
	}
	if v, ok := ev.Tag("request_id"); !ok || v != "req-7" {
		t.Errorf("tag request_id = %q, %v", v, ok)
	}
	if evs[1].Message() != "just a message" {
		t.Errorf("second event %s", evs[1])
	}
	var tx1 bool
	for _, env := range s.Envelopes() {
		for _, it := range env.Items {
			tx1 = tx1 || it.Type == "transaction"
		}
	}
	if !tx1 {
		t.Error("the transaction was not accepted")
	}
}

func TestRefusesBadRequests(t *testing.T) {
	s := Start(t, WithProject(42), WithMaxEnvelopeBytes(1<<10))
	good := eventEnvelope(goodEvent)
	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		body   []byte
		status int
		err    string
	}{
		{"no auth", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": ""}, good, 401, "no X-Sentry-Auth header"},
		{"wrong key", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_version=7, sentry_key=other"}, good, 401, `sentry_key "other" is not the server's`},
		{"no key", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_version=7"}, good, 401, "has no sentry_key"},
		{"wrong version", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_version=6, sentry_key=" + DefaultPublicKey}, good, 401, `sentry_version "6", want 7`},
		{"no Sentry prefix", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "sentry_version=7, sentry_key=" + DefaultPublicKey}, good, 401, `does not start with "Sentry "`},
		{"store endpoint", "/api/42/store/", nil, []byte(goodEvent), 404, "is not /api/<numeric project>/envelope/"},
		{"no trailing slash", "/api/42/envelope", nil, good, 404, "is not /api/<numeric project>/envelope/"},
		{"project not numeric", "/api/abc/envelope/", nil, good, 404, "numeric project"},
		{"other project", "/api/7/envelope/", nil, good, 403, "project 7, want 42"},
		{"content type", "/api/42/envelope/", map[string]string{"Content-Type": "application/json"}, good, 400, `Content-Type "application/json"`},
		{"encoding", "/api/42/envelope/", map[string]string{"Content-Encoding": "br"}, good, 400, `unsupported Content-Encoding "br"`},
		{"bad gzip", "/api/42/envelope/", map[string]string{"Content-Encoding": "gzip"}, good, 400, "Content-Encoding gzip"},
		{"bad frame", "/api/42/envelope/", nil, []byte("{}\n{\"type\":\"event\",\"length\":99}\n{}\n"), 400, `item 0 at byte 32: item header says "length": 99`},
		{"header not an object", "/api/42/envelope/", nil, []byte("[]\n"), 400, "must be a JSON object"},
		{"too large", "/api/42/envelope/", nil, eventEnvelope(`{"message":"` + strings.Repeat("x", 2<<10) + `"}`), 413, "larger than the limit of 1024"},
		{"unknown item type", "/api/42/envelope/", nil, []byte("{}\n{\"type\":\"whatever\",\"length\":2}\n{}\n"), 400, `item 0: unknown item type "whatever"`},
		{"bad event", "/api/42/envelope/", nil, eventEnvelope(`{"event_id":"` + eventID + `","level":"severe"}`), 400, `item 0: invalid event: level "severe" is not one of`},
		{"event_id mismatch", "/api/42/envelope/", nil, eventEnvelope(`{"event_id":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}`), 400, "differs from the envelope header's"},
		{"no event_id at all", "/api/42/envelope/", nil, []byte("{}\n{\"type\":\"event\",\"length\":2}\n{}\n"), 400, "neither the event nor the envelope header has an event_id"},
		{"two events", "/api/42/envelope/", nil, []byte("{}\n{\"type\":\"event\",\"length\":2}\n{}\n{\"type\":\"event\",\"length\":2}\n{}\n"), 400, "item 1: a second event"},
		{"header event_id", "/api/42/envelope/", nil, []byte("{\"event_id\":\"XYZ\"}\n"), 400, "envelope header: event_id \"XYZ\""},
		{"header sent_at", "/api/42/envelope/", nil, []byte("{\"sent_at\":\"yesterday\"}\n"), 400, `sent_at "yesterday" is not an RFC 3339 time`},
		{"session not JSON", "/api/42/envelope/", nil, []byte("{}\n{\"type\":\"session\",\"length\":1}\nx\n"), 400, "item 0: session payload is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = good
			}
			status, _ := send(t, s, tt.path, tt.hdr, body)
			errs := s.TakeErrors()
			if status != tt.status {
				t.Fatalf("status %d, want %d (errors %v)", status, tt.status, errs)
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.err) {
				t.Fatalf("errors %v, want one with %q", errs, tt.err)
			}
		})
	}
	if len(s.Events()) != 0 || len(s.Envelopes()) != 0 {
		t.Fatal("a refused request was recorded as accepted")
	}
	if got := len(s.Requests()); got != len(tests) {
		t.Errorf("%d requests recorded, want %d", got, len(tests))
	}
	if status, _ := send(t, s, "/api/42/envelope/", nil, good); status != 200 || len(s.Events()) != 1 {
		t.Fatalf("a good request: %d", status)
	}
}

func TestCheckEvent(t *testing.T) {
	valid := []string{
		goodEvent,
		`{}`,
		`{"timestamp":"2024-05-06T07:08:09.123Z","message":"m","level":"warning"}`,
		`{"message":{"formatted":"hello 1"},"tags":[["a","b"],["c","d"]]}`,
		`{"exception":[{"type":"ValueError","stacktrace":{"frames":[{"filename":"app.py","lineno":3},{"abs_path":"/x.go"}]}}]}`,
		`{"exception":{"values":[{"value":"only a value","stacktrace":null}]}}`,
		`{"contexts":{"os":{"name":"linux"}}}`,
	}
	for _, ev := range valid {
		if err := CheckEvent([]byte(ev)); err != nil {
			t.Errorf("CheckEvent(%s): %v", ev, err)
		}
	}
	invalid := []struct{ event, want string }{
		{`[]`, "event is not a JSON object"},
		{`{} {}`, "data after the JSON object"},
		{`{"event_id":"9EC79C33EC9942AB8353589FCB2E04DC"}`, "event_id \"9EC79C33EC9942AB8353589FCB2E04DC\" is not 32 lowercase hex digits"},
		{`{"event_id":12}`, "event_id 12 is not"},
		{`{"timestamp":"May 6"}`, `timestamp "May 6" is neither a number nor an RFC 3339 time`},
		{`{"timestamp":true}`, "timestamp true is neither"},
		{`{"timestamp":-5}`, "timestamp -5 is not a Unix time"},
		{`{"platform":3}`, "platform 3 is not a string"},
		{`{"level":"warn"}`, `level "warn" is not one of fatal, error, warning, info, debug`},
		{`{"message":7}`, "message 7 is neither a string nor an object"},
		{`{"message":{"params":[]}}`, `message object has no string "formatted" or "message"`},
		{`{"exception":"boom"}`, "exception is neither"},
		{`{"exception":{"value":"x"}}`, "exception has no values array"},
		{`{"exception":[{"stacktrace":{"frames":[]}}]}`, "exception.values[0] has neither a type nor a value"},
		{`{"exception":[{"type":5,"value":"v"}]}`, "exception.values[0].type is not a string"},
		{`{"exception":[1]}`, "exception.values[0] is not an object"},
		{`{"exception":[{"type":"E","stacktrace":{}}]}`, "exception.values[0].stacktrace has no frames array"},
		{`{"exception":[{"type":"E","stacktrace":{"frames":[{"lineno":3}]}}]}`, "frames[0] has none of function, filename, abs_path, module"},
		{`{"exception":[{"type":"E","stacktrace":{"frames":[{"function":"f","lineno":"3"}]}}]}`, `frames[0].lineno "3" is not an integer`},
		{`{"exception":[{"type":"E","stacktrace":{"frames":[{"function":"f","lineno":3.5}]}}]}`, "frames[0].lineno 3.5 is not an integer"},
		{`{"exception":[{"type":"E","stacktrace":{"frames":[{"function":7}]}}]}`, "frames[0].function is not a string"},
		{`{"contexts":{"trace":{"trace_id":"abc","span_id":"00f067aa0ba902b7"}}}`, `contexts.trace.trace_id "abc" is not 32 lowercase hex digits`},
		{`{"contexts":{"trace":{"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","span_id":"00f067aa0ba902b7"}}}`, "trace_id \"4BF92F3577B34DA6A3CE929D0E0E4736\" is not"},
		{`{"contexts":{"trace":{"trace_id":"00000000000000000000000000000000","span_id":"00f067aa0ba902b7"}}}`, "not all zero"},
		{`{"contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}}`, "contexts.trace.span_id null is not 16"},
		{`{"contexts":{"trace":"x"}}`, "contexts.trace is not an object"},
		{`{"contexts":[]}`, "contexts is not an object"},
		{`{"tags":{"a":1}}`, "tags.a is 1, not a string"},
		{`{"tags":[["a"]]}`, "tags[0] is not a [key, value] pair"},
		{`{"tags":[["a",2]]}`, "tags[0] is not a pair of strings"},
		{`{"tags":"a=b"}`, "tags is neither an object nor an array of pairs"},
	}
	for _, tt := range invalid {
		err := CheckEvent([]byte(tt.event))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckEvent(%s) = %v, want %q", tt.event, err, tt.want)
		}
	}
	err := CheckEvent([]byte(`{"level":"x","platform":1}`))
	if err == nil || !strings.Contains(err.Error(), "level") || !strings.Contains(err.Error(), "platform") {
		t.Errorf("all problems are not reported: %v", err)
	}
}

func TestRespondWith(t *testing.T) {
	s := Start(t)
	s.RespondWith(func(r *http.Request, env *sentryenv.Envelope) (int, http.Header) {
		if env.EventID() != eventID {
			t.Errorf("responder got envelope %v", env.Header)
		}
		return http.StatusTooManyRequests, http.Header{"X-Sentry-Rate-Limits": {"60:error:organization"}, "Retry-After": {"60"}}
	})
	status, hdr := send(t, s, "/api/42/envelope/", nil, eventEnvelope(goodEvent))
	if status != 429 || hdr.Get("X-Sentry-Rate-Limits") != "60:error:organization" || hdr.Get("Retry-After") != "60" {
		t.Fatalf("%d %v", status, hdr)
	}
	if len(s.Events()) != 0 {
		t.Fatal("a refused envelope was recorded as accepted")
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Status != 429 || reqs[0].Envelope == nil || reqs[0].Envelope.Items[0].Type != "event" || reqs[0].Header.Get("X-Sentry-Auth") != auth {
		t.Fatalf("requests %+v", reqs)
	}

	s.RespondWith(func(*http.Request, *sentryenv.Envelope) (int, http.Header) {
		return 0, http.Header{"X-Sentry-Rate-Limits": {"10:transaction"}}
	})
	if status, hdr := send(t, s, "/api/42/envelope/", nil, eventEnvelope(goodEvent)); status != 200 || hdr.Get("X-Sentry-Rate-Limits") != "10:transaction" {
		t.Fatalf("accepted with headers: %d %v", status, hdr)
	}
	s.RespondWith(nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(eventEnvelope(goodEvent))
	zw.Close()
	if status, _ := send(t, s, "/api/42/envelope/", map[string]string{"Content-Encoding": "gzip"}, gz.Bytes()); status != 200 {
		t.Fatalf("gzip: %d", status)
	}
	evs, err := s.WaitEvents(ctxT(t), 2)
	if err != nil || len(evs) != 2 {
		t.Fatalf("%v %d", err, len(evs))
	}
	if v, _ := evs[0].Tag("request_id"); v != "req-1" || evs[0].TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" || evs[0].Exceptions()[0].Frames[0].Lineno != 12 {
		t.Errorf("accessors: %s", evs[0])
	}
}

func TestWaitEventsTimesOut(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	evs, err := s.WaitEvents(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || len(evs) != 0 || !strings.Contains(err.Error(), "0 of 1 events arrived") {
		t.Fatalf("%v %v", evs, err)
	}
}

// fakeTB records what Start's cleanup reports.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

func TestCleanupFailsTheTestOnErrors(t *testing.T) {
	ft := &fakeTB{TB: t}
	s := Start(ft)
	send(t, s, "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_key=wrong, sentry_version=7"}, eventEnvelope(goodEvent))
	for _, fn := range ft.cleanups {
		fn()
	}
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "sentrytest: POST /api/42/envelope/: X-Sentry-Auth sentry_key \"wrong\"") {
		t.Fatalf("cleanup reported %q", ft.errs)
	}
}
