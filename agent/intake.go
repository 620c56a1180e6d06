package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"

	otlprecv "github.com/outrider-dev/outrider/agent/otlp"
	"github.com/outrider-dev/outrider/agent/pipeline"
	"github.com/outrider-dev/outrider/agent/redact"
	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/exporters/queue/disk"
)

// intake is where pushed telemetry comes in: the OTLP receiver and the durable queues
// it stores requests in (one per signal, under data_dir/queue). It outlives pipeline
// graphs: a reload that does not change it keeps the listeners open and the queues in
// place, and each graph's pumps read the queues into its exporters.
type intake struct {
	cfg    *config.Config
	traces *disk.Queue // nil without a trace exporter
	logs   *disk.Queue // nil without a log exporter
	recv   *otlprecv.Receiver
}

// intakeChanged reports whether the intake built from b differs from a's.
func intakeChanged(a, b *config.Config) bool {
	return !reflect.DeepEqual(a.Receivers, b.Receivers) || !reflect.DeepEqual(a.Queue, b.Queue) ||
		a.DataDir != b.DataDir || a.Identity != b.Identity ||
		(a.Exporters.OTLP == nil) != (b.Exporters.OTLP == nil) || (a.Exporters.Loki == nil) != (b.Exporters.Loki == nil)
}

// openIntake opens the queues and builds the receiver without serving; nil when no
// receiver is configured.
func openIntake(cfg *config.Config, m *metrics, scrub *redact.Registry, logger *slog.Logger) (*intake, error) {
	rc := cfg.Receivers.OTLP
	if rc == nil {
		return nil, nil
	}
	in := &intake{cfg: cfg}
	open := func(name string) (*disk.Queue, error) {
		q, err := disk.Open(cfg.Queue, disk.Settings{
			Name:    name,
			Dir:     filepath.Join(cfg.DataDir, "queue", name),
			Logger:  logger.With("component", "queue", "queue", name),
			Metrics: m.disk,
		})
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", name, err)
		}
		return q, nil
	}
	set := otlprecv.Settings{
		Logger:   logger.With("component", "receiver", "receiver", "otlp"),
		Metrics:  m.otlp,
		Redactor: scrub,
		Resource: cfg.Identity.ResourceAttributes(),
	}
	var err error
	if cfg.Exporters.OTLP != nil {
		if in.traces, err = open("traces"); err != nil {
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
	in.recv = otlprecv.New(*rc, set)
	return in, nil
}

// fullAppender reports a full disk queue as pipeline.ErrFull, which the receiver
// answers with a retryable refusal.
type fullAppender struct{ q *disk.Queue }

func (a fullAppender) Append(ctx context.Context, entry []byte) error {
	err := a.q.Append(ctx, entry)
	if err != nil && errors.Is(err, disk.ErrFull) && !errors.Is(err, pipeline.ErrFull) {
		return fmt.Errorf("%w: %w", pipeline.ErrFull, err)
	}
	return err
}

func (in *intake) start(ctx context.Context) error {
	if in == nil {
		return nil
	}
	return in.recv.Start(ctx)
}

// stopReceiving closes the listeners after the requests in progress are answered.
func (in *intake) stopReceiving(ctx context.Context) error {
	if in == nil {
		return nil
	}
	return in.recv.Shutdown(ctx)
}

// closeQueues closes the queues; what was not delivered stays on disk.
func (in *intake) closeQueues() error {
	if in == nil {
		return nil
	}
	var errs []error
	for _, q := range []*disk.Queue{in.traces, in.logs} {
		if q != nil {
			errs = append(errs, q.Close())
		}
	}
	return errors.Join(errs...)
}
