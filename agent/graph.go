package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/exporters/otlpexporter"
	"github.com/outrider-dev/outrider/exporters/sentryexporter"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/errorevents"
	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/sources/tail"
)

// graph is one running pipeline built from one configuration: exporters and the sources
// that feed them. A config reload builds a new graph and replaces the old one; a
// running graph is never mutated.
type graph struct {
	cfg       *config.Config
	exporters []pipeline.Component
	sources   []namedSource
	// logSink is where log records go: the log exporter behind the redaction of live
	// secret values; nil when no log exporter is configured.
	logSink pipeline.Sink
	// traceSink is the trace exporter; nil when none is configured.
	traceSink pipeline.TraceSink
	// metricSink is the metrics exporter; nil when none is configured.
	metricSink pipeline.MetricSink
	// envelopeSink is where the errors queue's envelopes go: the Sentry exporter,
	// behind the Loki summary lines with errors.to_loki; nil when neither is
	// configured.
	envelopeSink pipeline.EnvelopeSink
	m            *metrics
	logger       *slog.Logger

	cancel context.CancelFunc
	done   chan struct{} // closed when every source has returned
	err    error         // the first source error, set before done is closed
}

type namedSource struct {
	name string
	src  pipeline.Source
}

// buildGraph creates every component for cfg without starting anything, so that a
// configuration that cannot be built is rejected while the old graph keeps running.
//
// errs returns where error events derived from log records go now (see
// intake.errorTarget); it is called for every batch, so it follows reloads.
func buildGraph(cfg *config.Config, m *metrics, scrub *redact.Registry, logger *slog.Logger, errs func() (*errorevents.Builder, errorevents.Appender)) (*graph, error) {
	g := &graph{cfg: cfg, m: m, logger: logger}
	var logSink pipeline.Sink
	if sc := cfg.Exporters.Sentry; sc != nil {
		exp, err := sentryexporter.New(*sc, sentryexporter.Settings{
			Logger:       logger.With("component", "exporter"),
			QueueMetrics: m.queue,
			Name:         "sentry",
		}, m.sentryExp)
		if err != nil {
			return nil, fmt.Errorf("exporters.sentry: %w", err)
		}
		g.exporters = append(g.exporters, exp)
		g.envelopeSink = exp
	}
	if lc := cfg.Exporters.Loki; lc != nil {
		exp, err := lokiExporter(*lc, logger, m.queue, m.lokiExp)
		if err != nil {
			return nil, err
		}
		g.exporters = append(g.exporters, exp)
		logSink = logChain(cfg, exp, scrub, errs)
		g.logSink = logSink
		if cfg.Errors.ToLoki {
			// Summary lines skip the log-derived events' sink: they are events already.
			g.envelopeSink = errorevents.NewLokiSink(redact.NewSink(exp, scrub), g.envelopeSink, cfg.Identity.Labels())
		}
	}
	if oc := cfg.Exporters.OTLP; oc != nil {
		exp, err := otlpexporter.New(*oc, otlpexporter.Settings{
			Logger:       logger.With("component", "exporter"),
			QueueMetrics: m.queue,
			Name:         "otlp",
		})
		if err != nil {
			return nil, fmt.Errorf("exporters.otlp: %w", err)
		}
		g.exporters = append(g.exporters, exp)
		g.traceSink = exp
	}
	if mc := cfg.Exporters.OTLPMetrics; mc != nil {
		exp, err := otlpexporter.NewMetrics(*mc, otlpexporter.Settings{
			Logger:       logger.With("component", "exporter"),
			QueueMetrics: m.queue,
			Name:         "otlp_metrics",
		})
		if err != nil {
			return nil, fmt.Errorf("exporters.otlp_metrics: %w", err)
		}
		g.exporters = append(g.exporters, exp)
		g.metricSink = exp
	}
	for i, sc := range cfg.Logs.Sources {
		if logSink == nil {
			return nil, fmt.Errorf("logs.sources[%d]: no log exporter configured", i)
		}
		set := fileSourceSettings(cfg, sc.Name, logSink, logger)
		set.Metrics = m.tail
		set.PositionsFile = filepath.Join(cfg.DataDir, "positions-"+sc.Name+".json")
		src, err := tail.New(sc.Config, set)
		if err != nil {
			return nil, fmt.Errorf("logs.sources[%d] (%s): %w", i, sc.Name, err)
		}
		g.sources = append(g.sources, namedSource{name: sc.Name, src: src})
	}
	return g, nil
}

// lokiExporter builds the log exporter; nil metrics are unregistered ones.
func lokiExporter(lc lokiexporter.Config, logger *slog.Logger, queue *exporterhelper.Metrics, lm *lokiexporter.Metrics) (*lokiexporter.Exporter, error) {
	exp, err := lokiexporter.New(lc, lokiexporter.Settings{
		Logger:       logger.With("component", "exporter"),
		QueueMetrics: queue,
		Name:         "loki",
	}, lokiexporter.WithMetrics(lm))
	if err != nil {
		return nil, fmt.Errorf("exporters.loki: %w", err)
	}
	return exp, nil
}

// logChain is the sink that log records from every source go through before the log
// exporter exp: the redaction of live secret values, then, with error events on (a
// Sentry exporter or errors.to_loki) and errors.from_logs, the error events derived from the scrubbed records (errs says where
// they go; see intake.errorTarget).
func logChain(cfg *config.Config, exp pipeline.Sink, scrub *redact.Registry, errs func() (*errorevents.Builder, errorevents.Appender)) pipeline.Sink {
	next := exp
	if cfg.ErrorEventsOn() && *cfg.Errors.FromLogs && errs != nil {
		next = errorevents.NewLogSink(exp, errs)
	}
	return redact.NewSink(next, scrub)
}

// fileSourceSettings are the settings of the file source name that feeds sink, without
// metrics or saved positions.
func fileSourceSettings(cfg *config.Config, name string, sink pipeline.Sink, logger *slog.Logger) tail.Settings {
	return tail.Settings{
		Logger:       logger.With("component", "tail", "source", name),
		Sink:         sink,
		StreamLabels: cfg.Identity.Labels(),
		DrainTimeout: cfg.Server.ShutdownTimeout * 3 / 4,
	}
}

// start starts exporters first, then sources, among them a pump for each queue of in
// (which may be nil). If an exporter fails to start, the ones already started are shut
// down.
func (g *graph) start(ctx context.Context, logger *slog.Logger, in *intake) error {
	if err := os.MkdirAll(g.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: cannot create %s: %w", g.cfg.DataDir, err)
	}
	for i, e := range g.exporters {
		if err := e.Start(ctx); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), g.cfg.Server.ShutdownTimeout)
			for _, started := range g.exporters[:i] {
				_ = started.Shutdown(sctx)
			}
			cancel()
			return fmt.Errorf("start exporter: %w", err)
		}
	}
	if in != nil {
		bad := g.m.badEntries.Inc
		if in.traces != nil && g.traceSink != nil {
			g.sources = append(g.sources, namedSource{name: "otlp-traces", src: &pump{
				name: "traces", q: in.traces, traces: g.traceSink, bad: bad,
				log: logger.With("component", "pump", "queue", "traces")}})
		}
		if in.metrics != nil && g.metricSink != nil {
			g.sources = append(g.sources, namedSource{name: "otlp-metrics", src: &pump{
				name: "metrics", q: in.metrics, metrics: g.metricSink, bad: bad,
				log: logger.With("component", "pump", "queue", "metrics")}})
		}
		if in.errors != nil && g.envelopeSink != nil {
			g.sources = append(g.sources, namedSource{name: "errors", src: &pump{
				name: "errors", q: in.errors, envelopes: g.envelopeSink, bad: bad,
				log: logger.With("component", "pump", "queue", "errors")}})
		}
		if in.logs != nil && g.logSink != nil {
			g.sources = append(g.sources, namedSource{name: "otlp-logs", src: &pump{
				name: "logs", q: in.logs, logs: g.logSink, bad: bad,
				log: logger.With("component", "pump", "queue", "logs")}})
		}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel = cancel
	g.done = make(chan struct{})
	eg, ectx := errgroup.WithContext(sctx)
	for _, s := range g.sources {
		eg.Go(func() error {
			if err := s.src.Run(ectx); err != nil {
				logger.Error("source stopped with an error", "source", s.name, "error", err)
				return fmt.Errorf("source %s: %w", s.name, err)
			}
			return nil
		})
	}
	go func() { g.err = eg.Wait(); close(g.done) }()
	return nil
}

// stop stops sources first (they stop reading and wait for their acknowledgements),
// then shuts the exporters down, all within the configured shutdown timeout.
func (g *graph) stop(logger *slog.Logger) error {
	deadline := time.Now().Add(g.cfg.Server.ShutdownTimeout)
	var errs []error
	if g.cancel != nil {
		g.cancel()
		<-g.done
		if g.err != nil {
			errs = append(errs, g.err)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer cancel()
	for i := len(g.exporters) - 1; i >= 0; i-- {
		if err := g.exporters[i].Shutdown(ctx); err != nil {
			logger.Warn("exporter shutdown did not complete", "error", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sourcesDone is closed when every source has returned; sourceErr then says why.
func (g *graph) sourcesDone() <-chan struct{} { return g.done }

// sourceErr is the first error a source returned; valid once sourcesDone is closed.
func (g *graph) sourceErr() error { return g.err }
