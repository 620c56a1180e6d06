package sentryreceiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/internal/inflight"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// Appender stores accepted envelopes durably: the durable queue. Append returns once
// the entry is stored and does not keep entry afterwards (the receiver reuses it); an
// error wrapping pipeline.ErrFull means no room now (the SDK is told to back off), any
// other error that storing failed.
type Appender interface {
	Append(ctx context.Context, entry []byte) error
}

// ProcessFunc enriches one event (the decoded JSON object of an "event" item, numbers
// as json.Number) in place and reports whether to keep it; false drops it (volume
// control) and the SDK is still answered 200. It is called from concurrent requests.
type ProcessFunc func(event map[string]any) (keep bool)

// Settings are what a Receiver needs besides its configuration.
type Settings struct {
	// Logger receives the receiver's log lines; nil discards.
	Logger *slog.Logger
	// Metrics are shared by the process; nil uses an unregistered set.
	Metrics *Metrics
	// Queue stores accepted envelopes; required.
	Queue Appender
	// Process enriches and admits each event; nil keeps events as they are.
	Process ProcessFunc
	// Scrub removes live secret values from a whole envelope (headers, every item)
	// before it is stored, in place, and returns how many items it dropped; nil
	// stores envelopes as they are. The agent passes errorevents.Builder.ScrubEnvelope.
	Scrub func(*sentryenv.Envelope) (dropped int)
	// RetryAfter is what SDKs are told to wait when the queue is full; default 5s.
	RetryAfter time.Duration
	// Listen opens the listener; nil uses net.Listen. The agent passes one that hands
	// its socket from one configuration generation to the next, so a reload never
	// closes the port. field is the setting's path, for errors.
	Listen func(field, addr string) (net.Listener, error)
}

// Receiver is the local Sentry endpoint. It follows pipeline.Component: Start binds the
// listener and returns; Shutdown stops accepting, waits for requests in progress until
// ctx is done, and is safe without Start and more than once.
type Receiver struct {
	cfg        Config
	key        []byte
	log        *slog.Logger
	m          *Metrics
	queue      Appender
	process    ProcessFunc
	scrub      func(*sentryenv.Envelope) int
	retryAfter time.Duration
	lim        sentryenv.Limits
	inflight   *inflight.Limiter // max_inflight_bytes
	listen     func(field, addr string) (net.Listener, error)

	mu      sync.Mutex
	started bool
	stopped bool
	srv     *http.Server
	addr    net.Addr
	wg      sync.WaitGroup
}

var _ pipeline.Component = (*Receiver)(nil)

// New builds a Receiver; cfg must have its defaults applied.
func New(cfg Config, set Settings) *Receiver {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := set.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	ra := set.RetryAfter
	if ra <= 0 {
		ra = 5 * time.Second
	}
	return &Receiver{
		cfg:        cfg,
		key:        []byte(cfg.PublicKey.Reveal()),
		log:        log,
		m:          m,
		queue:      set.Queue,
		process:    set.Process,
		scrub:      set.Scrub,
		retryAfter: ra,
		listen:     set.Listen,
		lim: sentryenv.Limits{
			MaxEnvelopeBytes: int(cfg.MaxEnvelopeBytes),
			MaxItems:         MaxItems,
			MaxItemBytes:     int(cfg.MaxEnvelopeBytes),
			MaxDepth:         cfg.MaxJSONDepth,
		},
		inflight: inflight.New(int64(cfg.MaxInflightBytes), inflightWait),
	}
}

// Start binds the listener and serves it until Shutdown.
func (r *Receiver) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("sentry ingest: already shut down")
	}
	if r.started {
		return nil
	}
	if r.queue == nil {
		return errors.New("sentry ingest: no queue to store events in; configure exporters.sentry")
	}
	listen := r.listen
	if listen == nil {
		listen = func(_, addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	ln, err := listen("receivers.sentry.listen", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("receivers.sentry.listen: cannot listen on %s: %w; is another agent using the port?", r.cfg.Listen, err)
	}
	r.started = true
	ln = inflight.LimitListener(ln, r.cfg.MaxConnections, r.m.connsRefused.Inc)
	r.srv = r.newHTTPServer()
	r.addr = ln.Addr()
	r.wg.Go(func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("sentry ingest server stopped", "error", err)
		}
	})
	r.log.Info("sentry endpoint listening", "addr", r.addr.String(), "project_id", r.cfg.ProjectID)
	return nil
}

// Addr returns the bound address (nil before Start).
func (r *Receiver) Addr() net.Addr { r.mu.Lock(); defer r.mu.Unlock(); return r.addr }

// Shutdown stops accepting requests and waits for the ones in progress (their events
// are stored or refused) until ctx is done, then closes the remaining connections.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	srv := r.srv
	r.mu.Unlock()
	var err error
	if srv != nil {
		if err = srv.Shutdown(ctx); err != nil {
			srv.Close()
			err = fmt.Errorf("sentry ingest: %w", err)
		}
	}
	r.wg.Wait()
	return err
}
