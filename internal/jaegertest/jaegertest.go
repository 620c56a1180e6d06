// Package jaegertest runs a real Jaeger v2 on 127.0.0.1 as the OTLP trace backend of
// integration tests, and reads back what it stored through Jaeger's query API. Jaeger
// v2 ingests OTLP through the same OpenTelemetry Collector receiver as Tempo (which
// cannot be built here), so an exporter that Jaeger accepts speaks plain OTLP.
//
// The binary is built by `make backends` into the outrider cache; when it is missing,
// Start fails the test with the command that builds it: integration tests never skip.
//
// Jaeger keeps traces in memory (at most 100,000): Stop or Restart loses every trace it
// had. StartPersistent stores them on disk (badger) instead, for tests that stop the
// backend and then check that everything accepted before and after arrived.
package jaegertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
)

// Version is the pinned Jaeger version tools/backends/build.sh builds. Jaeger's v1.x
// module tags carry the 2.x releases.
const Version = "v1.76.0"

// BinaryEnv names the environment variable that overrides the cached binary's path.
const BinaryEnv = "OUTRIDER_JAEGER_BIN"

// Binary returns the path of the Jaeger binary: $OUTRIDER_JAEGER_BIN, or the one
// `make backends` cached (see backendtest.CacheDir).
func Binary() string { return backendtest.Binary(BinaryEnv, "jaeger", Version) }

// Timeouts of the server's lifecycle.
const (
	// ReadyTimeout bounds how long Start and Restart wait for Jaeger to serve.
	ReadyTimeout = 60 * time.Second
	// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
	StopGrace = 10 * time.Second
)

// Jaeger is a running Jaeger v2 server: an OTLP receiver (gRPC and HTTP), a batch
// processor and in-memory (or badger) storage, and the query service (HTTP and gRPC). Everything
// listens on 127.0.0.1 only. Its methods are safe for concurrent use, but Stop and
// Restart must not race with each other.
type Jaeger struct {
	// Dir holds the configuration (jaeger.yaml) and the server's log (jaeger.log).
	Dir string

	otlpGRPCPort, otlpHTTPPort   int
	queryHTTPPort, queryGRPCPort int
	// persistent stores traces with badger under Dir, so they survive Stop/Restart.
	persistent bool
	opts       Options

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
}

// Start starts a Jaeger of the test's own under t.TempDir(), waits until it serves and
// stops it when the test ends. It fails the test if Jaeger is not built or does not
// start, and logs the tail of Jaeger's log when the test failed. Tests that do not
// stop the server can use Shared instead.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	return startT(t, false)
}

// StartPersistent is Start with traces stored on disk (badger under the test's
// directory) instead of in memory, so that they survive Stop and Restart: for tests
// that stop the backend while data flows and then check everything arrived.
func StartPersistent(t testing.TB) *Jaeger {
	t.Helper()
	return startT(t, true)
}

// Options configure the OTLP receiver of a Jaeger started with StartWith.
type Options struct {
	// TLSCertFile and TLSKeyFile, when set, make both OTLP receivers serve TLS with
	// this certificate (PEM); OTLPHTTPEndpoint then starts with https://.
	TLSCertFile, TLSKeyFile string
	// ClientCAFile, with TLS, makes the receivers require a client certificate
	// signed by these CAs (mutual TLS).
	ClientCAFile string
	// BasicAuth, "user:password", makes the receivers require an Authorization
	// header with these credentials (Jaeger's basicauth extension): a request
	// without it or with others is refused (gRPC Unauthenticated, HTTP 401).
	BasicAuth string
}

// StartWith is Start with the receivers configured by o.
func StartWith(t testing.TB, o Options) *Jaeger {
	t.Helper()
	return startOpts(t, false, o)
}

func startT(t testing.TB, persistent bool) *Jaeger {
	t.Helper()
	return startOpts(t, persistent, Options{})
}

func startOpts(t testing.TB, persistent bool, o Options) *Jaeger {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout+5*time.Second)
	defer cancel()
	j, err := startIn(ctx, t.TempDir(), persistent, o)
	if err != nil {
		t.Fatalf("real Jaeger: %v", err)
	}
	t.Cleanup(func() {
		j.Stop()
		if t.Failed() {
			t.Logf("jaeger log (%s):\n%s", j.LogPath(), tail(j.LogPath(), 40))
		}
	})
	return j
}

// StartIn starts Jaeger on free 127.0.0.1 ports with its configuration and log under
// dir, and waits until its receivers and query service answer. It returns an error
// that says how to build Jaeger when the binary is missing. The caller stops it.
func StartIn(ctx context.Context, dir string) (*Jaeger, error) {
	return startIn(ctx, dir, false, Options{})
}

func startIn(ctx context.Context, dir string, persistent bool, o Options) (*Jaeger, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("real Jaeger %s not found at %s: run `make backends` (or tools/backends/build.sh jaeger) to build it once per machine, or set %s", Version, bin, BinaryEnv)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jaeger directory: %w", err)
	}
	ports, err := backendtest.FreePorts(4)
	if err != nil {
		return nil, fmt.Errorf("free ports for jaeger: %w", err)
	}
	j := &Jaeger{Dir: dir, otlpGRPCPort: ports[0], otlpHTTPPort: ports[1], queryHTTPPort: ports[2], queryGRPCPort: ports[3], persistent: persistent, opts: o}
	if err := os.WriteFile(j.configPath(), []byte(j.config()), 0o644); err != nil {
		return nil, fmt.Errorf("write jaeger configuration: %w", err)
	}
	if err := j.start(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// OTLPGRPCEndpoint is the OTLP/gRPC receiver's address, host:port.
func (j *Jaeger) OTLPGRPCEndpoint() string { return fmt.Sprintf("127.0.0.1:%d", j.otlpGRPCPort) }

// OTLPHTTPEndpoint is the OTLP/HTTP receiver's base URL, http://host:port (https://
// with TLS); traces go to its /v1/traces.
func (j *Jaeger) OTLPHTTPEndpoint() string {
	scheme := "http"
	if j.opts.TLSCertFile != "" {
		scheme = "https"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, j.otlpHTTPPort)
}

// QueryURL is the query service's base URL, http://host:port (the UI and /api/...).
func (j *Jaeger) QueryURL() string { return fmt.Sprintf("http://127.0.0.1:%d", j.queryHTTPPort) }

// QueryGRPCEndpoint is the query service's gRPC address (api_v2 and api_v3), host:port.
func (j *Jaeger) QueryGRPCEndpoint() string { return fmt.Sprintf("127.0.0.1:%d", j.queryGRPCPort) }

// LogPath is the file Jaeger writes its log to; Restart appends to it.
func (j *Jaeger) LogPath() string { return filepath.Join(j.Dir, "jaeger.log") }

func (j *Jaeger) configPath() string { return filepath.Join(j.Dir, "jaeger.yaml") }

// config is Jaeger's configuration. Only the listed components run, so nothing listens
// beyond the four loopback ports: no health_check, zpages, expvar, sampling, Jaeger or
// Zipkin receivers, and no internal metrics endpoint. The query service does not trace
// itself (it would export to localhost:4317 and stall shutdown for 10 s).
func (j *Jaeger) config() string {
	return fmt.Sprintf(`# Jaeger v2 configuration written by internal/jaegertest.
service:
  extensions: [jaeger_storage, jaeger_query%s]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
%s
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
%sreceivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
%s      http:
        endpoint: 127.0.0.1:%d
%sprocessors:
  batch: {}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, j.authExtension(), j.storage(), j.queryHTTPPort, j.queryGRPCPort, j.authDefinition(), j.otlpGRPCPort, j.receiverSecurity(), j.otlpHTTPPort, j.receiverSecurity())
}

// authExtension names the basicauth extension in service.extensions and defines it,
// when Options.BasicAuth is set.
func (j *Jaeger) authExtension() string {
	if j.opts.BasicAuth == "" {
		return ""
	}
	return ", basicauth/server"
}

// authDefinition defines the basicauth extension under extensions:, when
// Options.BasicAuth is set.
func (j *Jaeger) authDefinition() string {
	if j.opts.BasicAuth == "" {
		return ""
	}
	return fmt.Sprintf("  basicauth/server:\n    htpasswd:\n      inline: %q\n", j.opts.BasicAuth)
}

// receiverSecurity is the tls and auth settings of one OTLP receiver protocol.
func (j *Jaeger) receiverSecurity() string {
	var b strings.Builder
	if j.opts.TLSCertFile != "" {
		fmt.Fprintf(&b, "        tls:\n          cert_file: %s\n          key_file: %s\n", j.opts.TLSCertFile, j.opts.TLSKeyFile)
		if j.opts.ClientCAFile != "" {
			fmt.Fprintf(&b, "          client_ca_file: %s\n", j.opts.ClientCAFile)
		}
	}
	if j.opts.BasicAuth != "" {
		b.WriteString("        auth:\n          authenticator: basicauth/server\n")
	}
	return b.String()
}

// storage is the storage backend's configuration: memory, or badger on disk.
func (j *Jaeger) storage() string {
	if !j.persistent {
		return "        memory:\n          max_traces: 100000"
	}
	return fmt.Sprintf("        badger:\n          ephemeral: false\n          directories:\n            keys: %s\n            values: %s",
		filepath.Join(j.Dir, "badger", "keys"), filepath.Join(j.Dir, "badger", "values"))
}

// serverEnv is this process's environment without OTEL_* variables: a test may set
// them for the SDK under test, and they must not reconfigure the backend.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (j *Jaeger) start(ctx context.Context) error {
	logf, err := os.OpenFile(j.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("jaeger log: %w", err)
	}
	cmd := exec.Command(Binary(), "--config", j.configPath())
	cmd.Dir = j.Dir
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start jaeger %s: %w", Binary(), err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	j.mu.Lock()
	j.cmd, j.exited, j.logFile = cmd, exited, logf
	j.mu.Unlock()
	if err := j.waitReady(ctx, exited); err != nil {
		j.Stop()
		return err
	}
	return nil
}

// waitReady polls until the query service answers and both receivers accept
// connections; the query extension starts before the receivers.
func (j *Jaeger) waitReady(ctx context.Context, exited <-chan struct{}) error {
	deadline := time.NewTimer(ReadyTimeout)
	defer deadline.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if j.ready(ctx, client) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("jaeger exited while starting:\n%s", tail(j.LogPath(), 20))
		case <-ctx.Done():
			return fmt.Errorf("waiting for jaeger to start: %w; see %s", ctx.Err(), j.LogPath())
		case <-deadline.C:
			return fmt.Errorf("jaeger not ready after %s; see %s", ReadyTimeout, j.LogPath())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (j *Jaeger) ready(ctx context.Context, client *http.Client) bool {
	for _, port := range []int{j.otlpGRPCPort, j.otlpHTTPPort} {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL()+"/api/services", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops Jaeger (SIGTERM, then SIGKILL after StopGrace) by its process ID. Every
// stored trace is lost, unless it is persistent. Stopping a stopped Jaeger does nothing.
func (j *Jaeger) Stop() {
	j.mu.Lock()
	cmd, exited, logf := j.cmd, j.exited, j.logFile
	j.cmd, j.exited, j.logFile = nil, nil, nil
	j.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(StopGrace):
		_ = cmd.Process.Kill()
		<-exited
	}
	logf.Close()
}

// Restart stops Jaeger if it runs and starts it again on the same ports. With memory
// storage the traces stored before are gone; a persistent Jaeger keeps them. When it
// fails, Jaeger is left stopped.
func (j *Jaeger) Restart(ctx context.Context) error {
	j.Stop()
	return j.start(ctx)
}

// Running reports whether the Jaeger process is running (started and not stopped,
// and has not exited by itself).
func (j *Jaeger) Running() bool {
	j.mu.Lock()
	exited := j.exited
	j.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// tail returns the last n lines of the file at path, or why it cannot.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte{'\n'})
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte{'\n'}))
}

// shared is one Jaeger per test binary; tests that use it tell their traces apart by
// trace ID, so they can share it and run in parallel.
var shared struct {
	once sync.Once
	dir  string
	j    *Jaeger
	err  error
}

// Shared returns the test binary's Jaeger, starting it on first use. A missing binary
// fails the test with the command that builds it. Tests using it must not Stop or
// Restart it (that loses other tests' traces; use Start for that). Call StopShared
// from TestMain after m.Run.
func Shared(t testing.TB) *Jaeger {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "outrider-jaeger-test-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout+5*time.Second)
		defer cancel()
		shared.j, shared.err = StartIn(ctx, shared.dir)
	})
	if shared.err != nil {
		t.Fatalf("real Jaeger: %v", shared.err)
	}
	return shared.j
}

// StopShared stops the shared Jaeger, if one was started. Its directory (with the
// server's log) is removed after passing tests and kept, with a message, otherwise.
func StopShared(passed bool) {
	if shared.j == nil {
		return
	}
	shared.j.Stop()
	if passed {
		os.RemoveAll(shared.dir)
	} else {
		fmt.Fprintf(os.Stderr, "jaeger log kept in %s\n", shared.j.LogPath())
	}
}

// errBadTraceID reports a trace ID that is not 32 hex digits.
var errBadTraceID = errors.New("trace ID must be 32 hexadecimal digits")
