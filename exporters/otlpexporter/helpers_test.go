package otlpexporter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/pipeline"
)

// traceID returns a trace ID whose first bytes hold n, so tests can tell traces apart.
func traceID(n uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], n)
	binary.BigEndian.PutUint64(id[8:], 0x5eed)
	return id
}

func spanID(n uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], n+1)
	return id
}

// makeTraces builds spans of one trace, for service, each with attribute seq set to
// first+i; every span after the first is the first one's child.
func makeTraces(service string, trace uint64, first, spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("outrider.test")
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(traceID(trace))
		s.SetSpanID(spanID(uint64(first + i)))
		if i > 0 {
			s.SetParentSpanID(spanID(uint64(first)))
		}
		s.SetName(fmt.Sprintf("op-%d", first+i))
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i+1) * time.Millisecond)))
		s.Attributes().PutInt("seq", int64(first+i))
		s.Attributes().PutStr("http.route", "/api/orders/{id}")
	}
	return td
}

// batch serializes traces as a TraceBatch.
func batch(t testing.TB, td ptrace.Traces, ack pipeline.AckFunc) pipeline.TraceBatch {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.TraceBatch{Data: b, Spans: td.SpanCount(), Ack: ack}
}

// spanSummary lists "service/seq" for every span of td, sorted.
func spanSummary(td ptrace.Traces) []string {
	var out []string
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j)
			for k := range ss.Spans().Len() {
				seq, _ := ss.Spans().At(k).Attributes().Get("seq")
				out = append(out, fmt.Sprintf("%s/%d", svc.Str(), seq.Int()))
			}
		}
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// harness is an Exporter with its own metrics registry and log.
type harness struct {
	exp *Exporter
	reg *prometheus.Registry
	log *exportertest.LogBuffer
}

// testConfig is a fast-retrying configuration for endpoint.
func testConfig(endpoint, protocol string) Config {
	return Config{
		Endpoint: endpoint,
		Protocol: protocol,
		Batch:    exporterhelper.BatchConfig{MaxWait: 10 * time.Millisecond},
		Retry:    exporterhelper.RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
		Timeout:  5 * time.Second,
	}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), log: &exportertest.LogBuffer{}}
	exp, err := New(cfg, Settings{Logger: h.log.Logger(), QueueMetrics: exporterhelper.NewMetrics(h.reg), Name: "tempo"})
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

func (h *harness) sent(t *testing.T) float64 {
	return h.metric(t, "outrider_exporter_sent_records_total", map[string]string{"exporter": "tempo"})
}

func (h *harness) dropped(t *testing.T, reason string) float64 {
	return h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"exporter": "tempo", "reason": reason})
}

// testCA is a certificate authority and a server certificate for 127.0.0.1, written
// as PEM files.
type testCA struct {
	caFile     string
	serverCert tls.Certificate
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outrider test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{caFile: caFile, serverCert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

func (c *testCA) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.serverCert}, MinVersion: tls.VersionTLS12}
}
