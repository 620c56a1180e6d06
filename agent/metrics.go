package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/outrider-dev/outrider/agent/errorevents"
	otlprecv "github.com/outrider-dev/outrider/agent/otlp"
	"github.com/outrider-dev/outrider/agent/redact"
	"github.com/outrider-dev/outrider/agent/sentryingest"
	"github.com/outrider-dev/outrider/agent/tail"
	"github.com/outrider-dev/outrider/exporters/queue"
	"github.com/outrider-dev/outrider/exporters/queue/disk"
	sentryexp "github.com/outrider-dev/outrider/exporters/sentry"
	"github.com/outrider-dev/outrider/secrets"
)

// metrics holds every component's metrics. It is created once per process and shared
// by every graph, so a config reload does not register anything twice.
type metrics struct {
	registry     *prometheus.Registry
	tail         *tail.Metrics
	queue        *queue.Metrics
	secrets      *secrets.Metrics
	redact       *redact.Metrics
	reloads      *prometheus.CounterVec
	auditDropped prometheus.Counter
	otlp         *otlprecv.Metrics
	disk         *disk.Metrics
	badEntries   prometheus.Counter
	errorEvents  *errorevents.Metrics
	sentryIngest *sentryingest.Metrics
	sentryExp    *sentryexp.Metrics
}

func newMetrics(version string) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &metrics{
		registry:     reg,
		tail:         tail.NewMetrics(reg),
		queue:        queue.NewMetrics(reg),
		secrets:      secrets.NewMetrics(reg),
		redact:       redact.NewMetrics(reg),
		otlp:         otlprecv.NewMetrics(reg),
		disk:         disk.NewMetrics(reg),
		errorEvents:  errorevents.NewMetrics(reg),
		sentryIngest: sentryingest.NewMetrics(reg),
		sentryExp:    sentryexp.NewMetrics(reg),
		badEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrider_queue_undecodable_entries_total",
			Help: "Durable queue entries dropped because they could not be decoded (written by another version).",
		}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrider_audit_events_dropped_total",
			Help: "Audit events dropped because the audit buffer was full while the log exporter was unavailable.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_config_reloads_total",
			Help: "Configuration reloads by result (success, rejected).",
		}, []string{"result"}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "outrider_build_info",
		Help:        "Always 1; the version label says which build is running.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	reg.MustRegister(m.reloads, m.auditDropped, m.badEntries, info)
	return m
}
