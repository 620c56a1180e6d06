package sentryreceiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

func fuzzReceiver() (*Receiver, *memQueue) {
	q := &memQueue{}
	cfg := Config{PublicKey: testKey, MaxEnvelopeBytes: 64 << 10}
	cfg.ApplyDefaults()
	return New(cfg, Settings{Queue: q, Process: func(ev map[string]any) bool {
		if ev["message"] == "drop" {
			return false
		}
		ev["environment"] = "fuzz"
		return true
	}}), q
}

// serve runs body through the handler and checks the status and what was stored.
func serve(t *testing.T, path string, body []byte) {
	r, q := fuzzReceiver()
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("X-Sentry-Auth", authValue)
	r.newHTTPServer().Handler.ServeHTTP(w, req)
	if w.Code != 200 && w.Code != 400 && w.Code != 413 {
		t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.String())
	}
	var resp struct{ ID, Detail string }
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response is not JSON: %q", w.Body.String())
	}
	if w.Code != 200 {
		if q.len() != 0 || resp.Detail == "" {
			t.Fatalf("refused %d (%q) but stored %d entries", w.Code, resp.Detail, q.len())
		}
		return
	}
	if resp.ID != "" && !sentryenv.ValidEventID(resp.ID) {
		t.Fatalf("answered id %q", resp.ID)
	}
	for _, e := range q.entries {
		env, err := sentryenv.Parse(e, sentryenv.Limits{})
		if err != nil {
			t.Fatalf("stored an envelope that does not parse: %v\n%q", err, e)
		}
		if env.EventID() != resp.ID {
			t.Fatalf("stored event_id %q, answered %q", env.EventID(), resp.ID)
		}
		for _, it := range env.Items {
			if it.Type != "event" {
				continue
			}
			ev, err := decodeObject(it.Payload)
			if err != nil || ev["event_id"] != resp.ID || ev["environment"] != "fuzz" {
				t.Fatalf("stored event %q (%v)", it.Payload, err)
			}
		}
	}
}

func FuzzEnvelopeEndpoint(f *testing.F) {
	for _, data := range sentryGoEnvelopes(f) {
		f.Add(data)
	}
	for _, b := range [][]byte{
		nil, []byte("{}"), []byte("{}\n"), eventEnvelope("a"), eventEnvelope("drop"),
		envelope(`{"event_id":null}`, "event", `{"event_id":"`+otherID+`"}`, "attachment", "x\ny"),
		envelope(`{}`, "event", `{}`, "event", `{}`),
		envelope(`{"event_id":"`+eventID+`"}`, "event", `{"event_id":"`+otherID+`"}`),
		[]byte("{}\n{\"type\":\"event\"}\n{\"message\":\"drop\"}\n{\"type\":\"session\"}\n{}"),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		serve(t, "/api/42/envelope/", body)
	})
}

func FuzzStoreEndpoint(f *testing.F) {
	for _, s := range []string{
		"", "{}", "[]", `{"message":"drop"}`, `{"event_id":"` + eventID + `","message":"m","level":"error"}`,
		`{"event_id":"9EC79C33-EC99-42AB-8353-589FCB2E04DC"}`, `{"event_id":5}`, `{"a":1e999}`, `{"a":"\ud800"}`, "{} x",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		serve(t, "/api/42/store/", body)
	})
}
