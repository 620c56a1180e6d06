package lokiexporter

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
)

// received is one push as the fake Loki saw it.
type received struct {
	header http.Header
	req    push.PushRequest
	status int
}

// fakeLoki decodes pushes and answers with a scripted status per call.
type fakeLoki struct {
	t      *testing.T
	mu     sync.Mutex
	got    []received
	answer func(call int, r *http.Request) (status int, header map[string]string, body string)
	srv    *httptest.Server
	notify chan struct{}
}

func newFakeLoki(t *testing.T, answer func(call int, r *http.Request) (int, map[string]string, string)) *fakeLoki {
	f := &fakeLoki{t: t, answer: answer, notify: make(chan struct{}, 1000)}
	f.srv = httptest.NewUnstartedServer(f)
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS failures
	return f
}

func (f *fakeLoki) start() *fakeLoki {
	f.srv.Start()
	f.t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	rec := received{header: r.Header.Clone()}
	if r.URL.Path != PushPath || r.Method != http.MethodPost {
		http.Error(w, "404 page not found", 404)
		return
	}
	dec, err := snappy.Decode(nil, raw)
	if err != nil {
		f.t.Errorf("body is not snappy block-encoded: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	if err := rec.req.Unmarshal(dec); err != nil {
		f.t.Errorf("body is not a PushRequest: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	call := len(f.got) + 1
	f.mu.Unlock()
	status, hdr, body := http.StatusNoContent, map[string]string(nil), ""
	if f.answer != nil {
		status, hdr, body = f.answer(call, r)
	}
	rec.status = status
	f.mu.Lock()
	f.got = append(f.got, rec)
	f.mu.Unlock()
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeLoki) calls() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

// delivered returns the pushes answered with 2xx.
func (f *fakeLoki) delivered() []received {
	var out []received
	for _, r := range f.calls() {
		if r.status < 300 {
			out = append(out, r)
		}
	}
	return out
}

func testConfig(url string) Config {
	return Config{
		URL:   url,
		Batch: exporterhelper.BatchConfig{MaxWait: 10 * time.Millisecond},
		Retry: exporterhelper.RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
	}
}

type harness struct {
	exp *Exporter
	reg *prometheus.Registry
	log *exportertest.LogBuffer
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), log: &exportertest.LogBuffer{}}
	exp, err := New(cfg, Settings{Logger: h.log.Logger(), QueueMetrics: exporterhelper.NewMetrics(h.reg)}, WithMetrics(NewMetrics(h.reg)))
	if err != nil {
		t.Fatal(err)
	}
	exportertest.Start(t, exp)
	h.exp = exp
	return h
}

// metric returns the value of the sample of family name whose labels include want.
func (h *harness) metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	return exportertest.Metric(t, h.reg, name, want)
}

// parseLabelString parses {a="b", c="d"} as written by appendLabelString.
func parseLabelString(s string) ([]label, error) {
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("not braced: %q", s)
	}
	s = s[1 : len(s)-1]
	var out []label
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("no name= in %q", s)
		}
		name := s[:eq]
		if !validLabelName(name) {
			return nil, fmt.Errorf("invalid name %q", name)
		}
		q, err := strconv.QuotedPrefix(s[eq+1:])
		if err != nil {
			return nil, fmt.Errorf("value of %s: %v", name, err)
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return nil, err
		}
		out = append(out, label{name, v})
		s = s[eq+1+len(q):]
		if s != "" {
			if !strings.HasPrefix(s, ", ") {
				return nil, fmt.Errorf("missing separator before %q", s)
			}
			s = s[2:]
		}
	}
	return out, nil
}
