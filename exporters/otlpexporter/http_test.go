package otlpexporter

import (
	"compress/gzip"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// httpCall is one POST as the fake backend saw it.
type httpCall struct {
	at     time.Time
	path   string
	header http.Header
	traces ptrace.Traces
	status int
}

// reply is a scripted HTTP answer.
type reply struct {
	status int
	header map[string]string
	body   []byte
}

// fakeHTTP is an OTLP/HTTP backend that decodes every request and answers as scripted.
type fakeHTTP struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(call int) reply

	mu    sync.Mutex
	calls []httpCall
}

func newFakeHTTP(t *testing.T, answer func(call int) reply) *fakeHTTP {
	f := &fakeHTTP{t: t, answer: answer}
	f.srv = httptest.NewUnstartedServer(f)
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS failures
	return f
}

func (f *fakeHTTP) start() *fakeHTTP {
	f.srv.Start()
	f.t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHTTP) startTLS(ca *testCA) *fakeHTTP {
	f.srv.TLS = ca.serverConfig()
	f.srv.StartTLS()
	f.t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
		http.Error(w, err.Error(), 400)
		return
	}
	if r.ContentLength >= 0 && r.Header.Get("Content-Encoding") == "" && int64(len(raw)) != r.ContentLength {
		f.t.Errorf("body of %d bytes, Content-Length %d", len(raw), r.ContentLength)
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		f.t.Errorf("body is not an ExportTraceServiceRequest: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	c := httpCall{at: time.Now(), path: r.URL.Path, header: r.Header.Clone(), traces: ptrace.NewTraces()}
	req.Traces().CopyTo(c.traces)
	f.mu.Lock()
	n := len(f.calls) + 1
	f.mu.Unlock()
	rep := reply{status: 200}
	if f.answer != nil {
		rep = f.answer(n)
	}
	c.status = rep.status
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

func (f *fakeHTTP) got() []httpCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]httpCall(nil), f.calls...)
}

func statusBody(t *testing.T, msg string) []byte {
	b, err := proto.Marshal(&spb.Status{Code: 3, Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func partialBody(t *testing.T, n int64, msg string) []byte {
	resp, _ := partial(n, msg)
	b, err := resp.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHTTPConcatenatesChunksWithHeadersAndGzip(t *testing.T) {
	for _, compression := range []string{CompressionGzip, CompressionNone} {
		t.Run(compression, func(t *testing.T) {
			f := newFakeHTTP(t, nil).start()
			cfg := testConfig(f.srv.URL, ProtocolHTTP)
			cfg.Compression = compression
			cfg.Batch.MaxWait = time.Hour
			cfg.Headers = map[string]confval.Secret{"X-Scope-OrgID": "tenant-a", "Authorization": "Bearer s3cret"}
			h := newHarness(t, cfg)
			a := exportertest.NewAcks()
			var want []string
			for i, svc := range []string{"checkout", "payments", "checkout"} {
				td := makeTraces(svc, uint64(i), i*10, 3+i)
				want = append(want, spanSummary(td)...)
				if err := h.exp.ExportTraces(context.Background(), batch(t, td, a.Func(i))); err != nil {
					t.Fatal(err)
				}
			}
			h.exp.Flush()
			for i := range 3 {
				if err := a.Wait(t, i); err != nil {
					t.Fatalf("ack %d = %v", i, err)
				}
			}
			calls := f.got()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want one", len(calls))
			}
			c := calls[0]
			if c.path != TracesPath {
				t.Errorf("posted to %q, want %s appended to the endpoint", c.path, TracesPath)
			}
			if got := spanSummary(c.traces); strings.Join(got, ",") != strings.Join(sorted(want), ",") {
				t.Errorf("backend saw spans %v, want %v", got, sorted(want))
			}
			if c.traces.ResourceSpans().Len() != 3 {
				t.Errorf("%d resources, want 3", c.traces.ResourceSpans().Len())
			}
			wantEnc := map[string]string{CompressionGzip: "gzip", CompressionNone: ""}[compression]
			for k, v := range map[string]string{
				"X-Scope-Orgid": "tenant-a", "Authorization": "Bearer s3cret", "Content-Encoding": wantEnc,
				"Content-Type": "application/x-protobuf", "User-Agent": UserAgent,
			} {
				if got := c.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if v := h.sent(t); v != 12 {
				t.Errorf("sent %v, want 12 spans", v)
			}
		})
	}
}

func TestHTTPRetries(t *testing.T) {
	// An HTTP date has whole seconds: 3s ahead, truncated, is still more than the 1s
	// lower bound asserted below by the time the exporter reads it.
	date := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name     string
		first    reply
		minDelay time.Duration // a lower bound only
	}{
		{"429 Retry-After seconds", reply{status: 429, header: map[string]string{"Retry-After": "1"}}, time.Second},
		{"429 Retry-After date", reply{status: 429, header: map[string]string{"Retry-After": date}}, time.Second},
		{"503", reply{status: 503, body: []byte("upstream connect error")}, 0},
		{"502", reply{status: 502}, 0},
		{"504", reply{status: 504}, 0},
		{"500", reply{status: 500, body: []byte("internal")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeHTTP(t, func(call int) reply {
				if call == 1 {
					return tt.first
				}
				return reply{status: 200}
			}).start()
			h := newHarness(t, testConfig(f.srv.URL, ProtocolHTTP))
			a := exportertest.NewAcks()
			if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 3), a.Func(1))); err != nil {
				t.Fatal(err)
			}
			if err := a.Wait(t, 1); err != nil {
				t.Fatalf("ack = %v, want delivered after a retry", err)
			}
			calls := f.got()
			if len(calls) != 2 || calls[1].traces.SpanCount() != 3 {
				t.Fatalf("%d calls, want 2", len(calls))
			}
			if gap := calls[1].at.Sub(calls[0].at); gap < tt.minDelay {
				t.Errorf("retried after %s, before the %s the backend asked for", gap, tt.minDelay)
			}
			if v := h.sent(t); v != 3 {
				t.Errorf("sent %v", v)
			}
		})
	}
}

func TestHTTPPermanentErrors(t *testing.T) {
	tests := []struct {
		name   string
		reply  reply
		reason string
		want   []string // in the error
	}{
		{"400 status proto", reply{status: 400, header: map[string]string{"Content-Type": "application/x-protobuf"}},
			ReasonBadRequest, []string{"400 Bad Request", "span name is empty"}},
		{"401", reply{status: 401, body: []byte("no org id")}, ReasonUnauthorized, []string{"no org id", "check headers"}},
		{"403", reply{status: 403}, ReasonUnauthorized, []string{"(empty body)", "X-Scope-OrgID"}},
		{"404", reply{status: 404, body: []byte("404 page not found")}, ReasonNotFound, []string{"check the endpoint path, e.g. /v1/traces"}},
		{"413", reply{status: 413, body: []byte("request body too large")}, ReasonTooLarge, []string{"batch.max_bytes"}},
		{"422", reply{status: 422}, ReasonBadRequest, []string{"422"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reply.header["Content-Type"] == "application/x-protobuf" {
				tt.reply.body = statusBody(t, "span name is empty")
			}
			f := newFakeHTTP(t, func(int) reply { return tt.reply }).start()
			h := newHarness(t, testConfig(f.srv.URL, ProtocolHTTP))
			a := exportertest.NewAcks()
			if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 5), a.Func(1))); err != nil {
				t.Fatal(err)
			}
			err := a.Wait(t, 1)
			if reason, ok := pipeline.IsPermanent(err); !ok || reason != tt.reason {
				t.Fatalf("ack = %v, want permanent %q", err, tt.reason)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := len(f.got()); n != 1 {
				t.Errorf("%d calls; permanent errors are not retried", n)
			}
			if v := h.dropped(t, tt.reason); v != 5 {
				t.Errorf("dropped %v, want 5", v)
			}
		})
	}
}

func TestHTTPPartialSuccess(t *testing.T) {
	f := newFakeHTTP(t, func(int) reply {
		return reply{status: 200, header: map[string]string{"Content-Type": "application/x-protobuf"},
			body: partialBody(t, 4, "4 spans exceed the attribute limit")}
	}).start()
	h := newHarness(t, testConfig(f.srv.URL, ProtocolHTTP))
	a := exportertest.NewAcks()
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 9), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	err := a.Wait(t, 1)
	if reason, _ := pipeline.IsPermanent(err); reason != ReasonPartialSuccess || pipeline.RejectedCount(err) != 4 ||
		!strings.Contains(err.Error(), "attribute limit") {
		t.Fatalf("ack = %v, want partial_success rejecting 4 with the backend's message", err)
	}
	if d, s := h.dropped(t, ReasonPartialSuccess), h.sent(t); d != 4 || s != 5 {
		t.Errorf("dropped %v, sent %v; want 4 and 5", d, s)
	}
}

func TestHTTPEndpointPathKept(t *testing.T) {
	f := newFakeHTTP(t, nil).start()
	h := newHarness(t, testConfig(f.srv.URL+"/otlp/v1/traces", ProtocolHTTP))
	a := exportertest.NewAcks()
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 1), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
	if p := f.got()[0].path; p != "/otlp/v1/traces" {
		t.Fatalf("posted to %q", p)
	}
}

func TestHTTPTLS(t *testing.T) {
	ca := newTestCA(t)
	f := newFakeHTTP(t, nil).startTLS(ca)
	t.Run("verified", func(t *testing.T) {
		cfg := testConfig(f.srv.URL, ProtocolHTTP)
		cfg.TLS.CAFile = ca.caFile
		h := newHarness(t, cfg)
		a := exportertest.NewAcks()
		if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 2), a.Func(1))); err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(t, 1); err != nil {
			t.Fatal(err)
		}
		if n := len(f.got()); n != 1 {
			t.Fatalf("%d calls", n)
		}
	})
	t.Run("unknown CA is retried with a hint", func(t *testing.T) {
		exp, err := New(testConfig(f.srv.URL, ProtocolHTTP), Settings{})
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(context.Background())
		perr := exp.client.push(context.Background(), []chunk{{data: batch(t, makeTraces("svc", 1, 0, 1), nil).Data, spans: 1}})
		if _, perm := pipeline.IsPermanent(perr); perr == nil || perm || !strings.Contains(perr.Error(), "check tls") {
			t.Fatalf("push = %v, want a retryable error with the TLS hint", perr)
		}
	})
}
