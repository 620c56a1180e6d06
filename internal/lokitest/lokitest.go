// Package lokitest runs a real Loki on 127.0.0.1 for integration tests and the demo,
// and reads back what it stored. The binary is built by `make backends` into the
// outrider cache; when it is missing, Start fails with the command that builds it.
package lokitest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
)

// Version is the pinned Loki version tools/backends/build.sh builds.
const Version = "v3.7.8"

// Binary returns the path of the Loki binary: $OUTRIDER_LOKI_BIN, or the one
// `make backends` cached (see backendtest.CacheDir).
func Binary() string { return backendtest.Binary("OUTRIDER_LOKI_BIN", "loki", Version) }

// Loki is a running Loki server.
type Loki struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234 (https:// with WithTLS).
	URL string
	Dir string
	// Tenant is sent as X-Scope-OrgID with the queries; set it (or use ForTenant)
	// for a Loki started WithAuth.
	Tenant string

	cmd      *exec.Cmd
	exited   chan struct{}
	httpPort int
	grpcPort int
	logFile  *os.File
	opts     options
}

// Option changes how Start configures Loki.
type Option func(*options)

type options struct {
	noStructuredMetadata bool
	auth                 bool
	certFile, keyFile    string
	clientCAFile         string
	client               *http.Client
}

// WithAuth starts Loki with auth_enabled: true: every push and query must carry an
// X-Scope-OrgID tenant (401 "no org id" without one), and tenants see only their own
// streams. Loki itself checks no password or token; that is a gateway's job.
func WithAuth() Option {
	return func(o *options) { o.auth = true }
}

// WithTLS makes Loki serve HTTP over TLS with the certificate certFile and key
// keyFile (PEM). With clientCAFile set, Loki requires a client certificate signed by
// it (RequireAndVerifyClientCert). client is the TLS configuration the Loki value's
// own requests (readiness, queries) use: it must trust the server's certificate and,
// with clientCAFile, present a client certificate.
func WithTLS(certFile, keyFile, clientCAFile string, client *tls.Config) Option {
	return func(o *options) {
		o.certFile, o.keyFile, o.clientCAFile = certFile, keyFile, clientCAFile
		o.client = &http.Client{Transport: &http.Transport{TLSClientConfig: client}}
	}
}

// ForTenant returns l for queries as tenant: the same server, another X-Scope-OrgID.
// Stop and Restart stay with l.
func (l *Loki) ForTenant(tenant string) *Loki {
	return &Loki{URL: l.URL, Dir: l.Dir, Tenant: tenant, httpPort: l.httpPort, grpcPort: l.grpcPort, opts: l.opts}
}

func (l *Loki) httpClient() *http.Client {
	if l.opts.client != nil {
		return l.opts.client
	}
	return http.DefaultClient
}

// serverTLS is the server block's TLS settings.
func (o *options) serverTLS() string {
	if o.certFile == "" {
		return ""
	}
	s := fmt.Sprintf("  http_tls_config:\n    cert_file: %s\n    key_file: %s\n", o.certFile, o.keyFile)
	if o.clientCAFile != "" {
		s += fmt.Sprintf("    client_auth_type: RequireAndVerifyClientCert\n    client_ca_file: %s\n", o.clientCAFile)
	}
	return s
}

// WithoutStructuredMetadata starts Loki with limits_config.allow_structured_metadata
// false, as Loki 2.x and some 3.x deployments run: it refuses every entry that carries
// structured metadata with a 400.
func WithoutStructuredMetadata() Option {
	return func(o *options) { o.noStructuredMetadata = true }
}

// Start starts Loki with its data under dir and waits until it is ready. It returns an
// error that says how to build Loki when the binary is missing.
func Start(ctx context.Context, dir string, opts ...Option) (*Loki, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("real Loki %s not found at %s: run `make backends` (or tools/backends/build.sh loki) to build it once per machine, or set OUTRIDER_LOKI_BIN", Version, bin)
	}
	ports, err := backendtest.FreePorts(2)
	if err != nil {
		return nil, err
	}
	l := &Loki{Dir: dir, httpPort: ports[0], grpcPort: ports[1]}
	for _, o := range opts {
		o(&l.opts)
	}
	l.URL = fmt.Sprintf("http://127.0.0.1:%d", l.httpPort)
	if l.opts.certFile != "" {
		l.URL = fmt.Sprintf("https://127.0.0.1:%d", l.httpPort)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "loki.yaml"), []byte(l.config()), 0o644); err != nil {
		return nil, err
	}
	return l, l.start(ctx)
}

func (l *Loki) config() string {
	return fmt.Sprintf(`auth_enabled: %[5]t
server:
  http_listen_address: 127.0.0.1
  http_listen_port: %[1]d
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: %[2]d
  log_level: warn
%[6]scommon:
  instance_addr: 127.0.0.1
  path_prefix: %[3]s
  replication_factor: 1
  storage:
    filesystem:
      chunks_directory: %[3]s/chunks
      rules_directory: %[3]s/rules
  ring:
    kvstore:
      store: inmemory
memberlist:
  bind_addr: [127.0.0.1]
ingester:
  wal:
    dir: %[3]s/wal
schema_config:
  configs:
    - from: 2024-01-01
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
limits_config:
  allow_structured_metadata: %[4]t
  ingestion_rate_mb: 256
  ingestion_burst_size_mb: 512
  per_stream_rate_limit: 256MB
  per_stream_rate_limit_burst: 512MB
  max_entries_limit_per_query: 100000
  reject_old_samples: true
  reject_old_samples_max_age: 168h
  max_query_length: 0
query_range:
  cache_results: false
analytics:
  reporting_enabled: false
`, l.httpPort, l.grpcPort, l.Dir, !l.opts.noStructuredMetadata, l.opts.auth, l.opts.serverTLS())
}

func (l *Loki) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(l.Dir, "loki.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(Binary(), "-config.file="+filepath.Join(l.Dir, "loki.yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start loki: %w", err)
	}
	l.cmd, l.logFile = cmd, logf
	l.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(l.exited) }()
	return l.waitReady(ctx, 90*time.Second)
}

func (l *Loki) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-l.exited:
			return fmt.Errorf("loki exited while starting; see %s", filepath.Join(l.Dir, "loki.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		resp, err := l.httpClient().Get(l.URL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("loki not ready after %s; see %s", timeout, filepath.Join(l.Dir, "loki.log"))
}

// Stop stops Loki (SIGTERM, then SIGKILL after 20 s) and keeps its data, so Restart
// brings the same store back.
func (l *Loki) Stop() {
	if l.cmd == nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(20 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.exited
	}
	l.cmd = nil
	l.logFile.Close()
}

// Restart starts Loki again on the same ports and data directory.
func (l *Loki) Restart(ctx context.Context) error {
	l.Stop()
	return l.start(ctx)
}

// Entry is one log entry read back from Loki.
type Entry struct {
	Time     time.Time
	Line     string
	Labels   map[string]string
	Metadata map[string]string
}

// Query returns every entry matching the LogQL stream selector query between start and
// end, oldest first, paging through Loki's query_range limit.
func (l *Loki) Query(ctx context.Context, query string, start, end time.Time) ([]Entry, error) {
	// Loki answers a 5,000-entry page in well under a second but stalls on much
	// larger limits, so page.
	const limit = 5000
	var out []Entry
	seenAtCursor := map[string]int{}
	cursor := start
	for {
		page, err := l.queryRange(ctx, query, cursor, end, limit)
		if err != nil {
			return nil, err
		}
		added := 0
		counts := map[string]int{}
		for _, e := range page {
			if e.Time.Equal(cursor) {
				key := e.Line + "\x00" + fmt.Sprint(e.Labels)
				counts[key]++
				if counts[key] <= seenAtCursor[key] {
					continue
				}
			}
			out = append(out, e)
			added++
		}
		if len(page) < limit || added == 0 {
			return out, nil
		}
		last := page[len(page)-1].Time
		seen := map[string]int{}
		for i := len(out) - 1; i >= 0 && out[i].Time.Equal(last); i-- {
			seen[out[i].Line+"\x00"+fmt.Sprint(out[i].Labels)]++
		}
		cursor, seenAtCursor = last, seen
	}
}

func (l *Loki) queryRange(ctx context.Context, query string, start, end time.Time, limit int) ([]Entry, error) {
	q := url.Values{}
	q.Set("query", query)
	q.Set("start", strconv.FormatInt(start.UnixNano(), 10))
	q.Set("end", strconv.FormatInt(end.UnixNano(), 10))
	q.Set("limit", strconv.Itoa(limit))
	q.Set("direction", "forward")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL+"/loki/api/v1/query_range?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	// Without this flag Loki merges structured metadata into the stream labels; with
	// it, labels and metadata come back apart, so tests can tell them apart.
	req.Header.Set("X-Loki-Response-Encoding-Flags", "categorize-labels")
	if l.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", l.Tenant)
	}
	resp, err := l.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("loki query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loki query %q: %s: %s", query, resp.Status, strings.TrimSpace(string(body)))
	}
	var r struct {
		Data struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Stream map[string]string   `json:"stream"`
				Values [][]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode loki response: %w", err)
	}
	var out []Entry
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			if len(v) < 2 {
				continue
			}
			var tsStr, line string
			if err := json.Unmarshal(v[0], &tsStr); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, err
			}
			ns, err := strconv.ParseInt(tsStr, 10, 64)
			if err != nil {
				return nil, err
			}
			e := Entry{Time: time.Unix(0, ns).UTC(), Line: line, Labels: s.Stream}
			if len(v) > 2 {
				var cat struct {
					StructuredMetadata map[string]string `json:"structuredMetadata"`
				}
				if err := json.Unmarshal(v[2], &cat); err != nil {
					return nil, fmt.Errorf("decode structured metadata %s: %w", v[2], err)
				}
				e.Metadata = cat.StructuredMetadata
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// ErrNotFound is returned by WaitCount when fewer entries than wanted arrived in time.
var ErrNotFound = errors.New("entries missing")

// WaitCount polls until query returns at least want entries or timeout passes, and
// returns the last result.
func (l *Loki) WaitCount(ctx context.Context, query string, start time.Time, want int, timeout time.Duration) ([]Entry, error) {
	deadline := time.Now().Add(timeout)
	var last []Entry
	for {
		got, err := l.Query(ctx, query, start, time.Now().Add(time.Minute))
		if err == nil {
			last = got
			if len(got) >= want {
				return got, nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return last, err
			}
			return last, fmt.Errorf("%w: %d of %d entries for %s after %s", ErrNotFound, len(last), want, query, timeout)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
