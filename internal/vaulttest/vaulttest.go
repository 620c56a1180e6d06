// Package vaulttest runs a real Vault server in dev mode on 127.0.0.1 for integration
// tests and the demo. The binary is built by `make backends` into the outrider cache;
// when it is missing, Start fails with the command that builds it.
//
// A dev-mode Vault keeps everything in memory: it starts unsealed, with a KV v2 engine
// mounted at secret/ and the root token RootToken. It never writes its root token to
// ~/.vault-token (the server runs with -dev-no-store-token).
package vaulttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/outrider-dev/outrider/internal/backendtest"
)

// Version is the pinned Vault version tools/backends/build.sh builds.
const Version = "v1.21.0"

// RootToken is the dev server's root token.
const RootToken = "root"

// Binary returns the path of the Vault binary: $OUTRIDER_VAULT_BIN, or the one
// `make backends` cached (see backendtest.CacheDir).
func Binary() string { return backendtest.Binary("OUTRIDER_VAULT_BIN", "vault", Version) }

// Option changes how Start runs Vault.
type Option func(*options)

type options struct {
	tls bool
}

// WithTLS serves HTTPS with a certificate for 127.0.0.1 and localhost signed by a CA
// that Vault generates (-dev-tls); its PEM file is Vault.CACert.
func WithTLS() Option { return func(o *options) { o.tls = true } }

// Vault is a running dev-mode Vault server.
type Vault struct {
	// Addr is the base URL, e.g. http://127.0.0.1:41234 (https with WithTLS).
	Addr string
	// RootToken is the root token (always "root").
	RootToken string
	// Client is a root-token client for test setup: mounts, policies, roles, writes.
	Client *api.Client
	// Dir holds the server's log (vault.log) and, with WithTLS, its certificates.
	Dir string
	// CACert is the PEM file of the CA that signed the server certificate (WithTLS
	// only).
	CACert string

	opts      options
	port      int
	transport *http.Transport
	cmd       *exec.Cmd
	exited    chan struct{}
	logFile   *os.File
}

// Start starts a dev-mode Vault listening on a free 127.0.0.1 port with its log under
// dir, and waits until /v1/sys/health answers. It returns an error that says how to
// build Vault when the binary is missing.
func Start(ctx context.Context, dir string, opts ...Option) (*Vault, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("real Vault %s not found at %s: run `make backends` (or tools/backends/build.sh vault) to build it once per machine, or set OUTRIDER_VAULT_BIN", Version, bin)
	}
	v := &Vault{Dir: dir, RootToken: RootToken}
	for _, o := range opts {
		o(&v.opts)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := backendtest.FreePort()
	if err != nil {
		return nil, err
	}
	v.port = port
	scheme := "http"
	if v.opts.tls {
		scheme = "https"
		v.CACert = filepath.Join(dir, "tls", "vault-ca.pem")
	}
	v.Addr = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
	if err := v.start(ctx); err != nil {
		v.Stop()
		return nil, err
	}
	return v, nil
}

func (v *Vault) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(v.Dir, "vault.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"server", "-dev",
		"-dev-root-token-id=" + RootToken,
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", v.port),
		"-dev-no-store-token",
		"-log-level=warn",
	}
	if v.opts.tls {
		certDir := filepath.Join(v.Dir, "tls")
		if err := os.MkdirAll(certDir, 0o700); err != nil {
			logf.Close()
			return err
		}
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
	}
	cmd := exec.Command(Binary(), args...)
	cmd.Env = serverEnv(v.Dir)
	cmd.Dir = v.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start vault: %w", err)
	}
	v.cmd, v.logFile = cmd, logf
	v.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(v.exited) }()
	return v.waitReady(ctx, 60*time.Second)
}

// serverEnv is the server's environment: ours without VAULT_* variables (a test may
// set VAULT_ADDR or VAULT_TOKEN for the client under test), with mlock disabled and
// HOME pointing at dir so nothing lands in the real home directory.
func serverEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "VAULT_DISABLE_MLOCK=true", "HOME="+dir)
}

func (v *Vault) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	logPath := filepath.Join(v.Dir, "vault.log")
	for time.Now().Before(deadline) {
		select {
		case <-v.exited:
			return fmt.Errorf("vault exited while starting; see %s", logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if v.Client == nil {
			if err := v.newClient(); err != nil {
				continue // with TLS, the CA file appears only once the server has generated it
			}
		}
		h, err := v.Client.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed {
			return nil
		}
	}
	return fmt.Errorf("vault not healthy after %s; see %s", timeout, logPath)
}

func (v *Vault) newClient() error {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	if v.opts.tls {
		pem, err := os.ReadFile(v.CACert)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no certificate yet", v.CACert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cfg := &api.Config{
		Address: v.Addr,
		HttpClient: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Timeout: 30 * time.Second,
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	c.SetToken(RootToken)
	c.ClearNamespace()
	v.Client, v.transport = c, tr
	return nil
}

// Stop stops Vault (SIGTERM, then SIGKILL after 10 s). A dev server keeps nothing:
// everything written to it is gone.
func (v *Vault) Stop() {
	if v.transport != nil {
		v.transport.CloseIdleConnections()
	}
	if v.cmd == nil {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.exited:
	case <-time.After(10 * time.Second):
		_ = v.cmd.Process.Kill()
		<-v.exited
	}
	v.cmd = nil
	v.logFile.Close()
	if v.transport != nil {
		v.transport.CloseIdleConnections()
	}
}

// Restart stops Vault and starts a fresh dev server on the same address, for tests of
// an outage. The new server is empty again (dev mode keeps nothing) except for the
// same root token and the KV v2 mount at secret/; with WithTLS it has a new CA.
func (v *Vault) Restart(ctx context.Context) error {
	v.Stop()
	if v.opts.tls {
		_ = os.Remove(v.CACert)
		v.Client = nil
	}
	return v.start(ctx)
}
