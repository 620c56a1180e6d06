package queue

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
