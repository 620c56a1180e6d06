package agent

import (
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/exporters/sentryexporter"
	"github.com/outrider-dev/outrider/processors/errorevents"
	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/receivers/diskqueue"
	"github.com/outrider-dev/outrider/receivers/otlpreceiver"
	"github.com/outrider-dev/outrider/receivers/sentryreceiver"
	"github.com/outrider-dev/outrider/secrets"
	"github.com/outrider-dev/outrider/sources/tail"
)

// metrics holds every component's metrics. It is created once per process and shared
// by every graph, so a config reload does not register anything twice.
type metrics struct {
	registry *prometheus.Registry
	tail     *tail.Metrics
	queue    *exporterhelper.Metrics
	secrets  *secrets.Metrics
	redact   *redact.Metrics
	reloads  *prometheus.CounterVec
	// queueCapacity is each durable queue's max_size, beside outrider_queue_bytes.
	queueCapacity *prometheus.GaugeVec
	// secretsReg holds the secrets metrics until secrets are first configured:
	// an agent without secrets does not export them.
	secretsReg   *deferredRegisterer
	auditDropped prometheus.Counter
	otlp         *otlpreceiver.Metrics
	disk         *diskqueue.Metrics
	badEntries   prometheus.Counter
	errorEvents  *errorevents.Metrics
	sentryIngest *sentryreceiver.Metrics
	sentryExp    *sentryexporter.Metrics
	lokiExp      *lokiexporter.Metrics
}

// Reload results, the values of the result label of outrider_config_reloads_total.
const (
	reloadSuccess    = "success"
	reloadRejected   = "rejected"    // the new configuration was invalid or could not be built
	reloadRolledBack = "rolled_back" // a new unit failed to start; the previous ones run again
)

func newMetrics(bi BuildInfo) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	sreg := &deferredRegisterer{target: reg}
	m := &metrics{
		registry:     reg,
		tail:         tail.NewMetrics(reg),
		queue:        exporterhelper.NewMetrics(reg),
		secrets:      secrets.NewMetrics(sreg),
		secretsReg:   sreg,
		redact:       redact.NewMetrics(reg),
		otlp:         otlpreceiver.NewMetrics(reg),
		disk:         diskqueue.NewMetrics(reg),
		errorEvents:  errorevents.NewMetrics(reg),
		sentryIngest: sentryreceiver.NewMetrics(reg),
		sentryExp:    sentryexporter.NewMetrics(reg),
		lokiExp:      lokiexporter.NewMetrics(reg),
		badEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrider_queue_undecodable_entries_total",
			Help: "Durable queue entries that could not be decoded (written by another version, or poison); each is set aside in the queue's quarantine folder, see outrider_queue_quarantined_total.",
		}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrider_audit_events_dropped_total",
			Help: "Audit events dropped because the audit buffer was full while the log exporter was unavailable.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_config_reloads_total",
			Help: "Configuration reloads by result (success, rejected, rolled_back).",
		}, []string{"result"}),
		queueCapacity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_queue_capacity_bytes",
			Help: "The durable queue's max_size: outrider_queue_bytes reaching it means requests are refused.",
		}, []string{"queue"}),
	}
	for _, r := range []string{reloadSuccess, reloadRejected, reloadRolledBack} {
		m.reloads.WithLabelValues(r)
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "outrider_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	})
	info.Set(1)
	reg.MustRegister(m.reloads, m.auditDropped, m.badEntries, m.queueCapacity, info)
	return m
}

// BuildInfo says which build is running.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
	Modified  bool   `json:"modified,omitempty"`
}

// buildInfo returns version with the VCS revision and time the Go toolchain stamped
// into the binary ("unknown" when it was built outside a repository).
func buildInfo(version string) BuildInfo {
	bi := BuildInfo{Version: version, Revision: "unknown", BuildDate: "unknown", GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				bi.Revision = s.Value
			case "vcs.time":
				bi.BuildDate = s.Value
			case "vcs.modified":
				bi.Modified = s.Value == "true"
			}
		}
	}
	return bi
}

// ReadBuildInfo returns the running build's version (as set with -ldflags), VCS
// revision and time, and Go version; revision and date given here win over the VCS
// stamp when not empty.
func ReadBuildInfo(version, revision, date string) BuildInfo {
	bi := buildInfo(version)
	if revision != "" {
		bi.Revision = revision
	}
	if date != "" {
		bi.BuildDate = date
	}
	return bi
}

// deferredRegisterer keeps collectors until enable registers them, once.
type deferredRegisterer struct {
	target prometheus.Registerer

	mu      sync.Mutex
	pending []prometheus.Collector
	enabled bool
}

func (d *deferredRegisterer) Register(c prometheus.Collector) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.enabled {
		return d.target.Register(c)
	}
	d.pending = append(d.pending, c)
	return nil
}

func (d *deferredRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

func (d *deferredRegisterer) Unregister(c prometheus.Collector) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.target.Unregister(c)
}

// enable registers the kept collectors; later calls do nothing.
func (d *deferredRegisterer) enable() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.enabled {
		return
	}
	d.enabled = true
	for _, c := range d.pending {
		d.target.MustRegister(c)
	}
	d.pending = nil
}
