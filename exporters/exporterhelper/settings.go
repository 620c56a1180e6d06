package exporterhelper

import (
	"errors"
	"log/slog"
)

// ErrClosed is returned by Add after Shutdown (or Close) began.
var ErrClosed = errors.New("exporter is shut down")

// Settings are what a Sender and its layers need besides configuration.
type Settings struct {
	// Name is the exporter's name, used as the exporter label and in log lines.
	Name string
	// Logger receives the one line per dropped request; nil discards.
	Logger *slog.Logger
	// Metrics are shared by all exporters of the process; nil uses an unregistered set.
	Metrics *Metrics
}

func (s Settings) logger() *slog.Logger {
	l := s.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With("exporter", s.Name)
}

// ExporterSettings are what the agent gives every exporter besides its configuration,
// after the Collector's exporter.Settings; each exporter's Settings is this type.
type ExporterSettings struct {
	// Logger receives the exporter's log lines; nil discards.
	Logger *slog.Logger
	// QueueMetrics are the process-wide exporter metrics; nil uses an unregistered set.
	QueueMetrics *Metrics
	// Name is the exporter's name in metrics and logs; "" means the exporter's type
	// ("loki", "otlp").
	Name string
}

// Sender returns the Settings of the exporter's Sender.
func (s ExporterSettings) Sender() Settings {
	return Settings{Name: s.Name, Logger: s.Logger, Metrics: s.QueueMetrics}
}
