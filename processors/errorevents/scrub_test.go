package errorevents

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/processors/redact"
)

// TestScrubEnvelopeEveryItem sends a secret through every place of an envelope an
// SDK fills (headers, keys, every item type, attachment bytes and filename) and
// checks that the stored envelope holds it in no form.
func TestScrubEnvelopeEveryItem(t *testing.T) {
	const secret = `Rot4ted-DB-pass/"x"`
	reg := redact.NewRegistry(nil)
	reg.Set("database/creds/app", []string{secret})
	b := New(defaults(), Grafana{}, Settings{Redactor: reg})

	js := strings.ReplaceAll(secret, `"`, `\"`)
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	items := []struct{ typ, header, payload string }{
		{"event", `{}`, `{"message":"login failed for ` + js + `","extra":{"` + js + `":1}}`},
		{"transaction", `{}`, `{"type":"transaction","contexts":{"trace":{"data":{"db.statement":"ALTER USER app WITH PASSWORD '` + js + `'"}}},` +
			`"spans":[{"description":"ALTER USER app WITH PASSWORD '` + js + `'","data":{"db.statement":"` + js + `"}}]}`},
		{"log", `{"item_count":1,"content_type":"application/vnd.sentry.items.log+json"}`,
			`{"items":[{"body":"connected with ` + js + `","attributes":{"db.password":{"value":"` + js + `","type":"string"},"` + js + `":{"value":1,"type":"integer"}}}]}`},
		{"attachment", `{"filename":"dump-` + js + `.txt","content_type":"text/plain"}`, "binary\x00\xffpassword=" + secret + "\nbase64=" + b64 + "\n"},
		{"session", `{}`, `{"sid":"x","attrs":{"release":"` + js + `"}}`},
		{"sessions", `{}`, `{"aggregates":[],"attrs":{"environment":"` + js + `"}}`},
		{"user_report", `{}`, `{"comments":"my password is ` + js + `","name":"a"}`},
		{"feedback", `{}`, `{"contexts":{"feedback":{"message":"` + js + `"}}}`},
		{"check_in", `{}`, `{"monitor_slug":"` + js + `","status":"ok"}`},
		{"profile", `{}`, `{"transaction":{"name":"` + js + `"}}`},
		{"client_report", `{}`, `{"discarded_events":[{"reason":"` + js + `"}]}`},
		{"replay_recording", `{}`, "compressed? no: " + secret},
		{"unknown_type", `{"` + js + `":"` + js + `"}`, "plain " + hex.EncodeToString([]byte(secret))},
	}
	var raw bytes.Buffer
	raw.WriteString(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"http://k@127.0.0.1/1","trace":{"public_key":"k","` + js + `":"` + js + `"}}` + "\n")
	for _, it := range items {
		h := strings.TrimSuffix(it.header, "}")
		if h != "{" {
			h += ","
		}
		fmt.Fprintf(&raw, "%s\"type\":%q,\"length\":%d}\n%s\n", h, it.typ, len(it.payload), it.payload)
	}
	fmt.Fprintf(&raw, "{\"type\":%q,\"length\":2}\n{}\n", strings.ToLower("x"+secret[:6]+"zzzzzz"))
	env, err := sentryenv.Parse(raw.Bytes(), sentryenv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := len(env.Items)
	if b.Process(decodeFor(t, env.Items[0].Payload)) == false {
		t.Fatal("event not kept")
	}
	if dropped := b.ScrubEnvelope(env); dropped != 0 || len(env.Items) != n {
		t.Fatalf("dropped %d items of %d", dropped, n)
	}
	out := env.Marshal()
	for _, form := range []string{secret, js, b64, hex.EncodeToString([]byte(secret)), "Rot4ted-DB"} {
		if bytes.Contains(out, []byte(form)) {
			t.Errorf("the scrubbed envelope still holds %q:\n%s", form, out)
		}
	}
	back, err := sentryenv.Parse(out, sentryenv.Limits{})
	if err != nil || len(back.Items) != n {
		t.Fatalf("scrubbed envelope does not parse back: %v", err)
	}
	for i, it := range back.Items {
		if it.Type != items[min(i, len(items)-1)].typ && i < len(items) {
			t.Errorf("item %d: type %q, want %q", i, it.Type, items[i].typ)
		}
	}
	if fn, _ := back.Items[3].Header["filename"].(string); fn != "dump-[REDACTED].txt" {
		t.Errorf("attachment filename = %q", fn)
	}
	if !bytes.HasPrefix(back.Items[3].Payload, []byte("binary\x00\xffpassword=[REDACTED]")) {
		t.Errorf("attachment bytes = %q", back.Items[3].Payload)
	}

	// An item whose type is a secret value is dropped.
	env = &sentryenv.Envelope{Header: map[string]any{}, Items: []sentryenv.Item{{Type: "rot4ted-db-pass"}, {Type: "event", Payload: []byte(`{}`)}}}
	reg.Set("t", []string{"rot4ted-db-pass"})
	if dropped := b.ScrubEnvelope(env); dropped != 1 || len(env.Items) != 1 || env.Items[0].Type != "event" {
		t.Errorf("dropped %d, items %+v", dropped, env.Items)
	}
}

// TestScrubObjectKeys: keys holding a secret are replaced without losing members.
func TestScrubObjectKeys(t *testing.T) {
	b := New(defaults(), Grafana{}, Settings{Redactor: fakeRedactor{"hunter22"}})
	m := map[string]any{"hunter22": 1, "x-hunter22": []any{"hunter22", map[string]any{"hunter22": "a"}}, "[REDACTED]": 3}
	if !b.scrubObject(m) {
		t.Fatal("nothing changed")
	}
	got, _ := encodeJSON(m)
	if strings.Contains(string(got), "hunter22") || len(m) != 3 {
		t.Errorf("got %s", got)
	}
}

func decodeFor(t *testing.T, p []byte) map[string]any {
	t.Helper()
	m, err := decodeJSONObject(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
