package sentryreceiver

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if c.Listen != DefaultListen || c.PublicKey.Reveal() != "outrider-local" || c.MaxEnvelopeBytes != 1<<20 || c.ProjectID != "" {
		t.Fatalf("defaults: %+v", c)
	}
	var p confval.Problems
	c.Validate(&p)
	if p.Err() != nil {
		t.Fatalf("defaults do not validate: %v", p.Err())
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, "listen: must be host:port"},
		{"empty key", func(c *Config) { c.PublicKey = "" }, "public_key: is empty"},
		{"key not DSN-safe", func(c *Config) { c.PublicKey = "a@b:c" }, "public_key: may hold only"},
		{"key too long", func(c *Config) { c.PublicKey = confval.Secret(strings.Repeat("a", 129)) }, "public_key: is 129 characters"},
		{"project with slash", func(c *Config) { c.ProjectID = "4/2" }, `project_id: must be a Sentry project ID such as "42"`},
		{"envelope limit too small", func(c *Config) { c.MaxEnvelopeBytes = 100 }, "max_envelope_bytes: must be between 4KiB and 100MiB, got 100B"},
		{"envelope limit too large", func(c *Config) { c.MaxEnvelopeBytes = 1 << 30 }, "max_envelope_bytes: must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{}
			c.ApplyDefaults()
			tt.mod(&c)
			var p confval.Problems
			c.Validate(&p)
			if p.Err() == nil || !strings.Contains(p.Err().Error(), tt.want) {
				t.Fatalf("problems %v, want %q", p.Err(), tt.want)
			}
			if strings.Contains(p.Err().Error(), "a@b:c") {
				t.Error("the key was printed")
			}
		})
	}
}

func TestAuthForms(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q})
	dsnEnv := func(key string) []byte {
		return envelope(`{"event_id":"`+eventID+`","dsn":"http://`+key+`@127.0.0.1:4319/42"}`, "event", `{"message":"m"}`)
	}
	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		body   []byte
		status int
		detail string
	}{
		{"X-Sentry-Auth", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": authValue}, eventEnvelope("a"), 200, ""},
		{"X-Sentry-Auth key first, no prefix", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "sentry_key=" + testKey + ",sentry_version=7"}, eventEnvelope("a"), 200, ""},
		{"X-Sentry-Auth quoted", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": `sentry sentry_key="` + testKey + `", sentry_version=7`}, eventEnvelope("a"), 200, ""},
		{"Authorization", "/api/42/envelope/", map[string]string{"Authorization": "Sentry sentry_key=" + testKey}, eventEnvelope("a"), 200, ""},
		{"query", "/api/42/envelope/?sentry_key=" + testKey + "&sentry_version=7", map[string]string{}, eventEnvelope("a"), 200, ""},
		{"envelope dsn", "/api/42/envelope/", map[string]string{}, dsnEnv(testKey), 200, ""},
		{"store with query", "/api/42/store/?sentry_key=" + testKey, map[string]string{}, []byte(`{"message":"m"}`), 200, ""},
		{"wrong key", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_key=nope, sentry_version=7"}, eventEnvelope("a"), 401, "the Sentry key in the request is not this outrider's"},
		{"wrong query key", "/api/42/envelope/?sentry_key=nope", map[string]string{}, eventEnvelope("a"), 401, "not this outrider's"},
		{"wrong header wins over right dsn", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_key=nope"}, dsnEnv(testKey), 401, "not this outrider's"},
		{"wrong dsn", "/api/42/envelope/", map[string]string{}, dsnEnv("nope"), 401, "the Sentry key in the envelope's dsn is not this outrider's"},
		{"dsn without key", "/api/42/envelope/", map[string]string{}, envelope(`{"dsn":"http://127.0.0.1:4319/42"}`, "event", `{}`), 401, "carries no Sentry key"},
		{"no key", "/api/42/envelope/", map[string]string{}, eventEnvelope("a"), 401, "carries no Sentry key"},
		{"header without sentry_key", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_version=7"}, eventEnvelope("a"), 401, "carries no Sentry key"},
		{"store without key", "/api/42/store/", map[string]string{}, []byte(`{"message":"m"}`), 401, "carries no Sentry key"},
		{"empty key", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_key="}, eventEnvelope("a"), 401, "not this outrider's"},
		{"key prefix", "/api/42/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + testKey[:5]}, eventEnvelope("a"), 401, "not this outrider's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := q.len()
			resp := post(t, r, tt.path, tt.hdr, tt.body)
			if resp.status != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.status, resp.body, tt.status)
			}
			if tt.status != 200 {
				if !strings.Contains(resp.detail, tt.detail) || !strings.Contains(resp.detail, "set the SDK's DSN to http://<public_key>@"+r.Addr().String()+"/42") {
					t.Errorf("detail %q, want %q and the DSN to use", resp.detail, tt.detail)
				}
				if q.len() != before {
					t.Error("a refused request was stored")
				}
			} else if q.len() != before+1 {
				t.Error("an accepted request was not stored")
			}
			if strings.Contains(resp.body, testKey) {
				t.Errorf("the response reveals the key: %s", resp.body)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	q := &memQueue{}
	cfg := testConfig()
	cfg.ProjectID = "42"
	r := startReceiver(t, cfg, Settings{Queue: q})
	anyProject := startReceiver(t, testConfig(), Settings{Queue: &memQueue{}})
	tests := []struct {
		name   string
		r      *Receiver
		method string
		path   string
		body   []byte
		status int
		detail string
	}{
		{"envelope", r, "POST", "/api/42/envelope/", eventEnvelope("a"), 200, ""},
		{"envelope without slash", r, "POST", "/api/42/envelope", eventEnvelope("a"), 200, ""},
		{"store", r, "POST", "/api/42/store/", []byte(`{"event_id":"` + eventID + `","message":"a"}`), 200, ""},
		{"store without slash", r, "POST", "/api/42/store", []byte(`{"event_id":"` + eventID + `","message":"a"}`), 200, ""},
		{"other project", r, "POST", "/api/7/envelope/", eventEnvelope("a"), 403, `project "7" is not accepted here; this outrider accepts project 42`},
		{"any project accepted", anyProject, "POST", "/api/7/envelope/", eventEnvelope("a"), 200, ""},
		{"unknown endpoint", r, "POST", "/api/42/minidump/", eventEnvelope("a"), 404, "no Sentry endpoint at /api/42/minidump/"},
		{"no project", r, "POST", "/api//envelope/", eventEnvelope("a"), 404, "no Sentry endpoint"},
		{"root", r, "POST", "/", eventEnvelope("a"), 404, "SDKs send to /api/<project>/envelope/"},
		{"GET", r, "GET", "/api/42/envelope/", nil, 405, "must be POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+tt.r.Addr().String()+tt.path, bytes.NewReader(tt.body))
			req.Header.Set("X-Sentry-Auth", authValue)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var v struct{ ID, Detail string }
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || !strings.Contains(v.Detail, tt.detail) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, v.Detail, tt.status, tt.detail)
			}
			if tt.status == 200 && v.ID != eventID {
				t.Errorf("id %q, want %s", v.ID, eventID)
			}
			if tt.status == 405 && resp.Header.Get("Allow") != "POST" {
				t.Error("405 without Allow: POST")
			}
		})
	}
	evs := q.events(t)
	if len(evs) != 4 {
		t.Fatalf("stored %d events, want 4", len(evs))
	}
	if evs[2]["message"] != "a" {
		t.Errorf("store event: %v", evs[2])
	}
}

func compress(t *testing.T, kind string, data []byte) []byte {
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch kind {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "zlib":
		w = zlib.NewWriter(&b)
	case "flate":
		w, _ = flate.NewWriter(&b, flate.DefaultCompression)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

func TestCompression(t *testing.T) {
	q := &memQueue{}
	cfg := testConfig()
	cfg.MaxEnvelopeBytes = 64 << 10
	r := startReceiver(t, cfg, Settings{Queue: q})
	ev := eventEnvelope("compressed")
	huge := envelope(`{}`, "attachment", strings.Repeat("a", 200<<10))
	tests := []struct {
		name, encoding string
		body           []byte
		status         int
		detail         string
	}{
		{"identity", "identity", ev, 200, ""},
		{"gzip", "gzip", compress(t, "gzip", ev), 200, ""},
		{"x-gzip", "x-gzip", compress(t, "gzip", ev), 200, ""},
		{"deflate zlib", "deflate", compress(t, "zlib", ev), 200, ""},
		{"deflate raw", "deflate", compress(t, "flate", ev), 200, ""},
		{"gzip upper case", "GZIP", compress(t, "gzip", ev), 200, ""},
		{"gzip not gzip", "gzip", ev, 400, "the body is not valid gzip"},
		{"gzip truncated", "gzip", compress(t, "gzip", ev)[:30], 400, "not valid gzip"},
		{"deflate garbage", "deflate", []byte("\xff\xfe\xfd garbage"), 400, "not valid deflate"},
		{"gzip bomb", "gzip", compress(t, "gzip", huge), 413, "request larger than 64KiB (receivers.sentry.max_envelope_bytes)"},
		{"deflate bomb", "deflate", compress(t, "zlib", huge), 413, "request larger than 64KiB"},
		{"brotli", "br", ev, 415, `unsupported Content-Encoding "br"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := q.len()
			resp := post(t, r, "/api/42/envelope/", map[string]string{"X-Sentry-Auth": authValue, "Content-Encoding": tt.encoding}, tt.body)
			if resp.status != tt.status || !strings.Contains(resp.detail, tt.detail) {
				t.Fatalf("%d %q, want %d %q", resp.status, resp.detail, tt.status, tt.detail)
			}
			if stored := q.len() - before; (tt.status == 200) != (stored == 1) {
				t.Fatalf("stored %d", stored)
			}
		})
	}
	for _, ev := range q.events(t) {
		if ev["message"] != "compressed" {
			t.Errorf("stored %v", ev)
		}
	}
}

func TestLimits(t *testing.T) {
	q := &memQueue{}
	cfg := testConfig()
	cfg.MaxEnvelopeBytes = 2 << 20
	r := startReceiver(t, cfg, Settings{Queue: q})
	bigEvent := `{"message":"` + strings.Repeat("x", MaxEventBytes) + `"}`
	var many []string
	for i := 0; i <= MaxItems; i++ {
		many = append(many, "session", `{}`)
	}
	tests := []struct {
		name   string
		path   string
		body   []byte
		status int
		detail string
	}{
		{"envelope over limit", "/api/42/envelope/", envelope(`{}`, "attachment", strings.Repeat("a", 2<<20)), 413, "request larger than 2MiB"},
		{"event over Sentry's limit", "/api/42/envelope/", envelope(`{}`, "event", bigEvent), 413, "item 0: event of 1048590 bytes is larger than Sentry's limit of 1048576"},
		{"store event over Sentry's limit", "/api/42/store/", []byte(bigEvent), 413, "event of 1048590 bytes"},
		{"too many items", "/api/42/envelope/", envelope(`{}`, many...), 413, "more than 100 items"},
		{"large attachment within limits", "/api/42/envelope/", envelope(`{}`, "attachment", strings.Repeat("a", 1<<20+10)), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := q.len()
			resp := post(t, r, tt.path, nil, tt.body)
			if resp.status != tt.status || !strings.Contains(resp.detail, tt.detail) {
				t.Fatalf("%d %q, want %d %q", resp.status, resp.detail, tt.status, tt.detail)
			}
			if stored := q.len() - before; (tt.status == 200) != (stored == 1) {
				t.Fatalf("stored %d", stored)
			}
		})
	}
	// Chunked: no Content-Length to refuse early.
	req, _ := http.NewRequest("POST", "http://"+r.Addr().String()+"/api/42/envelope/", struct{ *strings.Reader }{strings.NewReader(strings.Repeat("a", 3<<20))})
	req.Header.Set("X-Sentry-Auth", authValue)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || req.ContentLength > 0 {
		t.Fatalf("chunked over-size body: %d", resp.StatusCode)
	}
}

func TestMalformed(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q})
	tests := []struct {
		name   string
		path   string
		body   string
		detail string
	}{
		{"empty", "/api/42/envelope/", "", "empty body"},
		{"header not JSON", "/api/42/envelope/", "hello\n", "sentry envelope, at byte 0: envelope header: not valid JSON"},
		{"bad length", "/api/42/envelope/", "{}\n{\"type\":\"event\",\"length\":50}\n{}\n", `item 0 at byte 32: item header says "length": 50 but only 3 bytes follow`},
		{"no type", "/api/42/envelope/", "{}\n{\"length\":2}\n{}\n", `item header has no "type"`},
		{"odd type", "/api/42/envelope/", string(envelope(`{}`, "Event Now", `{}`)), `item 0: type "Event Now" is not a Sentry item type`},
		{"header event_id bad", "/api/42/envelope/", string(envelope(`{"event_id":"xyz"}`, "event", `{}`)), `envelope header: event_id must be 32 hexadecimal digits, got "xyz"`},
		{"header event_id a number", "/api/42/envelope/", string(envelope(`{"event_id":12}`, "event", `{}`)), `got 12`},
		{"event not JSON", "/api/42/envelope/", string(envelope(`{}`, "event", `{"message":`)), "item 0: the event is not a JSON object"},
		{"event an array", "/api/42/envelope/", string(envelope(`{}`, "event", `[1]`)), "item 0: the event is not a JSON object: got another JSON value"},
		{"event trailing data", "/api/42/envelope/", string(envelope(`{}`, "event", `{} {}`)), "unexpected data after the JSON object"},
		{"event empty", "/api/42/envelope/", string(envelope(`{}`, "event", ``)), "item 0: the event is not a JSON object"},
		{"event_id bad", "/api/42/envelope/", string(envelope(`{}`, "event", `{"event_id":"nope"}`)), `item 0: event_id must be 32 hexadecimal digits, got "nope"`},
		{"event_id mismatch", "/api/42/envelope/", string(envelope(`{"event_id":"`+eventID+`"}`, "event", `{"event_id":"`+otherID+`"}`)), "item 0: event_id " + otherID + " differs from the envelope header's " + eventID},
		{"two events", "/api/42/envelope/", string(envelope(`{}`, "event", `{}`, "event", `{}`)), "item 1: a second event; an envelope holds at most one"},
		{"transaction not an object", "/api/42/envelope/", string(envelope(`{}`, "transaction", `"x"`)), "item 0: transaction payload must be a JSON object"},
		{"session not JSON", "/api/42/envelope/", string(envelope(`{}`, "session", `{x}`)), "item 0: session payload must be a JSON object"},
		{"filename not a string", "/api/42/envelope/", "{}\n{\"type\":\"attachment\",\"length\":1,\"filename\":3}\na\n", `item 0: header "filename" must be a string`},
		{"store not JSON", "/api/42/store/", "not json", "item 0: the event is not a JSON object"},
		{"store an array", "/api/42/store/", "[]", "got another JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, r, tt.path, nil, []byte(tt.body))
			if resp.status != 400 || !strings.Contains(resp.detail, tt.detail) {
				t.Fatalf("%d %q, want 400 %q", resp.status, resp.detail, tt.detail)
			}
			if q.len() != 0 {
				t.Fatal("a malformed request was stored")
			}
		})
	}
	if resp := post(t, r, "/api/42/envelope/", nil, eventEnvelope("fine")); resp.status != 200 || q.len() != 1 {
		t.Fatalf("a good request after bad ones: %d %s", resp.status, resp.body)
	}
	if got := counter(r.m.requests.WithLabelValues("envelope", "invalid")); got != float64(len(tests)-2) {
		t.Errorf("invalid envelope requests counted %v, want %d", got, len(tests)-2)
	}
}

func TestEventIDs(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q})
	upper := strings.ToUpper(eventID)
	dashed := eventID[:8] + "-" + eventID[8:12] + "-" + eventID[12:16] + "-" + eventID[16:20] + "-" + eventID[20:]
	tests := []struct {
		name, path string
		body       []byte
		want       string // "" means generated
	}{
		{"both", "/api/42/envelope/", eventEnvelope("a"), eventID},
		{"header only", "/api/42/envelope/", envelope(`{"event_id":"`+eventID+`"}`, "event", `{"message":"a"}`), eventID},
		{"event only", "/api/42/envelope/", envelope(`{}`, "event", `{"event_id":"`+eventID+`"}`), eventID},
		{"neither", "/api/42/envelope/", envelope(`{"sent_at":"2024-01-01T00:00:00Z"}`, "event", `{"message":"a"}`), ""},
		{"null in both", "/api/42/envelope/", envelope(`{"event_id":null}`, "event", `{"event_id":null}`), ""},
		{"upper case, dashed", "/api/42/envelope/", envelope(`{"event_id":"`+upper+`"}`, "event", `{"event_id":"`+dashed+`"}`), eventID},
		{"store without id", "/api/42/store/", []byte(`{"message":"a"}`), ""},
		{"store with id", "/api/42/store/", []byte(`{"event_id":"` + dashed + `"}`), eventID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := q.len()
			resp := post(t, r, tt.path, nil, tt.body)
			if resp.status != 200 {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
			if !sentryenv.ValidEventID(resp.id) || (tt.want != "" && resp.id != tt.want) {
				t.Fatalf("id %q, want %q", resp.id, tt.want)
			}
			evs := q.events(t) // checks event and header ids agree
			if len(evs) != n+1 || evs[n]["event_id"] != resp.id {
				t.Fatalf("stored event_id %v, answered %s", evs[len(evs)-1]["event_id"], resp.id)
			}
		})
	}
}

func TestNonEventEnvelopes(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q, Process: func(map[string]any) bool { t.Error("Process called without an event"); return true }})
	resp := post(t, r, "/api/42/envelope/", nil, envelope(`{}`, "session", `{"sid":"x"}`, "client_report", `{"discarded_events":[]}`))
	if resp.status != 200 || resp.body != "{}" {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	resp = post(t, r, "/api/42/envelope/", nil, envelope(`{"event_id":"`+eventID+`"}`, "transaction", `{"type":"transaction"}`, "future_type", "raw\x00bytes"))
	if resp.status != 200 || resp.id != eventID {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	envs := q.envelopes(t)
	if len(envs) != 2 || len(envs[1].Items) != 2 || envs[1].Items[1].Type != "future_type" || string(envs[1].Items[1].Payload) != "raw\x00bytes" {
		t.Fatalf("stored %+v", envs)
	}
	if post(t, r, "/api/42/envelope/", nil, []byte("{}\n")).status != 200 || q.len() != 2 {
		t.Error("an empty envelope is answered 200 and not stored")
	}
}

func TestSentryGoEnvelopesStoredWithExplicitLengths(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q})
	for name, data := range sentryGoEnvelopes(t) {
		t.Run(name, func(t *testing.T) {
			n := q.len()
			resp := post(t, r, "/api/42/envelope/", nil, data)
			if resp.status != 200 || q.len() != n+1 {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
			in, _ := sentryenv.Parse(data, sentryenv.Limits{})
			out := q.envelopes(t)[n]
			if len(out.Items) != len(in.Items) || out.EventID() != in.EventID() || resp.id != in.EventID() {
				t.Fatalf("stored %d items id %s, sent %d id %s", len(out.Items), out.EventID(), len(in.Items), in.EventID())
			}
			for i := range in.Items {
				if !bytes.Equal(in.Items[i].Payload, out.Items[i].Payload) {
					t.Errorf("item %d changed without a Process hook", i)
				}
			}
			q.mu.Lock()
			raw := q.entries[n]
			q.mu.Unlock()
			if !bytes.Contains(raw, []byte(`{"type":"`+in.Items[0].Type+`","length":`)) {
				t.Errorf("stored item header without an explicit length: %s", raw[:200])
			}
		})
	}
}

func TestProcess(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q, Process: func(ev map[string]any) bool {
		if ev["message"] == "drop me" {
			return false
		}
		tags, _ := ev["tags"].(map[string]any)
		if tags == nil {
			tags = map[string]any{}
			ev["tags"] = tags
		}
		tags["k8s.pod"] = "web-1"
		ev["environment"] = "prod"
		return true
	}})
	withAttachment := func(msg string) []byte {
		return envelope(`{"event_id":"`+eventID+`"}`,
			"event", `{"event_id":"`+eventID+`","message":"`+msg+`","tags":{"a":"b"},"timestamp":1700000000.123456789,"extra":{"html":"<a&b>"}}`,
			"attachment", "file\ncontent", "client_report", `{"discarded_events":[]}`)
	}
	resp := post(t, r, "/api/42/envelope/", nil, withAttachment("keep me"))
	if resp.status != 200 || resp.id != eventID {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	evs := q.events(t)
	if len(evs) != 1 {
		t.Fatalf("stored %d events", len(evs))
	}
	tags := evs[0]["tags"].(map[string]any)
	if tags["a"] != "b" || tags["k8s.pod"] != "web-1" || evs[0]["environment"] != "prod" {
		t.Errorf("stored event not processed: %v", evs[0])
	}
	q.mu.Lock()
	raw := string(q.entries[0])
	q.mu.Unlock()
	if !strings.Contains(raw, `"timestamp":1700000000.123456789`) || !strings.Contains(raw, `"html":"<a&b>"`) {
		t.Errorf("re-serialized event changed numbers or escaped HTML: %s", raw)
	}
	if env := q.envelopes(t)[0]; len(env.Items) != 3 || string(env.Items[1].Payload) != "file\ncontent" {
		t.Errorf("the attachment and client report were not kept: %+v", env.Items)
	}

	resp = post(t, r, "/api/42/envelope/", nil, withAttachment("drop me"))
	if resp.status != 200 || resp.id != eventID {
		t.Fatalf("dropped event answered %d %s, want 200 with its id", resp.status, resp.body)
	}
	envs := q.envelopes(t)
	if len(envs) != 2 || len(envs[1].Items) != 1 || envs[1].Items[0].Type != "client_report" {
		t.Fatalf("after a dropped event the queue holds %d envelopes; last %+v", len(envs), envs[len(envs)-1].Items)
	}
	resp = post(t, r, "/api/42/store/", nil, []byte(`{"message":"drop me"}`))
	if resp.status != 200 || q.len() != 2 {
		t.Fatalf("dropped store event: %d, %d entries", resp.status, q.len())
	}
	if got := counter(r.m.Events("sdk", EventLimited)); got != 2 {
		t.Errorf("limited events %v, want 2", got)
	}
	if got := counter(r.m.Events("sdk", EventAccepted)); got != 1 {
		t.Errorf("accepted events %v, want 1", got)
	}
}

func TestProcessCannotEncode(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q, Process: func(ev map[string]any) bool {
		ev["bad"] = func() {}
		return true
	}})
	if resp := post(t, r, "/api/42/envelope/", nil, eventEnvelope("a")); resp.status != 500 || !strings.Contains(resp.detail, "could not encode the processed event") || q.len() != 0 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
}

func TestQueueRefusals(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		status      int
		retryAfter  string
		rateLimits  string
		result      string
		detailMatch string
	}{
		{"full", fmt.Errorf("queue sentry: %w", pipeline.ErrFull), 429, "7", "7::organization:queue_full", "full", "outrider's queue is full; retry later"},
		{"store failed", errors.New("write: no space left on device"), 503, "1", "", "error", "outrider could not store the event; retry: write: no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &memQueue{err: tt.err}
			r := startReceiver(t, testConfig(), Settings{Queue: q, RetryAfter: 6500 * time.Millisecond})
			resp := post(t, r, "/api/42/envelope/", nil, eventEnvelope("a"))
			if resp.status != tt.status || !strings.Contains(resp.detail, tt.detailMatch) {
				t.Fatalf("%d %q", resp.status, resp.detail)
			}
			if got := resp.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if got := resp.header.Get("X-Sentry-Rate-Limits"); got != tt.rateLimits {
				t.Errorf("X-Sentry-Rate-Limits %q, want %q", got, tt.rateLimits)
			}
			if got := counter(r.m.requests.WithLabelValues("envelope", tt.result)); got != 1 {
				t.Errorf("requests{result=%s} = %v", tt.result, got)
			}
			if got := counter(r.m.Events("sdk", EventRefused)); got != 1 {
				t.Errorf("refused events %v", got)
			}
			q.setErr(nil)
			if resp := post(t, r, "/api/42/envelope/", nil, eventEnvelope("a")); resp.status != 200 || q.len() != 1 {
				t.Fatalf("after the queue recovered: %d", resp.status)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	r := New(testConfig(), Settings{Queue: &memQueue{}})
	if err := r.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown without start: %v", err)
	}
	if err := r.Start(t.Context()); err == nil {
		t.Fatal("start after shutdown succeeded")
	}
	if err := New(testConfig(), Settings{}).Start(t.Context()); err == nil || !strings.Contains(err.Error(), "no queue") {
		t.Fatalf("start without a queue: %v", err)
	}
	r = startReceiver(t, testConfig(), Settings{})
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("second start: %v", err)
	}
	busy := testConfig()
	busy.Listen = r.Addr().String()
	if err := New(busy, Settings{Queue: &memQueue{}}).Start(t.Context()); err == nil || !strings.Contains(err.Error(), "receivers.sentry.listen: cannot listen on "+busy.Listen) {
		t.Fatalf("port in use: %v", err)
	}
	if err := r.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(t.Context()); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}
