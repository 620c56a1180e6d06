// Package config is outrider's configuration: the root Config, strict YAML loading
// (unknown keys are errors, ${ENV} expansion, durations and sizes from strings),
// defaults, and validation that reports every problem with its field path.
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/exporters/otlpexporter"
	"github.com/outrider-dev/outrider/exporters/sentryexporter"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/processors/errorevents"
	"github.com/outrider-dev/outrider/receivers/diskqueue"
	"github.com/outrider-dev/outrider/receivers/otlpreceiver"
	"github.com/outrider-dev/outrider/receivers/sentryreceiver"
	"github.com/outrider-dev/outrider/secrets"
	"github.com/outrider-dev/outrider/sources/tail"
)

// Config is the whole configuration of an outrider agent.
type Config struct {
	// DataDir holds what must survive a restart: file positions, queues.
	DataDir string `yaml:"data_dir"`
	// Identity names the application the sidecar rides beside.
	Identity Identity `yaml:"identity"`
	// Server is the agent's own HTTP endpoint: /metrics, /healthz, /readyz.
	Server Server `yaml:"server"`
	// Log configures the agent's own logs.
	Log Log `yaml:"log"`
	// Logs lists where application logs are collected from.
	Logs Logs `yaml:"logs"`
	// Receivers configures the endpoints the application pushes telemetry to.
	Receivers Receivers `yaml:"receivers"`
	// Queue is the durable queue that pushed telemetry (OTLP traces and logs) is
	// written to before the client is answered; it lives in data_dir/queue.
	Queue diskqueue.Config `yaml:"queue"`
	// Errors configures the error events (from logs, spans and the application's
	// SDK) sent to Sentry and, with to_loki, to Loki; used when exporters.sentry is
	// set or errors.to_loki is true.
	Errors errorevents.Config `yaml:"errors"`
	// Grafana, when its url is set, adds links to Tempo and Loki to every error event.
	Grafana errorevents.Grafana `yaml:"grafana"`
	// Exporters configures the backends.
	Exporters Exporters `yaml:"exporters"`
	// Secrets configures Vault and the files rendered from it; unused when it lists no
	// files.
	Secrets secrets.Config `yaml:"secrets"`
	// Runtime tunes the Go runtime for a small sidecar.
	Runtime Runtime `yaml:"runtime"`
}

// Runtime tunes the Go runtime. The GOGC, GOMEMLIMIT and GOMAXPROCS environment
// variables, when set, take precedence.
type Runtime struct {
	// GCPercent is the garbage collector's target heap growth (GOGC). The default is
	// Go's, 100: the live heap while logs ship is mostly the file source's in-flight
	// window (max_inflight_batches), which is sized so that 100 keeps peak memory
	// where 50 kept it with a window a third larger, at 9 % less CPU per line.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimit is a soft limit for the Go heap (GOMEMLIMIT); 0 means none. Set it
	// a little below the container's memory limit.
	MemoryLimit confval.ByteSize `yaml:"memory_limit"`
	// IdleRelease is how often the agent looks whether it has gone quiet after work
	// (start-up, a burst): at the first quiet look it returns its free heap and the
	// executable's pages that work touched to the kernel (internal/memtrim). 0 turns
	// it off.
	IdleRelease time.Duration `yaml:"idle_release"`
	// MaxProcs is how many threads run Go code at once (GOMAXPROCS). The default, 1,
	// suits a sidecar: one core ships far more than an application writes, and a
	// single scheduler spends less CPU per record than several (no idle threads
	// spinning for work, no parallel GC workers; docs/configuration.md has the
	// figures). 0 leaves it to the Go runtime (the CPU limit of the
	// container, at least 2), for a node agent that ships a whole node.
	MaxProcs int `yaml:"max_procs"`
}

// Identity names the application; its values become the service, namespace, pod and
// container labels of every stream and the resource attributes added to OTLP data.
// Defaults come from the environment the Kubernetes downward API (or docker-compose)
// sets: OTEL_SERVICE_NAME, POD_NAMESPACE, POD_NAME, POD_UID, CONTAINER_NAME,
// NODE_NAME, DEPLOYMENT_ENVIRONMENT.
type Identity struct {
	Service     string `yaml:"service"`
	Namespace   string `yaml:"namespace"`
	Pod         string `yaml:"pod"`
	PodUID      string `yaml:"pod_uid"`
	Container   string `yaml:"container"`
	Node        string `yaml:"node"`
	Environment string `yaml:"environment"`
}

// ResourceAttributes returns the identity as OpenTelemetry resource attributes,
// leaving out empty values.
func (id Identity) ResourceAttributes() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{
		"service.name":           id.Service,
		"k8s.namespace.name":     id.Namespace,
		"k8s.pod.name":           id.Pod,
		"k8s.pod.uid":            id.PodUID,
		"k8s.container.name":     id.Container,
		"k8s.node.name":          id.Node,
		"deployment.environment": id.Environment,
	} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// Labels returns the identity as stream labels, leaving out empty values.
func (id Identity) Labels() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"service": id.Service, "namespace": id.Namespace, "pod": id.Pod, "container": id.Container} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// Server is the agent's own HTTP endpoint.
type Server struct {
	// Listen is host:port for /metrics, /healthz and /readyz. Port 0 picks a free port.
	Listen string `yaml:"listen"`
	// ShutdownTimeout bounds how long a stop (SIGTERM, or a reload replacing the
	// pipeline) waits for in-flight data to be delivered.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Pprof serves Go's profiling endpoints under /debug/pprof/ (off by default).
	Pprof bool `yaml:"pprof"`
}

// Log configures the agent's own logs, written to stderr.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Logs lists the log sources.
type Logs struct {
	Sources []LogSource `yaml:"sources"`
}

// LogSource is one log source.
type LogSource struct {
	// Type is the kind of source; "file" (the default) tails files.
	Type        string `yaml:"type"`
	tail.Config `yaml:",inline"`
}

// Receivers configures the push endpoints; a nil entry is not served.
type Receivers struct {
	// OTLP receives traces and logs from OpenTelemetry SDKs.
	OTLP *otlpreceiver.Config `yaml:"otlp"`
	// Sentry receives events from Sentry SDKs whose DSN points at the sidecar.
	Sentry *sentryreceiver.Config `yaml:"sentry"`
}

// Exporters configures each backend; a nil entry is not used.
type Exporters struct {
	// Loki receives logs: from files and from OTLP.
	Loki *lokiexporter.Config `yaml:"loki"`
	// OTLP sends traces to an OTLP backend such as Tempo.
	OTLP *otlpexporter.Config `yaml:"otlp"`
	// OTLPMetrics sends the metrics the OTLP receiver takes in to a Prometheus or
	// Mimir OTLP endpoint.
	OTLPMetrics *otlpexporter.MetricsConfig `yaml:"otlp_metrics"`
	// Sentry sends error events to a Sentry project.
	Sentry *sentryexporter.Config `yaml:"sentry"`
}

// Default returns a Config with every default filled in, identity from the environment.
func Default() Config {
	return defaultWith(os.Getenv)
}

func defaultWith(getenv func(string) string) Config {
	return Config{
		DataDir: "/var/lib/outrider",
		Identity: Identity{
			Service:     getenv("OTEL_SERVICE_NAME"),
			Namespace:   getenv("POD_NAMESPACE"),
			Pod:         getenv("POD_NAME"),
			PodUID:      getenv("POD_UID"),
			Container:   getenv("CONTAINER_NAME"),
			Node:        getenv("NODE_NAME"),
			Environment: getenv("DEPLOYMENT_ENVIRONMENT"),
		},
		Server:  Server{Listen: "127.0.0.1:8686", ShutdownTimeout: 30 * time.Second},
		Log:     Log{Level: "info", Format: "json"},
		Runtime: Runtime{GCPercent: 100, IdleRelease: 5 * time.Second, MaxProcs: 1},
	}
}

// applyDefaults fills the defaults of list elements and optional sections, which
// Default cannot know in advance.
func (c *Config) applyDefaults() {
	for i := range c.Logs.Sources {
		s := &c.Logs.Sources[i]
		if s.Type == "" {
			s.Type = "file"
		}
		s.Config.ApplyDefaults()
	}
	if c.Exporters.Loki != nil {
		c.Exporters.Loki.ApplyDefaults()
	}
	if c.Exporters.OTLP != nil {
		c.Exporters.OTLP.ApplyDefaults()
	}
	if c.Exporters.OTLPMetrics != nil {
		c.Exporters.OTLPMetrics.ApplyDefaults()
	}
	if c.Receivers.OTLP != nil {
		c.Receivers.OTLP.ApplyDefaults()
	}
	if c.Receivers.Sentry != nil {
		c.Receivers.Sentry.ApplyDefaults()
	}
	if c.Exporters.Sentry != nil {
		c.Exporters.Sentry.ApplyDefaults()
	}
	c.Errors.ApplyDefaults()
	c.Queue.ApplyDefaults()
	if c.Secrets.Enabled() {
		c.Secrets.ApplyDefaults()
	}
}

// Parse decodes YAML onto Default(), applies defaults and validates. name is used in
// messages (usually the file path). The error, if any, is a *confval.Error listing
// every problem. Data larger than MaxBytes, with more than MaxNodes nodes, with
// anchors or aliases, or with a key written twice in one mapping is refused before any
// value is decoded, and no message ever shows the value of a secret field.
func Parse(name string, data []byte) (*Config, error) {
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	cfg := Default()
	p := &confval.Problems{}
	newDecoder(p).decode(root, reflect.ValueOf(&cfg).Elem(), "")
	if err := p.Err(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Load reads (at most MaxBytes of) the configuration file at path and parses it.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ErrorEventsOn reports whether c makes error events: they go to Sentry
// (exporters.sentry), to Loki (errors.to_loki with exporters.loki), or both.
func (c *Config) ErrorEventsOn() bool {
	return c.Exporters.Sentry != nil || (c.Errors.ToLoki && c.Exporters.Loki != nil)
}

// Validate reports every problem of c with its field path.
func (c *Config) Validate() error {
	p := &confval.Problems{}
	if !filepath.IsAbs(c.DataDir) {
		p.Addf("data_dir", "must be an absolute path, got %q", c.DataDir)
	}
	if _, port, err := net.SplitHostPort(c.Server.Listen); err != nil || port == "" {
		p.Addf("server.listen", "must be host:port, e.g. 127.0.0.1:8686, got %q", c.Server.Listen)
	}
	if c.Server.ShutdownTimeout <= 0 {
		p.Addf("server.shutdown_timeout", "must be positive, e.g. \"30s\"")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Addf("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		p.Addf("log.format", "must be json or text; got %q", c.Log.Format)
	}
	if c.Runtime.GCPercent < 10 || c.Runtime.GCPercent > 1000 {
		p.Addf("runtime.gc_percent", "must be between 10 and 1000, got %d", c.Runtime.GCPercent)
	}
	if c.Runtime.MemoryLimit != 0 && c.Runtime.MemoryLimit < 16<<20 {
		p.Addf("runtime.memory_limit", "must be 0 (none) or at least 16MiB, got %s", c.Runtime.MemoryLimit)
	}
	if c.Runtime.MaxProcs < 0 || c.Runtime.MaxProcs > 256 {
		p.Addf("runtime.max_procs", "must be between 0 (the Go runtime's choice) and 256, got %d", c.Runtime.MaxProcs)
	}
	if c.Runtime.IdleRelease != 0 && c.Runtime.IdleRelease < time.Second {
		p.Addf("runtime.idle_release", "must be 0 (off) or at least 1s, got %s", c.Runtime.IdleRelease)
	}
	names := map[string]int{}
	for i := range c.Logs.Sources {
		s := &c.Logs.Sources[i]
		sp := p.At(fmt.Sprintf("logs.sources[%d]", i))
		if s.Type != "file" {
			sp.Addf("type", "unknown source type %q; the only type is \"file\"", s.Type)
		}
		if j, dup := names[s.Name]; dup {
			sp.Addf("name", "%q is already the name of logs.sources[%d]; names must be unique", s.Name, j)
		}
		names[s.Name] = i
		s.Config.Validate(sp)
	}
	if len(c.Logs.Sources) > 0 && c.Exporters.Loki == nil {
		p.Addf("exporters.loki", "required when logs.sources is set: add exporters.loki.url")
	}
	if c.Exporters.Loki != nil {
		c.Exporters.Loki.Validate(p.At("exporters.loki"))
	}
	if c.Exporters.OTLP != nil {
		c.Exporters.OTLP.Validate(p.At("exporters.otlp"))
	}
	if c.Exporters.OTLPMetrics != nil {
		c.Exporters.OTLPMetrics.Validate(p.At("exporters.otlp_metrics"))
	}
	if c.Exporters.Sentry != nil {
		c.Exporters.Sentry.Validate(p.At("exporters.sentry"))
	}
	if c.Errors.ToLoki && c.Exporters.Loki == nil {
		p.Addf("errors.to_loki", "needs exporters.loki: add exporters.loki.url, or remove to_loki")
	}
	if c.ErrorEventsOn() {
		c.Errors.Validate(p.At("errors"))
		c.Grafana.Validate(p.At("grafana"))
	}
	if r := c.Receivers.Sentry; r != nil {
		r.Validate(p.At("receivers.sentry"))
		if !c.ErrorEventsOn() {
			p.Addf("receivers.sentry", "has nowhere to send events: add exporters.sentry.dsn (your Sentry project's DSN), or errors.to_loki: true with exporters.loki")
		}
		if o := c.Receivers.OTLP; o != nil && !otlpreceiver.AnyPort(r.Listen) && (r.Listen == o.GRPC.Listen || r.Listen == o.HTTP.Listen) {
			p.Addf("receivers.sentry.listen", "%s is already used by receivers.otlp; give each its own port", r.Listen)
		}
	}
	if c.Receivers.OTLP != nil || c.Receivers.Sentry != nil || c.ErrorEventsOn() {
		c.Queue.Validate(p.At("queue"))
	}
	if r := c.Receivers.OTLP; r != nil {
		r.Validate(p.At("receivers.otlp"))
		if c.Exporters.OTLP == nil && c.Exporters.Loki == nil && c.Exporters.OTLPMetrics == nil {
			p.Addf("receivers.otlp", "has nowhere to send what it receives: add exporters.otlp (traces, e.g. Tempo), exporters.loki (logs) and/or exporters.otlp_metrics (metrics, e.g. Prometheus)")
		}
		if c.Queue.SegmentSize > 0 && r.MaxRequestBytes > c.Queue.SegmentSize/2 {
			p.Addf("receivers.otlp.max_request_bytes", "%s is more than half of queue.segment_size (%s); raise the segment size or lower the request limit",
				r.MaxRequestBytes, c.Queue.SegmentSize)
		}
	}
	if c.Secrets.Enabled() {
		c.Secrets.Validate(p.At("secrets"))
	}
	return p.Err()
}
