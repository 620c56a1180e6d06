// Package tlsconfig turns the tls block shared by outrider's clients (exporters, the
// Vault client) into a *tls.Config.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Config is a client's TLS configuration. The zero value means "use the system roots
// and no client certificate", and Load returns nil for it.
type Config struct {
	// CAFile is a PEM bundle of the certificate authorities the server's certificate
	// must chain to; empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and its key (PEM), for mutual
	// TLS. Both or neither. They are re-read when either file changes, so a rotated
	// certificate is used without a restart.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server's certificate is checked against.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables verification of the server's certificate. Only for
	// tests; it makes TLS worthless against an active attacker.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// IsZero reports whether nothing is set.
func (c *Config) IsZero() bool { return *c == Config{} }

// Validate reports problems with field paths relative to the tls block: a certificate
// without its key (or the reverse) and files that cannot be read.
func (c *Config) Validate(p *confval.Problems) {
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		p.Addf("key_file", "cert_file is set but key_file is not; a client certificate needs its private key")
	case c.KeyFile != "" && c.CertFile == "":
		p.Addf("cert_file", "key_file is set but cert_file is not; a private key needs its client certificate")
	}
	for _, f := range []struct{ field, path string }{
		{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); err != nil {
			p.Addf(f.field, "cannot read %q: %v", f.path, err)
		}
	}
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory, want a PEM file")
	}
	return nil
}

// Load builds the *tls.Config: minimum version TLS 1.2, the CA bundle as RootCAs, the
// client certificate (re-read on change). It returns nil, nil when the Config is zero,
// so callers can keep their transport's default. The CA bundle is read once; LoadFor
// re-reads it when it changes.
func (c *Config) Load() (*tls.Config, error) {
	if c.IsZero() {
		return nil, nil
	}
	return c.load()
}

// LoadFor is Load for a client of host (a name or an IP address, which the server's
// certificate must hold unless ServerName overrides it). The CA bundle is re-read
// when its file changes (a Kubernetes Secret volume swaps its files by renaming a
// symlink): each handshake verifies the server against the bundle as it is then, so
// a rotated CA is trusted without a restart. While a new bundle cannot be read or
// holds no certificate, the last good one stays in use.
func (c *Config) LoadFor(host string) (*tls.Config, error) {
	if c.IsZero() {
		return nil, nil
	}
	tc, err := c.load()
	if err != nil || c.CAFile == "" || c.InsecureSkipVerify {
		return tc, err
	}
	name := c.ServerName
	if name == "" {
		name = host
	}
	if name == "" {
		return nil, errors.New("tls: no server name to check the server's certificate against; set tls.server_name")
	}
	bundle := &caBundle{path: c.CAFile}
	if _, err := bundle.get(); err != nil {
		return nil, err
	}
	// The verification below replaces the standard one, which cannot see a changed
	// bundle: it is the same x509 verification, with the bundle of the moment.
	tc.RootCAs = nil
	tc.InsecureSkipVerify = true //nolint:gosec // VerifyConnection verifies the chain and the name
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		pool, err := bundle.get()
		if err != nil {
			return err
		}
		opts := x509.VerifyOptions{DNSName: name, Roots: pool, Intermediates: x509.NewCertPool()}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("tls: the server's certificate is not trusted by tls.ca_file %s: %w", c.CAFile, err)
		}
		return nil
	}
	return tc, nil
}

// caBundle caches a CA bundle and reads it again when its file's size or modification
// time changes.
type caBundle struct {
	path string

	mu    sync.Mutex
	pool  *x509.CertPool
	stamp fileStamp
}

func (b *caBundle) get() (*x509.CertPool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := stamp(b.path)
	if err == nil && b.pool != nil && st == b.stamp {
		return b.pool, nil
	}
	pool, rerr := readCA(b.path)
	if rerr != nil {
		if b.pool != nil {
			return b.pool, nil // being replaced: keep the last good bundle
		}
		return nil, rerr
	}
	b.pool, b.stamp = pool, st
	return pool, nil
}

func readCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate; give a PEM bundle of CA certificates", path)
	}
	return pool, nil
}

func (c *Config) load() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // explicit opt-in, documented as test-only
	}
	if c.CAFile != "" {
		pool, err := readCA(c.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("tls: cert_file and key_file must be set together")
		}
		kp := &keyPair{certFile: c.CertFile, keyFile: c.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return kp.get()
		}
	}
	return tc, nil
}

// keyPair caches a client certificate and reloads it when either file's size or
// modification time changes.
type keyPair struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat fileStamp
	keyStat  fileStamp
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func stamp(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: st.Size(), mtime: st.ModTime()}, nil
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cs, cerr := stamp(k.certFile)
	ks, kerr := stamp(k.keyFile)
	if cerr == nil && kerr == nil && k.cert != nil && cs == k.certStat && ks == k.keyStat {
		return k.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.cert != nil {
			// A rotation in progress (one file written, not yet the other): keep the
			// pair that worked until both files match again.
			return k.cert, nil
		}
		return nil, fmt.Errorf("tls: load client certificate %s with key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.certStat, k.keyStat = &cert, cs, ks
	return k.cert, nil
}
