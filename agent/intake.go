package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/errorevents"
	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/receivers/diskqueue"
	"github.com/outrider-dev/outrider/receivers/otlpreceiver"
	"github.com/outrider-dev/outrider/receivers/sentryreceiver"
)

// intake is where pushed telemetry comes in: the OTLP receiver and the durable queues
// it stores requests in (one per signal, under data_dir/queue). It outlives pipeline
// graphs: a reload that does not change it keeps the listeners open and the queues in
// place, and each graph's pumps read the queues into its exporters.
type intake struct {
	cfg    *config.Config
	traces *diskqueue.Queue // nil without a trace exporter
	logs   *diskqueue.Queue // nil without a log exporter
	// metrics is nil without a metrics exporter.
	metrics *diskqueue.Queue
	errors  *diskqueue.Queue // nil without error events (config.ErrorEventsOn)
	recv    *otlpreceiver.Receiver
	sentry  *sentryreceiver.Receiver
	// events builds error events (from logs, spans and SDKs); nil without error
	// events.
	events *errorevents.Builder
}

// errorTarget returns where error events go now; a nil Builder when nowhere.
func (in *intake) errorTarget() (*errorevents.Builder, errorevents.Appender) {
	if in == nil || in.events == nil {
		return nil, nil
	}
	return in.events, fullAppender{in.errors}
}

// wantsIntake reports whether cfg has anything pushed in or makes error events.
func wantsIntake(cfg *config.Config) bool {
	return cfg.Receivers.OTLP != nil || cfg.Receivers.Sentry != nil || cfg.ErrorEventsOn()
}

// openIntake opens the queues and builds the receivers without serving; nil when
// nothing is pushed in and no error events are made. The receivers open their
// listeners with listen.
func openIntake(cfg *config.Config, m *metrics, scrub *redact.Registry, logger *slog.Logger, listen listenFunc) (*intake, error) {
	rc := cfg.Receivers.OTLP
	if !wantsIntake(cfg) {
		return nil, nil
	}
	in := &intake{cfg: cfg}
	open := func(name string) (*diskqueue.Queue, error) {
		q, err := diskqueue.Open(cfg.Queue, diskqueue.Settings{
			Name:    name,
			Dir:     filepath.Join(cfg.DataDir, "queue", name),
			Logger:  logger.With("component", "queue", "queue", name),
			Metrics: m.disk,
		})
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", name, err)
		}
		m.queueCapacity.WithLabelValues(name).Set(float64(cfg.Queue.MaxSize))
		return q, nil
	}
	set := otlpreceiver.Settings{
		Logger:   logger.With("component", "receiver", "receiver", "otlp"),
		Metrics:  m.otlp,
		Redactor: scrub,
		Resource: cfg.Identity.ResourceAttributes(),
		Listen:   listen,
	}
	var err error
	if cfg.ErrorEventsOn() {
		if in.errors, err = open("errors"); err != nil {
			return nil, err
		}
		in.events = errorevents.New(cfg.Errors, cfg.Grafana, errorevents.Settings{
			Resource: cfg.Identity.ResourceAttributes(),
			Redactor: scrub,
			Metrics:  m.errorEvents,
		})
		if c := cfg.Receivers.Sentry; c != nil {
			in.sentry = sentryreceiver.New(*c, sentryreceiver.Settings{
				Logger:  logger.With("component", "receiver", "receiver", "sentry"),
				Metrics: m.sentryIngest,
				Queue:   fullAppender{in.errors},
				Process: in.events.Process,
				Scrub:   in.events.ScrubEnvelope,
				Listen:  listen,
			})
		}
	}
	if rc == nil {
		return in, nil
	}
	if cfg.Exporters.OTLP != nil {
		if in.traces, err = open("traces"); err != nil {
			in.closeQueues()
			return nil, err
		}
		set.Traces = fullAppender{in.traces}
	}
	if cfg.Exporters.Loki != nil {
		if in.logs, err = open("logs"); err != nil {
			in.closeQueues()
			return nil, err
		}
		set.Logs = fullAppender{in.logs}
	}
	if cfg.Exporters.OTLPMetrics != nil {
		if in.metrics, err = open("metrics"); err != nil {
			in.closeQueues()
			return nil, err
		}
		set.MetricData = fullAppender{in.metrics}
	}
	if b, out := in.errorTarget(); b != nil && *cfg.Errors.FromSpans {
		set.Errors = func(ctx context.Context, td ptrace.Traces) {
			for _, ev := range b.FromTraces(td) {
				b.Emit(ctx, out, errorevents.SourceSpan, ev)
			}
		}
	}
	in.recv = otlpreceiver.New(*rc, set)
	return in, nil
}

// fullAppender reports a full disk queue as pipeline.ErrFull, which the receiver
// answers with a retryable refusal.
type fullAppender struct{ q *diskqueue.Queue }

func (a fullAppender) Append(ctx context.Context, entry []byte) error {
	err := a.q.Append(ctx, entry)
	if err != nil && errors.Is(err, diskqueue.ErrFull) && !errors.Is(err, pipeline.ErrFull) {
		return fmt.Errorf("%w: %w", pipeline.ErrFull, err)
	}
	return err
}

func (in *intake) start(ctx context.Context) error {
	if in == nil {
		return nil
	}
	if in.recv != nil {
		if err := in.recv.Start(ctx); err != nil {
			return err
		}
	}
	if in.sentry != nil {
		if err := in.sentry.Start(ctx); err != nil {
			if in.recv != nil {
				_ = in.recv.Shutdown(ctx)
			}
			return err // it names receivers.sentry.listen itself
		}
	}
	return nil
}

// stopReceiving closes the listeners after the requests in progress are answered.
func (in *intake) stopReceiving(ctx context.Context) error {
	if in == nil {
		return nil
	}
	var errs []error
	if in.recv != nil {
		errs = append(errs, in.recv.Shutdown(ctx))
	}
	if in.sentry != nil {
		errs = append(errs, in.sentry.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// closeQueues closes the queues; what was not delivered stays on disk.
func (in *intake) closeQueues() error {
	if in == nil {
		return nil
	}
	var errs []error
	for _, q := range []*diskqueue.Queue{in.traces, in.logs, in.metrics, in.errors} {
		if q != nil {
			errs = append(errs, q.Close())
		}
	}
	return errors.Join(errs...)
}
