// Package promtest runs a real Prometheus on 127.0.0.1 with its OTLP receiver on, for
// integration tests, and reads back what it stored with PromQL. The binary is built by
// `make backends` (tools/backends/build.sh prometheus) into the outrider cache; when
// it is missing, Start fails with the command that builds it.
package promtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
)

// Version is the pinned Prometheus module version tools/backends/build.sh builds
// (Prometheus 3.16.0).
const Version = "v0.316.0"

// OTLPPath is where Prometheus serves OTLP/HTTP metrics (with
// --web.enable-otlp-receiver).
const OTLPPath = "/api/v1/otlp/v1/metrics"

// Binary returns the path of the Prometheus binary: $OUTRIDER_PROMETHEUS_BIN, or the
// one `make backends` cached (see backendtest.CacheDir).
func Binary() string { return backendtest.Binary("OUTRIDER_PROMETHEUS_BIN", "prometheus", Version) }

// Prometheus is a running Prometheus server.
type Prometheus struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
	Dir string

	port int
	proc *backendtest.Process
	opts options
}

// Option changes how Start configures Prometheus.
type Option func(*options)

type options struct {
	promote []string
}

// PromoteResourceAttributes lists resource attributes Prometheus' OTLP receiver turns
// into labels of every series (otlp.promote_resource_attributes); the others stay in
// target_info only.
func PromoteResourceAttributes(attrs ...string) Option {
	return func(o *options) { o.promote = append(o.promote, attrs...) }
}

// Start starts Prometheus with its data under dir and waits until it is ready. It
// returns an error that says how to build Prometheus when the binary is missing.
func Start(ctx context.Context, dir string, opts ...Option) (*Prometheus, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("real Prometheus %s not found at %s: run `make backends` (or tools/backends/build.sh prometheus) to build it once per machine, or set OUTRIDER_PROMETHEUS_BIN", Version, bin)
	}
	port, err := backendtest.FreePort()
	if err != nil {
		return nil, err
	}
	p := &Prometheus{Dir: dir, port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	for _, o := range opts {
		o(&p.opts)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(p.config()), 0o644); err != nil {
		return nil, err
	}
	return p, p.start(ctx)
}

// OTLPURL is the URL an OTLP/HTTP metrics exporter posts to.
func (p *Prometheus) OTLPURL() string { return p.URL + OTLPPath }

func (p *Prometheus) config() string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n")
	if len(p.opts.promote) > 0 {
		b.WriteString("otlp:\n  promote_resource_attributes:\n")
		for _, a := range p.opts.promote {
			fmt.Fprintf(&b, "    - %s\n", strconv.Quote(a))
		}
	}
	return b.String()
}

func (p *Prometheus) start(ctx context.Context) error {
	proc, err := backendtest.StartProcess(ctx, "prometheus", filepath.Join(p.Dir, "prometheus.log"),
		backendtest.ReadyURL(p.URL+"/-/ready"), 90*time.Second, Binary(),
		"--config.file="+filepath.Join(p.Dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.Dir, "data"),
		"--web.listen-address="+fmt.Sprintf("127.0.0.1:%d", p.port),
		"--web.enable-otlp-receiver",
		"--log.level=warn",
	)
	p.proc = proc
	return err
}

// Stop stops Prometheus (SIGTERM, then SIGKILL after 20 s) and keeps its data, so
// Restart brings the same store back. Safe more than once.
func (p *Prometheus) Stop() {
	p.proc.Stop()
	p.proc = nil
}

// Restart starts Prometheus again on the same port and data directory.
func (p *Prometheus) Restart(ctx context.Context) error {
	p.Stop()
	return p.start(ctx)
}

// Sample is one series of an instant query's answer.
type Sample struct {
	// Labels are the series' labels, __name__ among them.
	Labels map[string]string
	Time   time.Time
	Value  float64
}

// Query evaluates the PromQL expression at now (/api/v1/query) and returns the
// series of its vector answer.
func (p *Prometheus) Query(ctx context.Context, promql string) ([]Sample, error) {
	u := p.URL + "/api/v1/query?" + url.Values{"query": {promql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var out struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("query %s: HTTP %d, not JSON: %.200s", promql, resp.StatusCode, body)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %s: %s: %s", promql, out.ErrorType, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %s, want vector", promql, out.Data.ResultType)
	}
	samples := make([]Sample, 0, len(out.Data.Result))
	for _, r := range out.Data.Result {
		ts, _ := r.Value[0].(float64)
		vs, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %q: %w", promql, vs, err)
		}
		samples = append(samples, Sample{Labels: r.Metric, Time: time.UnixMilli(int64(ts * 1000)), Value: v})
	}
	return samples, nil
}

// ErrNotFound is returned by WaitCount when fewer series than wanted arrived in time.
var ErrNotFound = errors.New("series missing")

// WaitCount polls Query until it returns at least want series or timeout passes, and
// returns the last answer.
func (p *Prometheus) WaitCount(ctx context.Context, promql string, want int, timeout time.Duration) ([]Sample, error) {
	deadline := time.Now().Add(timeout)
	var last []Sample
	for {
		got, err := p.Query(ctx, promql)
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
			return last, fmt.Errorf("%w: %d of %d series for %s after %s", ErrNotFound, len(last), want, promql, timeout)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
