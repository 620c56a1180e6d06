package otlpreceiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"

	"github.com/outrider-dev/outrider/internal/inflight"
	"github.com/outrider-dev/outrider/pipeline"
)

// Settings are what a Receiver needs besides its configuration.
type Settings struct {
	// Logger receives the receiver's log lines; nil discards.
	Logger *slog.Logger
	// Metrics are shared by the process; nil uses an unregistered set.
	Metrics *Metrics
	// Traces, Logs and MetricData store accepted requests. A nil Appender refuses its
	// signal with a message saying which exporter to configure.
	Traces, Logs, MetricData Appender
	// Redactor scrubs live secret values before anything is stored; nil scrubs nothing.
	Redactor Redactor
	// Resource are the agent's resource attributes (service.name, k8s.pod.name, ...);
	// Config.Resource.Attributes are added to them and win.
	Resource map[string]string
	// RetryAfter is what clients are told to wait when the queue is full; default 5s.
	RetryAfter time.Duration
	// Errors, when set, is given every stored trace request that holds a span with
	// status ERROR or an exception event (after enrichment and scrubbing), to derive
	// error events from. It must not keep td.
	Errors func(ctx context.Context, td ptrace.Traces)
	// Listen opens the listeners; nil uses net.Listen. The agent passes one that hands
	// its sockets from one configuration generation to the next, so a reload never
	// closes the ports. field is the setting's path, for errors.
	Listen func(field, addr string) (net.Listener, error)
}

// Receiver is the OTLP receiver. It follows pipeline.Component: Start binds the
// listeners and returns; Shutdown stops accepting, waits for requests in progress
// until ctx is done, and is safe without Start and more than once.
type Receiver struct {
	cfg        Config
	log        *slog.Logger
	m          *Metrics
	traces     Appender
	logs       Appender
	metrics    Appender
	scrub      scrubber
	enrich     enricher
	retryAfter time.Duration
	errors     func(context.Context, ptrace.Traces)
	lim        *inflight.Limiter // max_inflight_bytes, both endpoints
	entryExtra int               // what enrichment adds to one resource, and the entry header
	listen     func(field, addr string) (net.Listener, error)

	mu       sync.Mutex
	started  bool
	stopped  bool
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	grpcAddr net.Addr
	httpAddr net.Addr
	wg       sync.WaitGroup
}

var _ pipeline.Component = (*Receiver)(nil)

// New builds a Receiver; cfg must have its defaults applied.
func New(cfg Config, set Settings) *Receiver {
	res := make(map[string]string, len(set.Resource)+len(cfg.Resource.Attributes))
	for k, v := range set.Resource {
		res[k] = v
	}
	for k, v := range cfg.Resource.Attributes {
		res[k] = v
	}
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
		log:        log,
		m:          m,
		traces:     set.Traces,
		logs:       set.Logs,
		metrics:    set.MetricData,
		scrub:      scrubber{set.Redactor},
		enrich:     newEnricher(res, cfg.Resource.Overwrite),
		retryAfter: ra,
		errors:     set.Errors,
		lim:        inflight.New(int64(cfg.MaxInflightBytes), inflightWait),
		entryExtra: entryExtra(res),
		listen:     set.Listen,
	}
}

// Start binds the configured listeners and serves them until Shutdown.
func (r *Receiver) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("otlp receiver: already shut down")
	}
	if r.started {
		return nil
	}
	var gl, hl net.Listener
	var err error
	listen := r.listen
	if listen == nil {
		listen = func(_, addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	if r.cfg.GRPC.Listen != Off {
		if gl, err = listen("receivers.otlp.grpc.listen", r.cfg.GRPC.Listen); err != nil {
			return fmt.Errorf("receivers.otlp.grpc.listen: cannot listen on %s: %w; is another agent or collector using the port?", r.cfg.GRPC.Listen, err)
		}
	}
	if r.cfg.HTTP.Listen != Off {
		if hl, err = listen("receivers.otlp.http.listen", r.cfg.HTTP.Listen); err != nil {
			if gl != nil {
				gl.Close()
			}
			return fmt.Errorf("receivers.otlp.http.listen: cannot listen on %s: %w; is another agent or collector using the port?", r.cfg.HTTP.Listen, err)
		}
	}
	r.started = true
	if gl != nil {
		gl = inflight.LimitListener(gl, r.cfg.MaxConnections, r.m.connsRefused.WithLabelValues("grpc").Inc)
		r.grpcSrv = r.newGRPCServer()
		r.grpcAddr = gl.Addr()
		r.wg.Go(func() {
			if err := r.grpcSrv.Serve(gl); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.log.Error("otlp grpc server stopped", "error", err)
			}
		})
	}
	if hl != nil {
		hl = inflight.LimitListener(hl, r.cfg.MaxConnections, r.m.connsRefused.WithLabelValues("http").Inc)
		r.httpSrv = r.newHTTPServer()
		r.httpAddr = hl.Addr()
		r.wg.Go(func() {
			if err := r.httpSrv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("otlp http server stopped", "error", err)
			}
		})
	}
	r.log.Info("otlp receiver listening", "grpc", addrString(r.grpcAddr), "http", addrString(r.httpAddr),
		"traces", r.traces != nil, "logs", r.logs != nil, "metrics", r.metrics != nil)
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return Off
	}
	return a.String()
}

// GRPCAddr and HTTPAddr return the bound addresses (nil before Start or when off).
func (r *Receiver) GRPCAddr() net.Addr { r.mu.Lock(); defer r.mu.Unlock(); return r.grpcAddr }

// HTTPAddr returns the bound HTTP address; see GRPCAddr.
func (r *Receiver) HTTPAddr() net.Addr { r.mu.Lock(); defer r.mu.Unlock(); return r.httpAddr }

// Shutdown stops accepting requests and waits for the ones in progress (their data is
// stored or refused) until ctx is done, then closes the remaining connections.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	gs, hs := r.grpcSrv, r.httpSrv
	r.mu.Unlock()
	var errs []error
	if hs != nil {
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
			errs = append(errs, fmt.Errorf("otlp http: %w", err))
		}
	}
	if gs != nil {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			gs.Stop()
			<-done
			errs = append(errs, fmt.Errorf("otlp grpc: %w", ctx.Err()))
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// outcome is what happened to one export request, for the response.
type outcome struct {
	rejected int    // items refused in a partial success
	message  string // why, for the partial success
	err      error  // the request was not stored: errFull, errStore, errNoExporter
}

var (
	errNoTraces = errors.New("this outrider has no trace exporter: configure exporters.otlp (e.g. Tempo's OTLP endpoint) to accept traces")
	errNoLogs   = errors.New("this outrider has no log exporter: configure exporters.loki to accept logs")
	// errNoMetrics is also the injector's cue: a pod without a metrics destination
	// gets OTEL_METRICS_EXPORTER=none, so an SDK meets it only when configured by hand.
	errNoMetrics = errors.New("this outrider has no metrics exporter: configure exporters.otlp_metrics (e.g. Prometheus' OTLP endpoint) to accept metrics, or set OTEL_METRICS_EXPORTER=none in the application")
)

// appender returns where requests of kind k are stored, and the error that refuses
// them when nowhere.
func (r *Receiver) appender(k Kind) (Appender, error) {
	switch k {
	case KindTraces:
		return r.traces, errNoTraces
	case KindLogs:
		return r.logs, errNoLogs
	}
	return r.metrics, errNoMetrics
}

// noExporter reports an error that refuses a signal without an exporter.
func noExporter(err error) bool {
	return errors.Is(err, errNoTraces) || errors.Is(err, errNoLogs) || errors.Is(err, errNoMetrics)
}

// consumeTraces checks, enriches, scrubs and stores one request.
func (r *Receiver) consumeTraces(ctx context.Context, td ptrace.Traces, transport string) outcome {
	if r.traces == nil {
		r.m.requests.WithLabelValues("traces", transport, resultInvalid).Inc()
		return outcome{err: errNoTraces}
	}
	var o outcome
	if n := dropInvalidSpans(td); n > 0 {
		o.rejected, o.message = n, invalidSpansMessage(n)
		r.m.items.WithLabelValues("traces", "rejected").Add(float64(n))
	}
	count := td.SpanCount()
	if count > 0 {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			r.enrich.apply(rss.At(i).Resource())
		}
		if r.scrub.active() {
			r.scrub.traces(td)
		}
		var m ptrace.ProtoMarshaler
		data, err := m.MarshalTraces(td)
		if err == nil {
			err = r.store(ctx, r.traces, KindTraces, count, data)
		}
		if err != nil {
			o.err = err
			r.m.items.WithLabelValues("traces", "refused").Add(float64(count))
			r.m.requests.WithLabelValues("traces", transport, resultOf(err)).Inc()
			return o
		}
		r.m.items.WithLabelValues("traces", "accepted").Add(float64(count))
		if r.errors != nil {
			r.errors(ctx, td)
		}
	}
	res := resultOK
	if o.rejected > 0 {
		res = resultPartial
	}
	r.m.requests.WithLabelValues("traces", transport, res).Inc()
	return o
}

// consumeTracesProto stores a protobuf request through the wire fast path; handled
// false means the caller decodes it and calls consumeTraces instead.
func (r *Receiver) consumeTracesProto(ctx context.Context, raw []byte, transport string) (o outcome, handled bool) {
	if r.traces == nil {
		return o, false
	}
	bp := entryPool.Get().(*[]byte)
	// Sized once: growing by appends would allocate about twice the request.
	entry, count, ok := r.fastTraces(sized(*bp, len(raw)+r.entryExtra), raw)
	if !ok {
		entryPool.Put(bp)
		return o, false
	}
	err := r.traces.Append(ctx, entry)
	if cap(entry) <= maxPooledEntry {
		*bp = entry[:0]
		entryPool.Put(bp)
	}
	if err != nil {
		r.logStoreError(KindTraces, err)
		r.m.items.WithLabelValues("traces", "refused").Add(float64(count))
		r.m.requests.WithLabelValues("traces", transport, resultOf(err)).Inc()
		return outcome{err: err}, true
	}
	r.m.items.WithLabelValues("traces", "accepted").Add(float64(count))
	r.m.requests.WithLabelValues("traces", transport, resultOK).Inc()
	return o, true
}

func (r *Receiver) logStoreError(k Kind, err error) {
	if !errors.Is(err, pipeline.ErrFull) {
		r.log.Warn("cannot store an OTLP request in the queue; the client was told to retry", "signal", k.String(), "error", err)
	}
}

// consumeLogs checks, enriches, scrubs and stores one request.
func (r *Receiver) consumeLogs(ctx context.Context, ld plog.Logs, transport string) outcome {
	if r.logs == nil {
		r.m.requests.WithLabelValues("logs", transport, resultInvalid).Inc()
		return outcome{err: errNoLogs}
	}
	count := ld.LogRecordCount()
	if count > 0 {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			r.enrich.apply(rls.At(i).Resource())
		}
		if r.scrub.active() {
			r.scrub.logs(ld)
		}
		var m plog.ProtoMarshaler
		data, err := m.MarshalLogs(ld)
		if err == nil {
			err = r.store(ctx, r.logs, KindLogs, count, data)
		}
		if err != nil {
			r.m.items.WithLabelValues("logs", "refused").Add(float64(count))
			r.m.requests.WithLabelValues("logs", transport, resultOf(err)).Inc()
			return outcome{err: err}
		}
		r.m.items.WithLabelValues("logs", "accepted").Add(float64(count))
	}
	r.m.requests.WithLabelValues("logs", transport, resultOK).Inc()
	return outcome{}
}

func (r *Receiver) store(ctx context.Context, q Appender, k Kind, count int, data []byte) error {
	bp := entryPool.Get().(*[]byte)
	entry := appendEntry(sized(*bp, len(data)+16), k, count, data)
	err := q.Append(ctx, entry)
	if cap(entry) <= maxPooledEntry {
		*bp = entry[:0]
		entryPool.Put(bp)
	}
	if err != nil {
		r.logStoreError(k, err)
	}
	return err
}

// entryExtra is what a queue entry adds to a request with one resource: its header
// and the enrichment's attributes.
func entryExtra(res map[string]string) int {
	n := 16
	for k, v := range res {
		n += len(k) + len(v) + 16
	}
	return n
}

// sized returns b emptied, or a new buffer when b cannot hold n bytes.
func sized(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, 0, n)
	}
	return b[:0]
}

func resultOf(err error) string {
	switch {
	case errors.Is(err, pipeline.ErrFull):
		return resultFull
	case noExporter(err):
		return resultInvalid
	}
	return resultError
}
