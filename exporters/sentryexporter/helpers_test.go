package sentryexporter

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// The application's key (its DSN points at the sidecar) and upstream's.
const (
	appKey      = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6"
	upstreamKey = "f0e1d2c3b4a5f6e7d8c9f0e1d2c3b4a5"
	appDSN      = "http://" + appKey + "@127.0.0.1:4319/1"
)

// call is one request as the fake Sentry saw it.
type call struct {
	at      time.Time // arrival
	replied time.Time // just before the answer was written
	path    string
	header  http.Header
	raw     []byte // the body, decompressed
	env     *sentryenv.Envelope
	id      string // the envelope's event_id
	status  int
}

// reply is a scripted answer.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeSentry is a Sentry envelope endpoint that decodes every request strictly and
// answers as scripted: answer gets the call and how many calls came before it.
type fakeSentry struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(c *call, n int) reply

	mu      sync.Mutex
	calls   []*call
	changed chan struct{}
}

func newFakeSentry(t *testing.T, answer func(c *call, n int) reply) *fakeSentry {
	f := &fakeSentry{t: t, answer: answer, changed: make(chan struct{})}
	if f.answer == nil {
		f.answer = func(*call, int) reply { return reply{status: 200} }
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSentry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{at: time.Now(), path: r.URL.Path, header: r.Header.Clone()}
	in := exportertest.NewSentBody(r.Body)
	var body io.Reader = in
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(in)
		if err != nil {
			if !in.Abandoned() {
				f.t.Errorf("Content-Encoding gzip but the body is not gzip: %v", err)
			}
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		if !in.Abandoned() {
			f.t.Errorf("read body: %v", err)
		}
		http.Error(w, err.Error(), 400)
		return
	}
	c.raw = raw
	c.env, err = sentryenv.Parse(raw, sentryenv.Limits{})
	if err != nil {
		f.t.Errorf("the exporter sent an invalid envelope: %v\n%s", err, raw)
		http.Error(w, err.Error(), 400)
		return
	}
	c.id = c.env.EventID()
	f.mu.Lock()
	n := len(f.calls)
	f.mu.Unlock()
	rep := f.answer(c, n)
	if rep.status == 0 {
		rep.status = 200
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.body == "" && rep.status == 200 {
		rep.body = `{"id":"` + c.id + `"}`
	}
	c.status = rep.status
	c.replied = time.Now()
	f.mu.Lock()
	f.calls = append(f.calls, c)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

// snapshot returns the calls so far and a channel closed at the next one.
func (f *fakeSentry) snapshot() ([]*call, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*call(nil), f.calls...), f.changed
}

// waitFor waits (within a generous deadline) until cond holds for the calls so far.
func (f *fakeSentry) waitFor(t *testing.T, what string, cond func([]*call) bool) []*call {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		calls, changed := f.snapshot()
		if cond(calls) {
			return calls
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; calls: %s", what, summary(calls))
		}
	}
}

// callsOf returns the calls that carried event id.
func callsOf(calls []*call, id string) []*call {
	var out []*call
	for _, c := range calls {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

func summary(calls []*call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.id + ":" + http.StatusText(c.status) + " ")
	}
	return b.String()
}

// dsnFor is the upstream DSN of the fake, with a path prefix.
func (f *fakeSentry) dsn() confval.Secret {
	return confval.Secret("http://" + upstreamKey + "@" + f.srv.Listener.Addr().String() + "/prefix/42")
}

// eventID returns a distinct event id for n.
func eventID(n int) string {
	const hex = "0123456789abcdef"
	b := []byte("00000000000000000000000000000000")
	for i := 31; n > 0 && i >= 0; i-- {
		b[i] = hex[n%16]
		n /= 16
	}
	return string(b)
}

// makeEnvelope builds an envelope as the sidecar stores it: header with event_id, the
// application's dsn and trace context, then one item of type typ.
func makeEnvelope(t testing.TB, id, typ string) []byte {
	t.Helper()
	payload := map[string]any{
		"event_id":  id,
		"timestamp": "2026-05-01T12:00:00.000Z",
		"platform":  "go",
		"level":     "error",
		"message":   "boom",
	}
	if typ == "transaction" {
		payload["type"] = "transaction"
		payload["start_timestamp"] = "2026-05-01T11:59:59.000Z"
		payload["contexts"] = map[string]any{"trace": map[string]any{"trace_id": strings.Repeat("ab", 16), "span_id": strings.Repeat("cd", 8)}}
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	env := sentryenv.Envelope{
		Header: map[string]any{
			"event_id": id,
			"dsn":      appDSN,
			"sent_at":  "2026-05-01T12:00:00.5Z",
			"sdk":      map[string]any{"name": "sentry.go", "version": "0.50.0"},
			"trace": map[string]any{
				"trace_id":    strings.Repeat("ab", 16),
				"public_key":  appKey,
				"sample_rate": json.Number("0.10000000000000001"),
			},
		},
		Items: []sentryenv.Item{{Type: typ, Payload: p}},
	}
	return env.Marshal()
}

// harness is an Exporter with its own registry, log and acknowledgements.
type harness struct {
	exp  *Exporter
	reg  *prometheus.Registry
	log  *exportertest.LogBuffer
	acks *exportertest.Acks
}

// testConfig is a fast-retrying configuration for the fake.
func testConfig(f *fakeSentry) Config {
	return Config{
		DSN:         f.dsn(),
		Concurrency: 1,
		Retry:       exporterhelper.RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
		Timeout:     5 * time.Second,
	}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), log: &exportertest.LogBuffer{}, acks: exportertest.NewAcks()}
	exp, err := New(cfg, Settings{Logger: h.log.Logger(), QueueMetrics: exporterhelper.NewMetrics(h.reg), Name: "sentry-test"}, NewMetrics(h.reg))
	if err != nil {
		t.Fatal(err)
	}
	exportertest.Start(t, exp)
	h.exp = exp
	return h
}

// export hands the envelope to the exporter, acknowledged under ack id n.
func (h *harness) export(t *testing.T, n int, data []byte) {
	t.Helper()
	if err := h.exp.ExportEnvelope(t.Context(), pipeline.Envelope{Data: data, Ack: h.acks.Func(n)}); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	all := map[string]string{"exporter": "sentry-test"}
	for k, v := range labels {
		all[k] = v
	}
	return exportertest.Metric(t, h.reg, name, all)
}

// itemsOf returns the bytes after the header line of a serialized envelope.
func itemsOf(data []byte) []byte {
	_, rest, _ := bytes.Cut(data, []byte{'\n'})
	return rest
}
