package sentryexporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/memtrim"
	"github.com/outrider-dev/outrider/internal/secretfile"
	"github.com/outrider-dev/outrider/pipeline"
)

// UserAgent is sent as User-Agent and as the sentry_client of X-Sentry-Auth. The
// agent sets it to "outrider/<version>" at start-up.
var UserAgent = "outrider/dev"

// Settings are what an Exporter needs besides its configuration; Name "" means
// "sentry". The record counts of its QueueMetrics are envelopes.
type Settings = exporterhelper.ExporterSettings

// workersPerSlot is how many workers the exporter runs per slot of concurrency: one
// sends, the others can hold envelopes that Sentry rate-limited while they were in
// flight (see limitQueue), so that those never stop the other categories.
const workersPerSlot = 4

// Exporter forwards Sentry envelopes to the project of its DSN, one envelope per
// request, honouring Sentry's rate limits per data category.
//
// It is a pipeline.EnvelopeSink and a pipeline.Component.
type Exporter struct {
	targets  *targets
	limits   *rateLimits
	queue    *limitQueue
	sender   *exporterhelper.Sender[*envelope]
	log      *slog.Logger
	limited  *prometheus.CounterVec // rate-limited seconds by category, exporter label bound
	encoders chan *gzipBuffer       // free list, one per worker
	now      func() time.Time
	// unhook unregisters dropEncoders from memtrim; set by Start.
	unhook func()
}

var (
	_ pipeline.EnvelopeSink = (*Exporter)(nil)
	_ pipeline.Component    = (*Exporter)(nil)
)

// New builds an Exporter from cfg, which gets its defaults applied here. m are the
// process's Sentry metrics (nil: an unregistered set). It does not connect: the first
// envelope does.
func New(cfg Config, set Settings, m *Metrics) (*Exporter, error) {
	cfg.ApplyDefaults()
	if set.Name == "" {
		set.Name = "sentry"
	}
	var p confval.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	raw, field, err := cfg.rawDSN()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	d, err := parseDSN(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	tlsCfg, err := cfg.TLS.LoadFor(d.hostname())
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workers := workersPerSlot * cfg.Concurrency
	e := &Exporter{
		targets: &targets{tls: cfg.TLS, concurrency: cfg.Concurrency},
		limits:  newRateLimits(),
		log:     log.With("exporter", set.Name),
		limited: m.rateLimited.MustCurryWith(prometheus.Labels{"exporter": set.Name}),
		// A free list rather than a sync.Pool: few envelopes are compressed at once,
		// and their buffers should survive garbage collections.
		encoders: make(chan *gzipBuffer, workers),
		now:      time.Now,
	}
	// A limit on every category and on errors (the category of the events outrider
	// makes) exist at 0 from the start, so that the dashboard and alerts see a series
	// before Sentry first limits the agent.
	for _, c := range []string{"all", "error"} {
		e.limited.WithLabelValues(c)
	}
	e.targets.cur.Store(newTarget(raw, d, exporterhelper.NewHTTPClient(tlsCfg, cfg.Concurrency)))
	if cfg.DSNFile != "" {
		e.targets.file = secretfile.New(cfg.DSNFile)
		e.targets.onChange = func(old, cur *target) {
			e.log.Info("the DSN in dsn_file changed; sending to it from now on", "dsn_file", cfg.DSNFile, "was", old.redacted, "now", cur.redacted)
		}
		e.targets.onProblem = func(err error) {
			e.log.Warn("cannot use the DSN in dsn_file; sending with the last good DSN until it is fixed", "error", err)
		}
	}
	e.queue = newLimitQueue(e.limits, cfg.Concurrency)
	qcfg := exporterhelper.Config{
		// One envelope per request: the record limit of 1 cuts each one at once, so
		// max_bytes and max_wait never apply; max_pending_bytes bounds memory.
		Batch:       exporterhelper.BatchConfig{MaxBytes: cfg.MaxPendingBytes, MaxWait: time.Second, MaxPendingBytes: cfg.MaxPendingBytes},
		Retry:       cfg.Retry,
		Concurrency: workers,
		Timeout:     cfg.Timeout,
	}
	e.sender, err = exporterhelper.NewWithQueue(qcfg, set.Sender(), envelopeSize, e.push, e.queue, exporterhelper.WithRecordCount(oneEnvelope, 1))
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Start starts the workers and returns.
func (e *Exporter) Start(ctx context.Context) error {
	e.unhook = memtrim.OnRelease(e.dropEncoders)
	return e.sender.Start(ctx)
}

// Shutdown stops accepting envelopes, sends what it holds until ctx is done (waiting
// out rate limits that pass by then), and closes idle connections. Envelopes not
// delivered by then are not acknowledged, so their source keeps them. Safe without
// Start and more than once.
func (e *Exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	e.targets.cur.Load().client.CloseIdleConnections()
	if e.unhook != nil {
		e.unhook()
	}
	return err
}

// dropEncoders lets go of the idle gzip encoders (about 1 MiB each), which the agent
// returns to the kernel once it is quiet after a burst (memtrim.OnRelease); the next
// envelope makes a new one.
func (e *Exporter) dropEncoders() {
	for {
		select {
		case <-e.encoders:
		default:
			return
		}
	}
}

// ExportEnvelope implements pipeline.EnvelopeSink: it blocks while max_pending_bytes
// are unsent (held back by a rate limit included). On nil the exporter owns env.Data
// and calls env.Ack once: nil when Sentry accepted the envelope, a permanent error
// when it was dropped (rejected by Sentry, or not a valid envelope) — or never, when
// the exporter stops first.
func (e *Exporter) ExportEnvelope(ctx context.Context, env pipeline.Envelope) error {
	item := newEnvelope(env.Data, &e.targets.cur.Load().ids)
	ack := env.Ack
	items := [1]*envelope{item}
	return e.sender.Add(ctx, items[:], func(err error) {
		e.queue.finish(item)
		if ack != nil {
			ack(err)
		}
	})
}

// push sends one envelope; it is the queue's PushFunc. Requests hold one envelope.
func (e *Exporter) push(ctx context.Context, envs []*envelope) error {
	env := envs[0]
	if env.err != nil {
		return env.err
	}
	e.queue.unpark(env)
	now := e.now()
	if until, cat := e.limits.until(env.cats, now); !until.IsZero() {
		// Limited since the queue handed it out (or still, after a 429): wait in the
		// retrier without holding a slot.
		e.queue.park(env)
		return limitedError(env.eventID, cat, until, now)
	}
	resp, err := e.send(ctx, env, now)
	if err != nil {
		return classifyTransport(err, env.eventID)
	}
	defer exporterhelper.CloseBody(resp.Body)
	now = e.now()
	e.record(e.limits.fromResponse(resp.StatusCode, resp.Header, now))
	var body []byte
	cut := false
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		body, cut, _ = exporterhelper.ReadBody(resp.Body, maxResponseBody)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if until, cat := e.limits.until(env.cats, now); !until.IsZero() {
			e.queue.park(env)
			return throttledError(body, cut, env.eventID, cat, until, now)
		}
	}
	return classify(resp.StatusCode, resp.Header, body, cut, env.eventID, now)
}

// send posts the envelope, gzip-compressed, with "sent_at" set to now.
func (e *Exporter) send(ctx context.Context, env *envelope, now time.Time) (*http.Response, error) {
	t := e.targets.get()
	enc := e.getEncoder()
	payload, err := enc.compress(env, now, &t.ids)
	if err != nil {
		e.putEncoder(enc)
		return nil, fmt.Errorf("compress envelope: %w", err)
	}
	rb := exporterhelper.NewRequestBody(payload)
	defer func() {
		// The transport may still read the body after Do returns; reuse the buffer
		// only once it has closed it.
		if rb.Wait() {
			e.putEncoder(enc)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, rb)
	if err != nil {
		rb.Close()
		return nil, err
	}
	req.ContentLength = int64(len(payload))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
	req.Header.Set("Content-Type", "application/x-sentry-envelope")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("X-Sentry-Auth", t.auth)
	return t.client.Do(req)
}

// record counts and logs the rate limits a response started or extended. A line is
// logged only for categories that were not limited before, so a long limit that
// Sentry repeats in every answer is logged once.
func (e *Exporter) record(changed []started) {
	if len(changed) == 0 {
		return
	}
	var fresh []string
	var first started
	for _, s := range changed {
		e.limited.WithLabelValues(metricCategory(s.Category)).Add(s.Seconds)
		if s.New {
			if len(fresh) == 0 {
				first = s
			}
			if !slices.Contains(fresh, s.Category) {
				fresh = append(fresh, s.Category)
			}
		}
	}
	if len(fresh) == 0 {
		return
	}
	e.log.Warn("sentry rate limit: envelopes of these categories wait until it passes",
		"categories", strings.Join(fresh, ","),
		"retry_in", first.Until.Sub(e.now()).Round(time.Second).String(),
		"scope", cutText(first.Scope), "reason", cutText(first.Reason))
}

func (e *Exporter) getEncoder() *gzipBuffer {
	select {
	case enc := <-e.encoders:
		return enc
	default:
		return newGzipBuffer()
	}
}

func (e *Exporter) putEncoder(enc *gzipBuffer) {
	if enc.buf.Cap() > maxPooledBuffer {
		return
	}
	select {
	case e.encoders <- enc:
	default:
	}
}

// maxPooledBuffer keeps an unusually large envelope's buffer out of the free list, so
// one attachment does not pin its memory.
const maxPooledBuffer = 4 << 20

// gzipBuffer is a reusable gzip writer, its output buffer and a scratch buffer for
// the envelope header.
type gzipBuffer struct {
	buf    bytes.Buffer
	header []byte
	zw     *gzip.Writer
}

func newGzipBuffer() *gzipBuffer {
	g := &gzipBuffer{}
	g.zw, _ = gzip.NewWriterLevel(&g.buf, gzip.BestSpeed) // the level is valid
	return g
}

// compress gzips the envelope as sent at now to upstream; the result is valid until the next
// compress.
func (g *gzipBuffer) compress(env *envelope, now time.Time, upstream *upstreamIDs) ([]byte, error) {
	g.buf.Reset()
	g.zw.Reset(&g.buf)
	g.header = env.appendHeader(g.header[:0], now, upstream)
	if _, err := g.zw.Write(g.header); err != nil {
		return nil, err
	}
	if _, err := g.zw.Write(env.items); err != nil {
		return nil, err
	}
	if err := g.zw.Close(); err != nil {
		return nil, err
	}
	return g.buf.Bytes(), nil
}
