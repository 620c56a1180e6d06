package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/errorevents"
	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/sources/tail"
)

// DryRunRecord is what the agent would ship to Loki for one record, and the error
// event it would send for it.
type DryRunRecord struct {
	// Labels are the Loki stream labels as sent.
	Labels string `json:"labels"`
	// Metadata is the structured metadata as sent; empty when it is not sent
	// (exporters.loki.structured_metadata off).
	Metadata []DryRunLabel `json:"structured_metadata,omitempty"`
	// Level is the record's level ("" when unknown).
	Level string `json:"level"`
	// Time is the record's time: the time parsed from the line, else when it was read.
	Time time.Time `json:"time"`
	// Line is the line as sent; the lines of a joined record are separated by '\n'.
	Line string `json:"line"`
	// Event is the error event sent for the record; nil when none would be.
	Event *DryRunEvent `json:"error_event,omitempty"`
}

// DryRunLabel is one name and value of structured metadata.
type DryRunLabel struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DryRunEvent is an error event the agent would send to Sentry.
type DryRunEvent struct {
	ID       string `json:"event_id"`
	Level    string `json:"level"`
	Platform string `json:"platform"`
	// Type, Value and Frames are those of the main exception (Sentry's last).
	Type   string `json:"type"`
	Value  string `json:"value"`
	Frames int    `json:"frames"`
	// Exceptions counts the exceptions of the chain (causes, nested ones).
	Exceptions int `json:"exceptions"`
}

// DryRunSettings say which source a dry run reads as.
type DryRunSettings struct {
	// Source is the name of the logs.sources entry the input is read as; "" picks the
	// only one.
	Source string
	// Logger receives the components' logs; nil discards them.
	Logger *slog.Logger
}

// ErrDryRunConfig marks a dry run refused for its configuration (no such source, no
// Loki exporter).
var ErrDryRunConfig = errors.New("configuration")

// StdinName stands for the input of a dry run in the filename metadata.
const StdinName = "(stdin)"

// dryRunDrain bounds how long a dry run waits for the chain to take its input.
const dryRunDrain = time.Minute

// DryRun reads in as if it were a file of a configured source, through the same
// file source (reader, joiner, parser), redaction, error-event derivation and Loki
// exporter encoding as the running agent, and calls emit for every record, in order.
// Nothing is sent and no backend is contacted: the events are built and decoded, not
// queued. No secret values are known (the agent learns them from Vault), so nothing
// is redacted. A last line without a newline counts as complete.
func DryRun(ctx context.Context, cfg *config.Config, in io.Reader, set DryRunSettings, emit func(DryRunRecord)) error {
	sc, err := dryRunSource(cfg, set.Source)
	if err != nil {
		return err
	}
	if cfg.Exporters.Loki == nil {
		return fmt.Errorf("%w: exporters.loki is not configured: a dry run shows what would be sent to Loki", ErrDryRunConfig)
	}
	logger := set.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "outrider-logs-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "input.log")
	if err := copyInput(path, in); err != nil {
		return err
	}

	exp, err := lokiExporter(*cfg.Exporters.Loki, logger, nil, nil)
	if err != nil {
		return err
	}
	scrub := redact.NewRegistry(nil)
	events := &eventCapture{byID: map[string]*DryRunEvent{}}
	var errs func() (*errorevents.Builder, errorevents.Appender)
	if cfg.ErrorEventsOn() {
		b := errorevents.New(cfg.Errors, cfg.Grafana, errorevents.Settings{
			Resource: cfg.Identity.ResourceAttributes(),
			Redactor: scrub,
		})
		errs = func() (*errorevents.Builder, errorevents.Appender) { return b, events }
	}
	var mu sync.Mutex
	out := &dryRunSink{emit: func(r *pipeline.Record) {
		e := exp.Preview(*r)
		rec := DryRunRecord{Labels: e.Labels, Level: string(r.Level), Time: r.Time.UTC(), Line: e.Line}
		for _, m := range e.Metadata {
			if m.Name == "filename" && m.Value == path {
				m.Value = StdinName
			}
			rec.Metadata = append(rec.Metadata, DryRunLabel{Name: m.Name, Value: m.Value})
		}
		for _, m := range r.Metadata {
			if m.Name == errorevents.MetadataEventID {
				rec.Event = events.get(m.Value)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		emit(rec)
	}}

	sc.Path = path
	sc.Exclude = nil
	sc.StartAt = tail.StartAtBeginning
	fs := fileSourceSettings(cfg, sc.Name, logChain(cfg, out, scrub, errs), logger)
	fs.DrainTimeout = dryRunDrain
	src, err := tail.New(sc, fs)
	if err != nil {
		return fmt.Errorf("logs.sources %s: %w", sc.Name, err)
	}
	// A source told to stop reads every file to its end, hands over what its joiner
	// holds and waits for the acknowledgements: exactly a run over the whole input.
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := src.Run(rctx); err != nil {
		return err
	}
	return ctx.Err()
}

// dryRunSource returns the configuration of the source a dry run reads as.
func dryRunSource(cfg *config.Config, name string) (tail.Config, error) {
	var names []string
	for _, s := range cfg.Logs.Sources {
		if s.Name == name || (name == "" && len(cfg.Logs.Sources) == 1) {
			return s.Config, nil
		}
		names = append(names, s.Name)
	}
	switch {
	case len(names) == 0:
		return tail.Config{}, fmt.Errorf("%w: logs.sources is empty: configure the source whose lines to test", ErrDryRunConfig)
	case name == "":
		return tail.Config{}, fmt.Errorf("%w: there are %d log sources (%s): choose one with --source", ErrDryRunConfig, len(names), strings.Join(names, ", "))
	}
	return tail.Config{}, fmt.Errorf("%w: no log source named %q; the configured ones are %s", ErrDryRunConfig, name, strings.Join(names, ", "))
}

// copyInput writes in to path, ending it with a newline.
func copyInput(path string, in io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, in)
	if err == nil && n > 0 {
		var last [1]byte
		if _, rerr := f.ReadAt(last[:], n-1); rerr != nil || last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("read the input: %w", err)
	}
	return nil
}

// dryRunSink is the end of a dry run's chain, where the Loki exporter would be.
type dryRunSink struct {
	emit func(*pipeline.Record)
}

func (s *dryRunSink) Export(_ context.Context, b pipeline.Batch) error {
	for i := range b.Records {
		s.emit(&b.Records[i])
	}
	b.Ack(nil)
	return nil
}

// eventCapture is the errors queue of a dry run: it decodes the events instead of
// storing them.
type eventCapture struct {
	mu   sync.Mutex
	byID map[string]*DryRunEvent
}

func (c *eventCapture) Append(_ context.Context, entry []byte) error {
	env, err := sentryenv.Parse(entry, sentryenv.Limits{})
	if err != nil {
		return err
	}
	for _, it := range env.Items {
		if it.Type != "event" {
			continue
		}
		var ev struct {
			EventID   string          `json:"event_id"`
			Level     string          `json:"level"`
			Platform  string          `json:"platform"`
			Exception json.RawMessage `json:"exception"`
		}
		if err := json.Unmarshal(it.Payload, &ev); err != nil {
			return fmt.Errorf("decode the event: %w", err)
		}
		excs, err := eventExceptions(ev.Exception)
		if err != nil {
			return err
		}
		d := &DryRunEvent{ID: ev.EventID, Level: ev.Level, Platform: ev.Platform, Exceptions: len(excs)}
		if n := len(excs); n > 0 {
			last := excs[n-1]
			d.Type, d.Value = last.Type, last.Value
			if last.Stacktrace != nil {
				d.Frames = len(last.Stacktrace.Frames)
			}
		}
		c.mu.Lock()
		c.byID[ev.EventID] = d
		c.mu.Unlock()
	}
	return nil
}

// exception is the part of an event's exception that a dry run shows.
type exception struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	Stacktrace *struct {
		Frames []json.RawMessage `json:"frames"`
	} `json:"stacktrace"`
}

// eventExceptions decodes an event's exception: a list (as sentry-go writes it) or
// {"values": [...]} (as the Sentry protocol also allows).
func eventExceptions(raw json.RawMessage) ([]exception, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []exception
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var obj struct {
		Values []exception `json:"values"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decode the event's exception: %w", err)
	}
	return obj.Values, nil
}

func (c *eventCapture) get(id string) *DryRunEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}
