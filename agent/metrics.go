package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/outrider-dev/outrider/agent/tail"
	"github.com/outrider-dev/outrider/exporters/queue"
)

// metrics holds every component's metrics. It is created once per process and shared
// by every graph, so a config reload does not register anything twice.
type metrics struct {
	registry *prometheus.Registry
	tail     *tail.Metrics
	queue    *queue.Metrics
	reloads  *prometheus.CounterVec
	ready    prometheus.Gauge
}

func newMetrics(version string) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &metrics{
		registry: reg,
		tail:     tail.NewMetrics(reg),
		queue:    queue.NewMetrics(reg),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_config_reloads_total",
			Help: "Configuration reloads by result (success, rejected).",
		}, []string{"result"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrider_ready",
			Help: "1 when the agent is ready (pipeline running).",
		}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "outrider_build_info",
		Help:        "Always 1; the version label says which build is running.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	reg.MustRegister(m.reloads, m.ready, info)
	return m
}
