package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // htpasswd's {SHA} scheme, for Jaeger's basicauth in a test
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/lokitest"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for 127.0.0.1 (server and client use) and its key, PEM.
func (ca *testCA) issue(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// secretDir lays files out the way the kubelet mounts a Secret: each key a symlink
// into ..data, itself a symlink to a timestamped directory, swapped by rename on
// update.
type secretDir struct {
	t   *testing.T
	dir string
	gen int
}

func newSecretDir(t *testing.T, dir string, data map[string][]byte) *secretDir {
	t.Helper()
	s := &secretDir{t: t, dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.update(data)
	for key := range data {
		if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *secretDir) path(key string) string { return filepath.Join(s.dir, key) }

func (s *secretDir) update(data map[string][]byte) {
	s.t.Helper()
	s.gen++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", s.gen, time.Now().UnixNano())
	if err := os.Mkdir(filepath.Join(s.dir, ts), 0o755); err != nil {
		s.t.Fatal(err)
	}
	for key, v := range data {
		if err := os.WriteFile(filepath.Join(s.dir, ts, key), v, 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
}

func writePEM(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func basicHeader(user, pass string) []byte {
	return []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\n")
}

// TestBackendAuthTLS runs the agent against a real Loki with auth_enabled: true that
// serves TLS itself and requires a client certificate, and a real Jaeger whose OTLP
// receiver serves TLS and requires basic auth (Jaeger's basicauth extension). Every
// credential and certificate comes from files laid out as the kubelet mounts a
// Secret. Logs land in the right tenant (and only there), spans in Jaeger. A wrong
// Authorization value is refused with a message naming the Secret and key; a wrong
// client certificate is too, and the lines written meanwhile are delivered once the
// Secret is fixed. Fixing a Secret takes effect without a restart.
func TestBackendAuthTLS(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	mkdirs(t, pki, filepath.Join(dir, "logs"))
	ca := newTestCA(t, "e2e ca")
	rogue := newTestCA(t, "rogue ca")
	caFile := writePEM(t, pki, "ca.crt", ca.pem)
	srvCert, srvKey := ca.issue(t, "server")
	srvCertFile, srvKeyFile := writePEM(t, pki, "server.crt", srvCert), writePEM(t, pki, "server.key", srvKey)
	clientCert, clientKey := ca.issue(t, "outrider")
	rogueCert, rogueKey := rogue.issue(t, "outrider")

	// The test's own client of Loki (readiness, queries).
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	kp, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	loki, err := lokitest.Start(ctx, filepath.Join(dir, "loki"), lokitest.WithAuth(),
		lokitest.WithTLS(srvCertFile, srvKeyFile, caFile, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer loki.Stop()
	sum := sha1.Sum([]byte("tempo-pass")) //nolint:gosec // htpasswd {SHA}
	jaeger := jaegertest.StartWith(t, jaegertest.Options{
		TLSCertFile: srvCertFile, TLSKeyFile: srvKeyFile,
		BasicAuth: "outrider:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]),
	})

	creds := filepath.Join(dir, "creds")
	lokiTLS := newSecretDir(t, filepath.Join(creds, "loki-tls"), map[string][]byte{"ca.crt": ca.pem, "tls.crt": clientCert, "tls.key": clientKey})
	lokiAuth := newSecretDir(t, filepath.Join(creds, "loki-auth"), map[string][]byte{"username": []byte("team-a-user\n"), "password": []byte("pw\n")})
	tempoAuth := newSecretDir(t, filepath.Join(creds, "tempo-auth"), map[string][]byte{"authorization": basicHeader("outrider", "tempo-pass")})
	tempoCA := newSecretDir(t, filepath.Join(creds, "tempo-ca"), map[string][]byte{"ca.crt": ca.pem})

	ports, err := backendtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	otlpGRPC := fmt.Sprintf("127.0.0.1:%d", ports[0])
	src := func(secret, key string) string { return fmt.Sprintf("'Secret \"%s\" key \"%s\"'", secret, key) }
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: e2e-auth, namespace: e2e, pod: e2e-auth-0, container: app}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
logs:
  sources:
    - name: app
      path: %[1]s/logs/*.log
      parser: {format: json}
receivers:
  otlp: {grpc: {listen: "%[2]s"}, http: {listen: "off"}}
exporters:
  loki:
    url: %[3]s
    tenant_id: team-a
    basic_auth: {username_file: %[4]s, password_file: %[5]s}
    tls: {ca_file: %[6]s, cert_file: %[7]s, key_file: %[8]s}
    batch: {max_wait: 200ms}
    retry: {initial_interval: 100ms, max_interval: 1s}
    credential_sources:
      %[4]s: %[9]s
      %[5]s: %[10]s
      %[6]s: %[11]s
      %[7]s: %[12]s
      %[8]s: %[13]s
  otlp:
    endpoint: https://%[14]s
    headers_from_files: {Authorization: %[15]s}
    tls: {ca_file: %[16]s}
    batch: {max_wait: 200ms}
    retry: {initial_interval: 100ms, max_interval: 1s}
    credential_sources:
      %[15]s: %[17]s
      %[16]s: %[18]s
`, dir, otlpGRPC, loki.URL,
		lokiAuth.path("username"), lokiAuth.path("password"),
		lokiTLS.path("ca.crt"), lokiTLS.path("tls.crt"), lokiTLS.path("tls.key"),
		src("loki-auth", "username"), src("loki-auth", "password"),
		src("loki-tls", "ca.crt"), src("loki-tls", "tls.crt"), src("loki-tls", "tls.key"),
		jaeger.OTLPGRPCEndpoint(), tempoAuth.path("authorization"), tempoCA.path("ca.crt"),
		src("tempo-auth", "authorization"), src("tempo-ca", "ca.crt"))
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, cfg)
	agent := startAgent(t, cfgPath)
	waitLog(t, agent, "otlp receiver listening")
	start := time.Now().Add(-time.Minute)

	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	seq := 0
	write := func(n int) {
		for i := 0; i < n; i++ {
			w.line(`{"level":"info","msg":"auth test seq=%d"}`, seq)
			seq++
		}
		w.flush()
	}
	teamA := loki.ForTenant("team-a")
	sel := `{service="e2e-auth"}`

	// Logs land in tenant team-a over mutual TLS, and in no other tenant.
	write(50)
	if _, err := teamA.WaitCount(ctx, sel, start, 50, 60*time.Second); err != nil {
		t.Fatalf("logs in tenant team-a: %v", err)
	}
	if other, err := loki.ForTenant("team-b").Query(ctx, sel, start, time.Now().Add(time.Minute)); err != nil || len(other) != 0 {
		t.Fatalf("tenant team-b sees %d entries (%v); want 0", len(other), err)
	}

	// Spans reach Jaeger over TLS with the Authorization header from the file.
	cc, err := grpc.NewClient(otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := ptraceotlp.NewGRPCClient(cc)
	sendTrace := func(seq int) string {
		t.Helper()
		req, tid := spanRequest(seq, 2)
		if _, err := client.Export(ctx, req); err != nil {
			t.Fatalf("export to the agent: %v", err)
		}
		return tid
	}
	if _, err := jaeger.WaitForTrace(ctx, sendTrace(1), 2); err != nil {
		t.Fatalf("span with the right credentials: %v", err)
	}

	// A wrong Authorization value is refused; the message names the Secret and key.
	tempoAuth.update(map[string][]byte{"authorization": basicHeader("outrider", "wrong")})
	refused := sendTrace(2)
	waitLogContains(t, agent, `Secret \"tempo-auth\" key \"authorization\"`)
	waitLogContains(t, agent, "Unauthenticated")
	// Fixed in the Secret: the next spans go through without a restart.
	tempoAuth.update(map[string][]byte{"authorization": basicHeader("outrider", "tempo-pass")})
	if _, err := jaeger.WaitForTrace(ctx, sendTrace(3), 2); err != nil {
		t.Fatalf("span after the Secret was fixed: %v", err)
	}
	if spans, _ := jaeger.GetTrace(ctx, refused); len(spans) != 0 {
		t.Errorf("the refused trace is in Jaeger: %d spans", len(spans))
	}

	// A client certificate Loki does not trust: the handshake fails, the message names
	// the Secret, and the lines wait; once the Secret is fixed, every line arrives.
	// (A connection made before keeps its handshake: Loki's restart makes the agent
	// connect again, with the certificate of the moment.)
	lokiTLS.update(map[string][]byte{"ca.crt": ca.pem, "tls.crt": rogueCert, "tls.key": rogueKey})
	if err := loki.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	write(30)
	waitLogContains(t, agent, `Secret \"loki-tls\" key \"tls.crt\"`)
	lokiTLS.update(map[string][]byte{"ca.crt": ca.pem, "tls.crt": clientCert, "tls.key": clientKey})
	write(20)
	entries, err := teamA.WaitCount(ctx, sel, start, 100, 90*time.Second)
	if err != nil {
		t.Fatalf("after the client certificate was fixed: %v", err)
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, e.Line)
	}
	if missing, dups := countSeq(t, lines, 100); missing != 0 || dups != 0 {
		t.Errorf("%d lines missing, %d duplicated", missing, dups)
	}
}

// waitLogContains waits until the agent's log holds s.
func waitLogContains(t *testing.T, p *agentProc, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.log)
		if strings.Contains(string(data), s) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the agent's log never held %q", s)
}
