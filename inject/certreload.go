package inject

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, the certificate files are looked at
// again: the check costs two stat calls, done during a TLS handshake.
const certCheckInterval = time.Second

// CertReloader serves a certificate and key read from files and reads them again
// when they change (new size, modification time or inode: an editor's write or the
// symlink swap of a Kubernetes Secret volume). A pair that fails to load (say the
// certificate was replaced and the key not yet) is ignored and the previous one
// stays in use until the files load together.
type CertReloader struct {
	certFile, keyFile string
	metrics           *Metrics
	logger            *slog.Logger
	interval          time.Duration

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat os.FileInfo
	keyStat  os.FileInfo
	checked  time.Time
}

// NewCertReloader loads the pair once; an error means the files cannot be used.
func NewCertReloader(certFile, keyFile string, m *Metrics, logger *slog.Logger) (*CertReloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, metrics: m, logger: logger, interval: certCheckInterval}
	cs, ks, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(cs, ks); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.checked) < r.interval {
		return r.cert, nil
	}
	r.checked = now
	cs, ks, err := r.stat()
	if err != nil {
		r.logger.Warn("cannot read the serving certificate files; keeping the one in use", "error", err)
		return r.cert, nil
	}
	if same(cs, r.certStat) && same(ks, r.keyStat) {
		return r.cert, nil
	}
	if err := r.load(cs, ks); err != nil {
		r.metrics.certReloads.WithLabelValues("error").Inc()
		r.logger.Warn("cannot load the changed serving certificate; keeping the one in use", "error", err)
		return r.cert, nil
	}
	r.metrics.certReloads.WithLabelValues("ok").Inc()
	r.logger.Info("serving certificate reloaded", "cert_file", r.certFile, "not_after", r.cert.Leaf.NotAfter)
	return r.cert, nil
}

func (r *CertReloader) stat() (os.FileInfo, os.FileInfo, error) {
	cs, err := os.Stat(r.certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls certificate: %w", err)
	}
	ks, err := os.Stat(r.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls key: %w", err)
	}
	return cs, ks, nil
}

// load reads the pair; the stats were taken before, so a change during the read is
// seen at the next check.
func (r *CertReloader) load(cs, ks os.FileInfo) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s with key %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse certificate %s: %w", r.certFile, err)
		}
	}
	r.cert, r.certStat, r.keyStat = &cert, cs, ks
	r.metrics.certExpiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	return nil
}

func same(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
