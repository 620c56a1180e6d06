package sentryreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey   = "k3y-for-tests"
	eventID   = "9ec79c33ec9942ab8353589fcb2e04dc"
	otherID   = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	authValue = "Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=" + testKey
)

// memQueue is an Appender keeping entries in memory; err, when set, is returned.
type memQueue struct {
	mu      sync.Mutex
	entries [][]byte
	err     error
}

func (q *memQueue) Append(_ context.Context, e []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.entries = append(q.entries, bytes.Clone(e))
	return nil
}

func (q *memQueue) setErr(err error) { q.mu.Lock(); q.err = err; q.mu.Unlock() }

func (q *memQueue) len() int { q.mu.Lock(); defer q.mu.Unlock(); return len(q.entries) }

// envelopes parses every stored entry strictly.
func (q *memQueue) envelopes(t testing.TB) []*sentryenv.Envelope {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*sentryenv.Envelope
	for _, e := range q.entries {
		env, err := sentryenv.Parse(e, sentryenv.Limits{})
		if err != nil {
			t.Fatalf("stored envelope does not parse: %v\n%s", err, e)
		}
		out = append(out, env)
	}
	return out
}

// events returns the decoded event items of every stored envelope.
func (q *memQueue) events(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, env := range q.envelopes(t) {
		for _, it := range env.Items {
			if it.Type != "event" {
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal(it.Payload, &ev); err != nil {
				t.Fatalf("stored event is not JSON: %v", err)
			}
			if ev["event_id"] != env.EventID() || !sentryenv.ValidEventID(env.EventID()) {
				t.Fatalf("stored event_id %v, envelope header %q", ev["event_id"], env.EventID())
			}
			out = append(out, ev)
		}
	}
	return out
}

func testConfig() Config {
	cfg := Config{Listen: "127.0.0.1:0", PublicKey: testKey}
	cfg.ApplyDefaults()
	return cfg
}

// startReceiver starts a receiver on a free loopback port.
func startReceiver(t *testing.T, cfg Config, set Settings) *Receiver {
	t.Helper()
	if set.Queue == nil {
		set.Queue = &memQueue{}
	}
	r := New(cfg, set)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   string
	id     string // {"id": ...}
	detail string // {"detail": ...}
}

// post sends body to path on r with the given headers (nil: X-Sentry-Auth with the
// test key and the envelope content type).
func post(t testing.TB, r *Receiver, path string, hdr map[string]string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.Addr().String()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if hdr == nil {
		hdr = map[string]string{"X-Sentry-Auth": authValue, "Content-Type": EnvelopeContentType}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	var v struct {
		ID     string `json:"id"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("response %d is not JSON: %q", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("response Content-Type %q", ct)
	}
	out.id, out.detail = v.ID, v.Detail
	return out
}

// envelope builds a serialized envelope: a header and (type, payload) pairs.
func envelope(header string, items ...string) []byte {
	var b strings.Builder
	b.WriteString(header)
	b.WriteByte('\n')
	for i := 0; i+1 < len(items); i += 2 {
		b.WriteString(`{"type":"` + items[i] + `","length":` + itoa(len(items[i+1])) + "}\n")
		b.WriteString(items[i+1])
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func eventEnvelope(msg string) []byte {
	return envelope(`{"event_id":"`+eventID+`"}`, "event", `{"event_id":"`+eventID+`","message":"`+msg+`","level":"error"}`)
}

// sentryGoEnvelopes are envelopes captured from sentry-go v0.50.0 (see
// internal/sentryenv/testdata).
func sentryGoEnvelopes(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob("../../internal/sentryenv/testdata/*.envelope")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no sentry-go envelopes: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
