package lokiexporter

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/pipeline"
)

var testStream = pipeline.NewStream(map[string]string{"service": "api", "namespace": "prod"})

func batch(id int, a *exportertest.Acks, lines ...string) pipeline.Batch {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := pipeline.Batch{}
	for i, l := range lines {
		b.Records = append(b.Records, pipeline.Record{
			Time: t0.Add(time.Duration(10*id+i) * time.Second), Line: l, Stream: testStream, Level: pipeline.LevelInfo,
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		})
	}
	if a != nil {
		b.Ack = a.Func(id)
	}
	return b
}

func export(t *testing.T, e *Exporter, b pipeline.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Export(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func lines(rs []received) []string {
	var out []string
	for _, r := range rs {
		for _, s := range r.req.Streams {
			for _, e := range s.Entries {
				out = append(out, e.Line)
			}
		}
	}
	return out
}

func TestExportDelivers(t *testing.T) {
	loki := newFakeLoki(t, nil).start()
	cfg := testConfig(loki.srv.URL)
	cfg.Labels = map[string]string{"cluster": "eu1"}
	cfg.TenantID = "team-a"
	h := newHarness(t, cfg)
	a := exportertest.NewAcks()
	export(t, h.exp, batch(1, a, "one", "two"))
	export(t, h.exp, batch(2, a, "three"))
	for id := 1; id <= 2; id++ {
		if err := a.Wait(t, id); err != nil {
			t.Fatalf("ack %d = %v", id, err)
		}
	}
	got := loki.delivered()
	if strings.Join(lines(got), ",") != "one,two,three" {
		t.Fatalf("Loki received %v", lines(got))
	}
	r := got[0]
	if l := r.req.Streams[0].Labels; l != `{cluster="eu1", level="info", namespace="prod", service="api"}` {
		t.Errorf("labels %s", l)
	}
	if md := r.req.Streams[0].Entries[0].StructuredMetadata; len(md) != 1 || md[0].Name != "trace_id" {
		t.Errorf("structured metadata %v", md)
	}
	for k, want := range map[string]string{
		"Content-Type":     "application/x-protobuf",
		"X-Scope-Orgid":    "team-a",
		"User-Agent":       UserAgent,
		"Content-Encoding": "",
		"Authorization":    "",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", map[string]string{"exporter": "loki"}); v != 3 {
		t.Errorf("sent records %v", v)
	}
}

func TestExportAuthHeaders(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	passFile := filepath.Join(dir, "pass")
	for f, v := range map[string]string{tokenFile: "tok-1\n", passFile: "pw-1\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	cases := []struct {
		name   string
		mutate func(*Config)
		rotate func()
		want   []string // Authorization of the first and, after rotate, the second push
	}{
		{"basic", func(c *Config) { c.BasicAuth = BasicAuth{Username: "u", Password: "s3cret"} }, nil,
			[]string{basic("u", "s3cret")}},
		{"bearer", func(c *Config) { c.BearerToken = "abc" }, nil, []string{"Bearer abc"}},
		{"bearer file rotated", func(c *Config) { c.BearerTokenFile = tokenFile },
			func() { writeNewer(t, tokenFile, "tok-2-longer\n") }, []string{"Bearer tok-1", "Bearer tok-2-longer"}},
		{"password file rotated", func(c *Config) { c.BasicAuth = BasicAuth{Username: "u", PasswordFile: passFile} },
			func() { writeNewer(t, passFile, "pw-2\n") }, []string{basic("u", "pw-1"), basic("u", "pw-2")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loki := newFakeLoki(t, nil).start()
			cfg := testConfig(loki.srv.URL)
			tc.mutate(&cfg)
			h := newHarness(t, cfg)
			a := exportertest.NewAcks()
			for i, want := range tc.want {
				if i > 0 && tc.rotate != nil {
					tc.rotate()
				}
				export(t, h.exp, batch(i, a, "line"))
				if err := a.Wait(t, i); err != nil {
					t.Fatal(err)
				}
				got := loki.delivered()
				if auth := got[len(got)-1].header.Get("Authorization"); auth != want {
					t.Fatalf("push %d: Authorization %q, want %q", i, auth, want)
				}
			}
		})
	}
}

// writeNewer replaces a file and moves its mtime forward, so the change is seen even
// on file systems with coarse timestamps.
func writeNewer(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
}

func TestExport429RetryAfter(t *testing.T) {
	var ackedEarly atomic.Bool
	a := exportertest.NewAcks()
	loki := newFakeLoki(t, func(call int, _ *http.Request) (int, map[string]string, string) {
		if len(a.Get(1)) > 0 {
			ackedEarly.Store(true)
		}
		if call == 1 {
			return 429, map[string]string{"Retry-After": "1"}, "ingestion rate limit exceeded"
		}
		return 204, nil, ""
	}).start()
	h := newHarness(t, testConfig(loki.srv.URL))
	export(t, h.exp, batch(1, a, "throttled"))
	if err := a.Wait(t, 1); err != nil {
		t.Fatalf("ack = %v", err)
	}
	if ackedEarly.Load() {
		t.Fatal("acknowledged before Loki accepted the push")
	}
	if n := len(loki.delivered()); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	if n := len(loki.calls()); n != 2 {
		t.Fatalf("%d pushes, want 2", n)
	}
	if v := h.metric(t, "outrider_exporter_requests_total", map[string]string{"result": "retry"}); v != 1 {
		t.Errorf("requests{result=retry} = %v", v)
	}
}

func TestExport500ThenSuccess(t *testing.T) {
	loki := newFakeLoki(t, func(call int, _ *http.Request) (int, map[string]string, string) {
		if call <= 3 {
			return 500, nil, "ingester unavailable"
		}
		return 204, nil, ""
	}).start()
	h := newHarness(t, testConfig(loki.srv.URL))
	a := exportertest.NewAcks()
	export(t, h.exp, batch(1, a, "x", "y"))
	if err := a.Wait(t, 1); err != nil {
		t.Fatalf("ack = %v", err)
	}
	if len(loki.calls()) != 4 || len(loki.delivered()) != 1 {
		t.Fatalf("%d calls, %d delivered; want 4, 1", len(loki.calls()), len(loki.delivered()))
	}
	if v := h.metric(t, "outrider_exporter_retries_total", nil); v != 3 {
		t.Errorf("retries %v, want 3", v)
	}
}

func TestExportPermanentRejections(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		reason  string
		hint    string
		dropped float64 // Loki stores the entries of a 400 it does not list
		pushes  int     // a refusal that does not say which records is split and resent
		lines   int     // drop log lines
	}{
		{"out of order", 400, "entry with timestamp 2026-03-01 ignored, reason: 'entry out of order' for stream: {service=\"api\"},\nuser 'fake', total ignored: 1 out of 3 for stream: {service=\"api\"}", ReasonOutOfOrder, "entry out of order", 1, 1, 1},
		{"grouped", 400, "2 errors like: entry for stream '{service=\"api\"}' has timestamp too old: 2026-01-01, oldest acceptable timestamp is: 2026-03-01", ReasonTooOld, "too old", 2, 1, 1},
		{"body too long to count", 400, strings.Repeat("entry too far behind; ", 4000), ReasonOutOfOrder, "too far behind", 3, 5, 3},
		{"unauthorized", 401, "no org id", ReasonUnauthorized, "check tenant_id and the credentials", 3, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loki := newFakeLoki(t, func(int, *http.Request) (int, map[string]string, string) {
				return tc.status, nil, tc.body
			}).start()
			h := newHarness(t, testConfig(loki.srv.URL))
			a := exportertest.NewAcks()
			export(t, h.exp, batch(1, a, "a", "b", "c"))
			err := a.Wait(t, 1)
			if reason, ok := pipeline.IsPermanent(err); !ok || reason != tc.reason {
				t.Fatalf("ack = %v, want permanent %s", err, tc.reason)
			}
			if n := len(loki.calls()); n != tc.pushes {
				t.Fatalf("pushed %d times, want %d: permanent rejections are not retried, only split", n, tc.pushes)
			}
			if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"exporter": "loki", "reason": tc.reason}); v != tc.dropped {
				t.Errorf("dropped %v, want %v", v, tc.dropped)
			}
			logs := h.log.String()
			if strings.Count(logs, "dropped records") != tc.lines || !strings.Contains(logs, tc.hint) {
				t.Errorf("log %q: want %d drop lines mentioning %q", logs, tc.lines, tc.hint)
			}
		})
	}
}

func TestExportConnectionRefusedThenUp(t *testing.T) {
	// Reserve a port, free it, point the exporter at it, and bring Loki up there only
	// after the exporter has failed to connect.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	loki := newFakeLoki(t, nil)
	h := newHarness(t, testConfig("http://"+addr))
	a := exportertest.NewAcks()
	export(t, h.exp, batch(1, a, "waited"))
	deadline := time.Now().Add(10 * time.Second)
	for h.metric(t, "outrider_exporter_retries_total", nil) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no failed attempts against a closed port")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := a.Get(1); len(got) != 0 {
		t.Fatalf("acknowledged while Loki was down: %v", got)
	}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken by another process meanwhile: %v", addr, err)
	}
	loki.srv.Listener.Close()
	loki.srv.Listener = l
	loki.start()
	if err := a.Wait(t, 1); err != nil {
		t.Fatalf("ack = %v", err)
	}
	if got := lines(loki.delivered()); len(got) != 1 || got[0] != "waited" {
		t.Fatalf("delivered %v", got)
	}
}

func TestExportTLS(t *testing.T) {
	loki := newFakeLoki(t, nil)
	loki.srv.StartTLS()
	t.Cleanup(loki.srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeServerCA(t, loki.srv, caFile)

	cfg := testConfig(loki.srv.URL)
	cfg.TLS.CAFile = caFile
	h := newHarness(t, cfg)
	a := exportertest.NewAcks()
	export(t, h.exp, batch(1, a, "over tls"))
	if err := a.Wait(t, 1); err != nil {
		t.Fatalf("ack = %v", err)
	}

	// Without the CA the push fails verification and is retried, never acknowledged.
	h2 := newHarness(t, testConfig(loki.srv.URL))
	export(t, h2.exp, batch(2, a, "untrusted"))
	deadline := time.Now().Add(10 * time.Second)
	for h2.metric(t, "outrider_exporter_requests_total", map[string]string{"result": "retry"}) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no failed attempt against an untrusted server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(a.Get(2)) != 0 || len(loki.delivered()) != 1 {
		t.Fatal("pushed to a server whose certificate is not trusted")
	}
}

func TestExportShutdown(t *testing.T) {
	t.Run("flushes partial batch", func(t *testing.T) {
		loki := newFakeLoki(t, nil).start()
		cfg := testConfig(loki.srv.URL)
		cfg.Batch.MaxWait = time.Hour
		h := newHarness(t, cfg)
		a := exportertest.NewAcks()
		export(t, h.exp, batch(1, a, "last words"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.exp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if got := a.Get(1); len(got) != 1 || got[0] != nil {
			t.Fatalf("after Shutdown acks = %v", got)
		}
		if err := h.exp.Export(context.Background(), batch(2, nil, "late")); !errors.Is(err, exporterhelper.ErrClosed) {
			t.Fatalf("Export after Shutdown = %v", err)
		}
	})
	t.Run("deadline with Loki down", func(t *testing.T) {
		loki := newFakeLoki(t, func(int, *http.Request) (int, map[string]string, string) {
			return 503, nil, "down"
		}).start()
		h := newHarness(t, testConfig(loki.srv.URL))
		a := exportertest.NewAcks()
		export(t, h.exp, batch(1, a, "stuck"))
		select {
		case <-loki.notify:
		case <-time.After(10 * time.Second):
			t.Fatal("no push")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := h.exp.Shutdown(ctx); err == nil {
			t.Fatal("Shutdown returned nil with an undelivered request")
		}
		if got := a.Get(1); len(got) != 0 {
			t.Fatalf("undelivered batch acknowledged: %v", got)
		}
	})
	t.Run("without start", func(t *testing.T) {
		e, err := New(testConfig("http://127.0.0.1:1"), Settings{})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// writeServerCA writes the httptest TLS server's self-signed certificate as a CA file.
func writeServerCA(t *testing.T, srv *httptest.Server, path string) {
	t.Helper()
	cert := srv.Certificate()
	if cert == nil {
		t.Fatal("server has no certificate")
	}
	pemBytes := "-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(cert.Raw) + "\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(path, []byte(pemBytes), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestExportTokenFileMissingIsRetried(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeNewer(t, tokenFile, "tok\n")
	loki := newFakeLoki(t, nil).start()
	cfg := testConfig(loki.srv.URL)
	cfg.BearerTokenFile = tokenFile
	h := newHarness(t, cfg)
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	a := exportertest.NewAcks()
	export(t, h.exp, batch(1, a, "waits for its token"))
	deadline := time.Now().Add(10 * time.Second)
	for h.metric(t, "outrider_exporter_retries_total", nil) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retry while the token file was missing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(a.Get(1)) != 0 || len(loki.calls()) != 0 {
		t.Fatal("pushed or acknowledged without a token")
	}
	writeNewer(t, tokenFile, "tok-rotated\n")
	if err := a.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
	if got := loki.delivered()[0].header.Get("Authorization"); got != "Bearer tok-rotated" {
		t.Fatalf("Authorization %q", got)
	}
}
