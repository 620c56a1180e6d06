package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

type certKey struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newCert(t *testing.T, cn string, serial int64, parent *certKey, isCA bool, ips []net.IP, dns []string) *certKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  ips,
		DNSNames:     dns,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = nil
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &certKey{cert: c, key: key, der: der}
}

func (c *certKey) write(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der}), 0o600); err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func (c *certKey) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key, Leaf: c.cert}
}

type pki struct {
	dir            string
	ca             *certKey
	caFile         string
	clientCert     string
	clientKey      string
	server         *certKey
	otherCAFile    string
	clientCertAuth *certKey
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca := newCert(t, "test ca", 1, nil, true, nil, nil)
	caFile, _ := ca.write(t, dir, "ca")
	other := newCert(t, "other ca", 2, nil, true, nil, nil)
	otherFile, _ := other.write(t, dir, "other")
	server := newCert(t, "server", 3, ca, false, []net.IP{net.ParseIP("127.0.0.1")}, []string{"loki.test"})
	client := newCert(t, "client", 4, ca, false, nil, nil)
	cf, kf := client.write(t, dir, "client")
	return &pki{dir: dir, ca: ca, caFile: caFile, clientCert: cf, clientKey: kf, server: server, otherCAFile: otherFile, clientCertAuth: client}
}

// serve starts a TLS server on 127.0.0.1 that answers with the client certificate's
// serial number, or "none".
func (p *pki) serve(t *testing.T, requireClient bool, maxVersion uint16) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			io.WriteString(w, "none")
			return
		}
		fmt.Fprint(w, r.TLS.PeerCertificates[0].SerialNumber.String())
	}))
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.cert)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.server.tlsCert()},
		ClientCAs:    pool,
		MaxVersion:   maxVersion,
	}
	if requireClient {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, tc *tls.Config, url string) (string, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestLoadZeroIsNil(t *testing.T) {
	var c Config
	tc, err := c.Load()
	if err != nil || tc != nil {
		t.Fatalf("Load of zero config = %v, %v; want nil, nil", tc, err)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "present.pem")
	if err := os.WriteFile(present, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem
	}{
		{"zero", Config{}, nil},
		{"all present", Config{CAFile: present, CertFile: present, KeyFile: present}, nil},
		{"cert without key", Config{CertFile: present}, []string{"tls.key_file: cert_file is set but key_file is not"}},
		{"key without cert", Config{KeyFile: present}, []string{"tls.cert_file: key_file is set but cert_file is not"}},
		{"missing ca", Config{CAFile: missing}, []string{`tls.ca_file: cannot read "` + missing + `"`}},
		{"missing key", Config{CertFile: present, KeyFile: missing}, []string{`tls.key_file: cannot read "` + missing + `"`}},
		{"directory", Config{CAFile: dir}, []string{"tls.ca_file: cannot read", "is a directory"}},
		{"two problems", Config{CertFile: missing}, []string{"tls.key_file:", `tls.cert_file: cannot read "` + missing}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p confval.Problems
			tc.cfg.Validate(p.At("tls"))
			err := p.Err()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no problem reported, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems %q do not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadAgainstServer(t *testing.T) {
	p := newPKI(t)
	plain := p.serve(t, false, 0)
	mtls := p.serve(t, true, 0)
	garbage := filepath.Join(p.dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		cfg     Config
		url     string
		loadErr string
		getErr  bool
		want    string
	}{
		{"trusted CA", Config{CAFile: p.caFile}, plain.URL, "", false, "none"},
		{"untrusted CA", Config{CAFile: p.otherCAFile}, plain.URL, "", true, ""},
		{"server name override", Config{CAFile: p.caFile, ServerName: "loki.test"}, plain.URL, "", false, "none"},
		{"wrong server name", Config{CAFile: p.caFile, ServerName: "wrong.test"}, plain.URL, "", true, ""},
		{"insecure skip verify", Config{InsecureSkipVerify: true}, plain.URL, "", false, "none"},
		{"mTLS", Config{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}, mtls.URL, "", false, "4"},
		{"mTLS without cert", Config{CAFile: p.caFile}, mtls.URL, "", true, ""},
		{"garbage CA", Config{CAFile: garbage}, "", "holds no PEM certificate", false, ""},
		{"key mismatch", Config{CertFile: p.clientCert, KeyFile: filepath.Join(p.dir, "ca.key")}, "", "load client certificate", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.cfg.Load()
			if tc.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.loadErr) {
					t.Fatalf("Load error = %v, want one containing %q", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
			}
			got, err := get(t, cfg, tc.url)
			if tc.getErr {
				if err == nil {
					t.Fatalf("GET succeeded (%q), want a TLS error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			if got != tc.want {
				t.Fatalf("server saw %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRefusesOldTLS(t *testing.T) {
	p := newPKI(t)
	old := p.serve(t, false, tls.VersionTLS11)
	cfg, err := (&Config{CAFile: p.caFile}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cfg, old.URL); err == nil {
		t.Fatal("connected to a TLS 1.1-only server; want refusal")
	}
}

func TestClientCertificateRotation(t *testing.T) {
	p := newPKI(t)
	srv := p.serve(t, true, 0)
	cfg, err := (&Config{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, cfg, srv.URL); err != nil || got != "4" {
		t.Fatalf("before rotation: %q, %v", got, err)
	}
	rotated := newCert(t, "client", 99, p.ca, false, nil, nil)
	cf, kf := rotated.write(t, t.TempDir(), "client")
	for _, mv := range [][2]string{{cf, p.clientCert}, {kf, p.clientKey}} {
		b, err := os.ReadFile(mv[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(mv[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Make sure the stamp differs even on filesystems with coarse mtimes.
	future := time.Now().Add(time.Minute)
	_ = os.Chtimes(p.clientCert, future, future)
	if got, err := get(t, cfg, srv.URL); err != nil || got != "99" {
		t.Fatalf("after rotation: %q, %v; want the new certificate (serial 99)", got, err)
	}
}

func TestLoadForReloadsCA(t *testing.T) {
	p := newPKI(t)
	srv := p.serve(t, false, 0)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	other, err := os.ReadFile(p.otherCAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, other, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := (&Config{CAFile: caFile}).LoadFor("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cfg, srv.URL); err == nil || !strings.Contains(err.Error(), "not trusted by tls.ca_file "+caFile) {
		t.Fatalf("with the wrong CA: %v; want a refusal naming the file", err)
	}
	// The bundle is replaced as a Secret volume does it: a new file renamed over.
	good, err := os.ReadFile(p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	tmp := caFile + ".tmp"
	if err := os.WriteFile(tmp, append(good, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, caFile); err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, cfg, srv.URL); err != nil || got != "none" {
		t.Fatalf("after the CA was replaced: %q, %v", got, err)
	}
	// A broken bundle written over it keeps the last good one.
	if err := os.WriteFile(caFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cfg, srv.URL); err != nil {
		t.Fatalf("with a broken bundle the last good one should stay: %v", err)
	}
}

func TestLoadForChecksName(t *testing.T) {
	p := newPKI(t)
	srv := p.serve(t, false, 0)
	cases := []struct {
		name string
		cfg  Config
		host string
		ok   bool
	}{
		{"ip in certificate", Config{CAFile: p.caFile}, "127.0.0.1", true},
		{"other ip", Config{CAFile: p.caFile}, "127.0.0.2", false},
		{"server_name wins", Config{CAFile: p.caFile, ServerName: "loki.test"}, "127.0.0.2", true},
		{"wrong server_name", Config{CAFile: p.caFile, ServerName: "wrong.test"}, "127.0.0.1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.cfg.LoadFor(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			_, err = get(t, cfg, srv.URL)
			if (err == nil) != tc.ok {
				t.Fatalf("GET error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, err := (&Config{CAFile: p.caFile}).LoadFor(""); err == nil {
		t.Error("LoadFor without a host or server_name succeeded")
	}
}
