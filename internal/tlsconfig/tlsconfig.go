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
// so callers can keep their transport's default.
func (c *Config) Load() (*tls.Config, error) {
	if c.IsZero() {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // explicit opt-in, documented as test-only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate; give a PEM bundle of CA certificates", c.CAFile)
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
