package inject

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/outrider-dev/outrider/internal/atomicfile"
)

// File names written by Certificates.WriteDir, as in a kubernetes.io/tls Secret
// made by cert-manager.
const (
	CAFileName   = "ca.crt"
	CertFileName = "tls.crt"
	KeyFileName  = "tls.key"
)

// renewBefore is how long before its expiry a certificate found in the directory is
// replaced rather than reused.
const renewBefore = 30 * 24 * time.Hour

// Certificates is a CA and a serving certificate it signed, in PEM.
type Certificates struct {
	CA   []byte // the CA certificate: the webhook configuration's caBundle
	Cert []byte // the serving certificate
	Key  []byte // the serving certificate's private key (PKCS #8)
}

// ServiceDNSNames are the names the API server may use to reach a Service: it calls
// webhooks at <service>.<namespace>.svc.
func ServiceDNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// GenerateCertificates makes a new ECDSA P-256 CA and a serving certificate for
// dnsNames (IP addresses among them become IP SANs), both valid from now for
// validity.
func GenerateCertificates(dnsNames []string, validity time.Duration, now time.Time) (*Certificates, error) {
	if len(dnsNames) == 0 {
		return nil, errors.New("self-signed certificate: no DNS names")
	}
	ca, err := GenerateCA(validity, now)
	if err != nil {
		return nil, err
	}
	return ca.Issue(dnsNames, validity, now)
}

// CA is a certificate authority that issues serving certificates: its certificate
// and its private key (PKCS #8), in PEM. With --ca-secret all injector replicas share
// one, kept in a Secret.
type CA struct {
	Cert []byte
	Key  []byte

	cert   *x509.Certificate
	signer crypto.Signer
}

// GenerateCA makes a new ECDSA P-256 CA valid from now for validity.
func GenerateCA(validity time.Duration, now time.Time) (*CA, error) {
	if validity < time.Hour {
		return nil, fmt.Errorf("self-signed certificate: validity %s is shorter than an hour", validity)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "outrider injector CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return nil, err
	}
	return ParseCA(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// clockSkew backdates certificates, for nodes whose clocks lag.
const clockSkew = 5 * time.Minute

// ParseCA checks that certPEM is one CA certificate and keyPEM its private key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate and key: %w", err)
	}
	if len(pair.Certificate) != 1 {
		return nil, fmt.Errorf("CA certificate: %d PEM certificates, want 1", len(pair.Certificate))
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("CA certificate: not a CA (basicConstraints CA:true and keyUsage certSign are required)")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key: cannot sign")
	}
	return &CA{Cert: certPEM, Key: keyPEM, cert: cert, signer: signer}, nil
}

// NotAfter is when the CA certificate expires.
func (ca *CA) NotAfter() time.Time { return ca.cert.NotAfter }

// Issue signs a new serving certificate for dnsNames (IP addresses among them become
// IP SANs) with a new key, valid from now for validity but never after the CA.
func (ca *CA) Issue(dnsNames []string, validity time.Duration, now time.Time) (*Certificates, error) {
	if len(dnsNames) == 0 {
		return nil, errors.New("self-signed certificate: no DNS names")
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("self-signed certificate: the CA expired at %s", ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range dnsNames {
		if ip := net.ParseIP(n); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca.cert, &key.PublicKey, ca.signer)
	if err != nil {
		return nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Certificates{
		CA:   ca.Cert,
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return n
}

// LoadOrGenerateCertificates returns the certificates in dir when they are there,
// match each other, cover dnsNames and stay valid for more than 30 days; otherwise it
// generates new ones and writes them to dir. An init container that restarts thus
// keeps the CA the webhook configuration already trusts. reused says which happened.
func LoadOrGenerateCertificates(dir string, dnsNames []string, validity time.Duration, now time.Time) (c *Certificates, reused bool, err error) {
	if c, err := readCertificates(dir); err == nil && c.usable(dnsNames, now) {
		return c, true, nil
	}
	c, err = GenerateCertificates(dnsNames, validity, now)
	if err != nil {
		return nil, false, err
	}
	if err := c.WriteDir(dir); err != nil {
		return nil, false, err
	}
	return c, false, nil
}

// LoadOrIssueCertificates is LoadOrGenerateCertificates with a given CA (shared by
// the replicas): the certificates in dir are kept when ca.crt is ca's certificate and
// they are usable; otherwise ca issues a new serving certificate, written to dir with
// ca.crt.
func LoadOrIssueCertificates(dir string, ca *CA, dnsNames []string, validity time.Duration, now time.Time) (c *Certificates, reused bool, err error) {
	if c, err := readCertificates(dir); err == nil && bytes.Equal(c.CA, ca.Cert) && c.usable(dnsNames, now) {
		return c, true, nil
	}
	c, err = ca.Issue(dnsNames, validity, now)
	if err != nil {
		return nil, false, err
	}
	if err := c.WriteDir(dir); err != nil {
		return nil, false, err
	}
	return c, false, nil
}

func readCertificates(dir string) (*Certificates, error) {
	var c Certificates
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{CAFileName, &c.CA}, {CertFileName, &c.Cert}, {KeyFileName, &c.Key}} {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		*f.dst = data
	}
	return &c, nil
}

// usable reports whether the certificates match, cover dnsNames and stay valid long
// enough.
func (c *Certificates) usable(dnsNames []string, now time.Time) bool {
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CA) {
		return false
	}
	for _, n := range dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, CurrentTime: now}); err != nil {
			return false
		}
	}
	return true
}

// WriteDir writes ca.crt, tls.crt and tls.key (mode 0600) to dir, each atomically,
// the key last.
func (c *Certificates) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certificate directory: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{CAFileName, c.CA, 0o644}, {CertFileName, c.Cert, 0o644}, {KeyFileName, c.Key, 0o600}} {
		if _, err := atomicfile.Write(filepath.Join(dir, f.name), f.data, atomicfile.Options{Mode: f.mode}); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

// maxBundleCAs bounds the CAs MergeCABundle keeps.
const maxBundleCAs = 5

// MergeCABundle returns bundle with ca added: every injector replica that generates
// its own CA adds it, and the API server trusts any certificate of the bundle. Expired
// certificates and duplicates are dropped, and only the maxBundleCAs newest (by
// NotBefore) are kept, ca among them. PEM blocks that are not certificates are
// dropped too.
func MergeCABundle(bundle, ca []byte, now time.Time) ([]byte, error) {
	mine := parseCerts(ca)
	if len(mine) != 1 {
		return nil, fmt.Errorf("the CA is not one PEM certificate")
	}
	existing := parseCerts(bundle)
	certs := []*x509.Certificate{mine[0]}
	for _, c := range existing {
		if now.After(c.NotAfter) || slices.ContainsFunc(certs, func(o *x509.Certificate) bool { return o.Equal(c) }) {
			continue
		}
		certs = append(certs, c)
	}
	rest := certs[1:]
	slices.SortStableFunc(rest, func(a, b *x509.Certificate) int { return b.NotBefore.Compare(a.NotBefore) })
	if len(rest) > maxBundleCAs-1 {
		rest = rest[:maxBundleCAs-1]
	}
	var out []byte
	for _, c := range append(certs[:1], rest...) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, nil
}

// parseCerts returns the certificates of the PEM data, skipping other blocks and
// certificates that do not parse.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}
