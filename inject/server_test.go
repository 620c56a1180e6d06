package inject

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// writeTestCerts writes a CA and a certificate for 127.0.0.1 to dir and returns the CA.
func writeTestCerts(t *testing.T, dir string) *Certificates {
	t.Helper()
	c, err := GenerateCertificates(append(ServiceDNSNames("outrider-injector", "outrider"), "127.0.0.1"), 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsClient trusts the CAs given.
func tlsClient(t *testing.T, cas ...*Certificates) (*http.Client, *http.Transport) {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AppendCertsFromPEM(c.CA)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr
}

// startServer runs a server on 127.0.0.1 until the test ends.
func startServer(t *testing.T, dir string, mutate http.Handler, reg *prometheus.Registry, m *Metrics) *Server {
	t.Helper()
	srv, err := NewServer(ServerConfig{
		Listen:   "127.0.0.1:0",
		CertFile: filepath.Join(dir, CertFileName),
		KeyFile:  filepath.Join(dir, KeyFileName),
	}, mutate, reg, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv
}

func reviewBody(t *testing.T, req *admissionv1.AdmissionRequest, apiVersion string) []byte {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metaType(apiVersion),
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestServer(t *testing.T) {
	dir := t.TempDir()
	ca := writeTestCerts(t, dir)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	in := newTestInjector(t, testDefaults())
	srv := startServer(t, dir, NewHandler(in, m, nil), reg, m)
	client, _ := tlsClient(t, ca)
	base := "https://" + srv.Addr()

	good := reviewBody(t, requestFor(t, basePod()), "admission.k8s.io/v1")
	noRequest := reviewBody(t, nil, "admission.k8s.io/v1")
	beta := reviewBody(t, requestFor(t, basePod()), "admission.k8s.io/v1beta1")
	tests := []struct {
		name, method, path, contentType string
		body                            []byte
		code                            int
		want                            string
	}{
		{"review", "POST", "/mutate", "application/json", good, 200, `"allowed":true`},
		{"charset parameter", "POST", "/mutate", "application/json; charset=utf-8", good, 200, `"patchType":"JSONPatch"`},
		{"wrong content type", "POST", "/mutate", "text/plain", good, 415, "Content-Type must be application/json"},
		{"no content type", "POST", "/mutate", "", good, 415, "Content-Type"},
		{"not json", "POST", "/mutate", "application/json", []byte("{"), 400, "not an AdmissionReview"},
		{"v1beta1", "POST", "/mutate", "application/json", beta, 400, "admissionReviewVersions: [v1]"},
		{"no request", "POST", "/mutate", "application/json", noRequest, 400, "has no request"},
		{"get", "GET", "/mutate", "", nil, 405, "use POST"},
		{"too large", "POST", "/mutate", "application/json", bytes.Repeat([]byte(" "), MaxReviewBytes+1), 413, "larger than"},
		{"healthz", "GET", "/healthz", "", nil, 200, "ok"},
		{"unknown path", "GET", "/nope", "", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, tt.code, tt.want)
			}
			if tt.code == 200 && tt.path == "/mutate" {
				var review admissionv1.AdmissionReview
				if err := json.Unmarshal(body, &review); err != nil || review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" ||
					review.Response == nil || review.Response.UID != testUID {
					t.Errorf("answer %s is not an AdmissionReview v1 for uid %s (%v)", body, testUID, err)
				}
			}
		})
	}
	if got := counterValue(t, m.requests.WithLabelValues(ResultInjected)); got != 2 {
		t.Errorf("outrider_inject_requests_total{result=injected} = %v, want 2", got)
	}
	if got := counterValue(t, m.badRequests.WithLabelValues("415")); got != 2 {
		t.Errorf("outrider_inject_bad_requests_total{code=415} = %v, want 2", got)
	}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`outrider_inject_requests_total{result="injected"} 2`, "outrider_inject_request_duration_seconds_bucket", "outrider_inject_certificate_expiry_timestamp_seconds"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestServerReloadsCertificate replaces the certificate files under a running
// server and waits for new connections to be served the new certificate.
func TestServerReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	first := writeTestCerts(t, dir)
	srv := startServer(t, dir, http.NotFoundHandler(), prometheus.NewRegistry(), nil)
	second := writeTestCerts(t, dir)
	client, tr := tlsClient(t, second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.CloseIdleConnections()
		resp, err := client.Get("https://" + srv.Addr() + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not served the new certificate: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	old, oldTr := tlsClient(t, first)
	oldTr.CloseIdleConnections()
	if resp, err := old.Get("https://" + srv.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("a client trusting only the old CA still connects")
	}
}

// TestCertReloader checks the reloader's decisions: a changed pair is loaded, a broken
// one is ignored and the last good one stays in use.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	first := writeTestCerts(t, dir)
	m := NewMetrics(nil)
	r, err := NewCertReloader(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.interval = 0
	serial := func() string {
		c, err := r.GetCertificate(nil)
		if err != nil || c == nil {
			t.Fatalf("GetCertificate: %v", err)
		}
		return c.Leaf.SerialNumber.String()
	}
	leafSerial := func(c *Certificates) string {
		pair, err := tls.X509KeyPair(c.Cert, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		return leaf.SerialNumber.String()
	}
	if got := serial(); got != leafSerial(first) {
		t.Fatalf("serving %s, want the first certificate", got)
	}
	second := writeTestCerts(t, dir)
	if got := serial(); got != leafSerial(second) {
		t.Fatalf("serving %s, want the second certificate", got)
	}
	if err := os.WriteFile(filepath.Join(dir, CertFileName), []byte("not a certificate, a bit longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != leafSerial(second) {
		t.Errorf("serving %s after a broken write, want the second certificate still", got)
	}
	if err := os.Remove(filepath.Join(dir, KeyFileName)); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != leafSerial(second) {
		t.Errorf("serving %s after the key vanished, want the second certificate still", got)
	}
	if ok, bad := counterValue(t, m.certReloads.WithLabelValues("ok")), counterValue(t, m.certReloads.WithLabelValues("error")); ok != 1 || bad != 1 {
		t.Errorf("reloads ok=%v error=%v, want 1 and 1", ok, bad)
	}
	if _, err := NewCertReloader(filepath.Join(dir, "nope.crt"), filepath.Join(dir, KeyFileName), nil, nil); err == nil {
		t.Error("NewCertReloader accepted a missing file")
	}
}

// TestGracefulShutdown checks that a stop waits for the request in flight.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	ca := writeTestCerts(t, dir)
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = w.Write([]byte("done"))
	})
	srv, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", CertFile: filepath.Join(dir, CertFileName), KeyFile: filepath.Join(dir, KeyFileName)}, slow, prometheus.NewRegistry(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Run(ctx) }()
	client, _ := tlsClient(t, ca)
	answer := make(chan string, 1)
	go func() {
		resp, err := client.Post("https://"+srv.Addr()+"/mutate", "application/json", strings.NewReader("{}"))
		if err != nil {
			answer <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(body)
	}()
	<-entered
	cancel()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if got := <-answer; got != "done" {
		t.Errorf("the request in flight got %q, want done", got)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func metaType(apiVersion string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: "AdmissionReview"}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestDrainKeepsServingWithHealthFailing(t *testing.T) {
	dir := t.TempDir()
	ca := writeTestCerts(t, dir)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("mutated")) })
	srv, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", CertFile: filepath.Join(dir, CertFileName), KeyFile: filepath.Join(dir, KeyFileName),
		DrainDelay: 2 * time.Second}, ok, prometheus.NewRegistry(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Run(ctx) }()
	client, _ := tlsClient(t, ca)
	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, "https://"+srv.Addr()+path, strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s during the drain: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(http.MethodGet, "/healthz"); code != 200 {
		t.Fatalf("/healthz before the stop: %d", code)
	}
	cancel()
	time.Sleep(200 * time.Millisecond)
	if code, _ := get(http.MethodGet, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz while draining: %d, want 503", code)
	}
	if code, body := get(http.MethodPost, "/mutate"); code != 200 || body != "mutated" {
		t.Errorf("/mutate while draining: %d %q, want it still served", code, body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}
