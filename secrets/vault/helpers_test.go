package vault

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// value reads a counter's or gauge's current value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	t.Fatalf("unsupported metric %v", m.Desc())
	return 0
}

// seriesCount counts the series a collector currently exports.
func seriesCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	n := 0
	for range ch {
		n++
	}
	return n
}

var seq atomic.Int64

// unique returns a name no other test uses, for mounts and roles on the shared Vault.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// allPolicy lets a token do everything but sudo operations.
const allPolicy = `path "*" { capabilities = ["create", "read", "update", "delete", "list"] }`

var policyOnce sync.Once

// root returns the shared Vault's root client, with the test policies in place.
func root(t testing.TB) *api.Client {
	t.Helper()
	v := sharedVault(t)
	policyOnce.Do(func() {
		if err := v.Client.Sys().PutPolicy("outrider-all", allPolicy); err != nil {
			t.Fatalf("setup: policy: %v", err)
		}
	})
	return v.Client
}

func rootWrite(t testing.TB, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := root(t).Logical().Write(path, data)
	if err != nil {
		t.Fatalf("setup: write %s: %v", path, err)
	}
	return s
}

func rootRead(t testing.TB, path string) *api.Secret {
	t.Helper()
	s, err := root(t).Logical().Read(path)
	if err != nil || s == nil {
		t.Fatalf("setup: read %s: %v", path, err)
	}
	return s
}

func enableAuth(t *testing.T, kind, mount string) {
	t.Helper()
	if err := root(t).Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: kind}); err != nil {
		t.Fatalf("setup: enable %s auth at %s: %v", kind, mount, err)
	}
}

func mountEngine(t *testing.T, kind, mount string, options map[string]string) {
	t.Helper()
	if err := root(t).Sys().Mount(mount, &api.MountInput{Type: kind, Options: options}); err != nil {
		t.Fatalf("setup: mount %s at %s: %v", kind, mount, err)
	}
}

// approle enables AppRole at mount with role (token_policies outrider-all plus
// extra settings) and returns its role_id and a fresh secret_id.
func approle(t *testing.T, mount, role string, extra map[string]any) (roleID, secretID string) {
	t.Helper()
	enableAuth(t, "approle", mount)
	data := map[string]any{"token_policies": "outrider-all", "token_ttl": "5m"}
	for k, v := range extra {
		data[k] = v
	}
	rootWrite(t, "auth/"+mount+"/role/"+role, data)
	roleID = rootRead(t, "auth/"+mount+"/role/"+role+"/role-id").Data["role_id"].(string)
	secretID = rootWrite(t, "auth/"+mount+"/role/"+role+"/secret-id", nil).Data["secret_id"].(string)
	return roleID, secretID
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder captures everything the client logs and audits.
type recorder struct {
	mu     sync.Mutex
	logs   bytes.Buffer
	events []audit.Event
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.Write(p)
}

func (r *recorder) Record(e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) settings() Settings {
	return Settings{
		Logger:  slog.New(slog.NewJSONHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Audit:   r,
		Metrics: NewMetrics(nil),
	}
}

// find returns the events of kind with outcome ("" for any).
func (r *recorder) find(kind audit.Kind, outcome string) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, e := range r.events {
		if e.Kind == kind && (outcome == "" || e.Outcome == outcome) {
			out = append(out, e)
		}
	}
	return out
}

// text is every log line and every audit event, for leak checks.
func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.Write(r.logs.Bytes())
	for _, e := range r.events {
		fmt.Fprintf(&b, "%+v\n", e)
		for _, a := range e.Attrs() {
			fmt.Fprintf(&b, "%s\n", a)
		}
	}
	return b.String()
}

// counter records every HTTP request the client sends (below its rate cap).
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []sent
}

type sent struct {
	at     time.Time
	method string
	path   string
	header http.Header
}

func (c *counter) wrap(next http.RoundTripper) http.RoundTripper {
	c.next = next
	return c
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, sent{time.Now(), req.Method, req.URL.Path, req.Header.Clone()})
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *counter) take() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

// newClient builds a client for the shared Vault; unset address and rate get the
// shared Vault's address and a rate that does not slow the tests.
func newClient(t testing.TB, cfg Config, set Settings) *Client {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = sharedVault(t).Addr
	}
	if cfg.MaxRequestsPerSecond == 0 {
		cfg.MaxRequestsPerSecond = 1000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	c, err := New(cfg, set)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// kvPut writes a KV v2 version with the root client and returns its number.
func kvPut(t testing.TB, mount, name string, data map[string]any) int {
	t.Helper()
	v, err := root(t).KVv2(mount).Put(context.Background(), name, data)
	if err != nil {
		t.Fatalf("setup: kv put %s%s: %v", mount, name, err)
	}
	return v.VersionMetadata.Version
}

// dataOf returns a KV v2 read's secret data.
func dataOf(t *testing.T, s *Secret) map[string]any {
	t.Helper()
	d, ok := s.Data["data"].(map[string]any)
	if !ok {
		t.Fatalf("KV v2 data missing in %v", s.Data)
	}
	return d
}

// wrappedWrite writes with the root token and response wrapping (as
// `vault write -wrap-ttl=5m` does) and returns the wrapping token.
func wrappedWrite(t *testing.T, path string, data map[string]any) string {
	t.Helper()
	cl, err := root(t).Clone()
	if err != nil {
		t.Fatal(err)
	}
	cl.SetToken(root(t).Token())
	cl.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	s, err := cl.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("setup: wrapped write %s: %v", path, err)
	}
	if s == nil || s.WrapInfo == nil || s.WrapInfo.Token == "" {
		t.Fatalf("setup: answer of %s not wrapped: %+v", path, s)
	}
	return s.WrapInfo.Token
}

func secretOf(s string) confval.Secret { return confval.Secret(s) }
