package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/getsentry/sentry-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// serveConfig is what `demo-app serve` takes, each flag defaulting to an environment
// variable so that a compose file or a pod spec sets it.
type serveConfig struct {
	listen     string
	logFile    string
	pidFile    string
	dbCreds    string
	dbAddr     string
	dbName     string
	apiKeyFile string
	sentryDSN  string
	slowEvery  int
	waitFor    time.Duration
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func serve(args []string) error {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", env("DEMO_LISTEN", "127.0.0.1:8080"), "HTTP address (DEMO_LISTEN)")
	fs.StringVar(&c.logFile, "log-file", env("DEMO_LOG_FILE", ""), "JSON log file shared with the sidecar, besides stdout (DEMO_LOG_FILE)")
	fs.StringVar(&c.pidFile, "pid-file", env("DEMO_PID_FILE", ""), "where to write the pid, for a sidecar that signals by pid file (DEMO_PID_FILE)")
	fs.StringVar(&c.dbCreds, "db-credentials", env("DB_CREDENTIALS_FILE", ""), "rendered file with DB_USER= and DB_PASSWORD= lines; empty runs without a database (DB_CREDENTIALS_FILE)")
	fs.StringVar(&c.dbAddr, "db-addr", env("DB_ADDR", "127.0.0.1:5432"), "PostgreSQL host:port (DB_ADDR)")
	fs.StringVar(&c.dbName, "db-name", env("DB_NAME", "postgres"), "database name (DB_NAME)")
	fs.StringVar(&c.apiKeyFile, "api-key-file", env("API_KEY_FILE", ""), "rendered env file with API_KEY= or api_key= (API_KEY_FILE); the app logs it once per load, as careless apps do, to show scrubbing")
	fs.StringVar(&c.sentryDSN, "sentry-dsn", env("SENTRY_DSN", ""), "Sentry DSN: the sidecar's receiver (SENTRY_DSN)")
	fs.IntVar(&c.slowEvery, "slow-every", 10, "one request in N is slow")
	fs.DurationVar(&c.waitFor, "wait-for-secrets", envDuration("DEMO_WAIT_FOR_SECRETS", 0), "wait this long for the rendered files to appear, when the sidecar starts beside the app rather than before it (DEMO_WAIT_FOR_SECRETS)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := waitForFiles(ctx, c.waitFor, c.dbCreds, c.apiKeyFile); err != nil {
		return err
	}

	var out io.Writer = os.Stdout
	if c.logFile != "" {
		f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open the log file: %w", err)
		}
		defer f.Close()
		out = io.MultiWriter(f, os.Stdout)
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))

	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", env("OTEL_SERVICE_NAME", "demo-shop"))))
	if err != nil {
		return err
	}
	texp, err := otlptracehttp.New(ctx)
	if err != nil {
		return fmt.Errorf("the OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(texp, sdktrace.WithBatchTimeout(time.Second)), sdktrace.WithResource(res))
	defer shutdown(log, "traces", tp.Shutdown)

	s := &shop{log: log, tracer: tp.Tracer("demo-shop"), slowEvery: c.slowEvery}
	var mp *sdkmetric.MeterProvider
	if os.Getenv("OTEL_METRICS_EXPORTER") != "none" {
		mexp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return fmt.Errorf("the OTLP metric exporter: %w", err)
		}
		mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)), sdkmetric.WithResource(res))
		defer shutdown(log, "metrics", mp.Shutdown)
		meter := mp.Meter("demo-shop")
		if s.duration, err = meter.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
			metric.WithDescription("Duration of HTTP server requests.")); err != nil {
			return err
		}
		if s.orders, err = meter.Int64Counter("shop.orders", metric.WithDescription("Orders placed, by outcome.")); err != nil {
			return err
		}
	}

	if c.sentryDSN != "" {
		if err := sentry.Init(sentry.ClientOptions{Dsn: c.sentryDSN, Environment: env("SENTRY_ENVIRONMENT", "demo"),
			Release: "demo-shop@1.0.0", AttachStacktrace: true}); err != nil {
			return fmt.Errorf("sentry: %w", err)
		}
		defer sentry.Flush(5 * time.Second)
	}

	if c.dbCreds != "" {
		s.db = &pools{file: c.dbCreds, addr: c.dbAddr, name: c.dbName}
		if err := s.db.reload(ctx); err != nil {
			return err
		}
		defer s.db.close()
	}
	s.apiKeyFile = c.apiKeyFile
	s.logAPIKey()
	if c.pidFile != "" {
		if err := os.WriteFile(c.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("write the pid file: %w", err)
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			s.reload(ctx)
		}
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /api/orders/{id}", s.handle("GET /api/orders/{id}", s.getOrder))
	mux.Handle("POST /api/orders", s.handle("POST /api/orders", s.placeOrder))
	mux.Handle("GET /api/crash", s.handle("GET /api/crash", s.crash))
	srv := &http.Server{Addr: c.listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	log.Info("demo-shop listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("demo-shop stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func shutdown(log *slog.Logger, what string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		log.Warn("could not flush "+what+" to the sidecar", "error", err.Error())
	}
}

// shop is the service's state.
type shop struct {
	log        *slog.Logger
	tracer     trace.Tracer
	db         *pools
	apiKeyFile string
	slowEvery  int
	duration   metric.Float64Histogram
	orders     metric.Int64Counter
}

// reload re-reads the rendered secrets after SIGHUP.
func (s *shop) reload(ctx context.Context) {
	if s.db != nil {
		if err := s.db.reload(ctx); err != nil {
			s.log.Error("reload: the new database credentials do not work; keeping the old pool", "error", err.Error())
			return
		}
		s.log.Info("reload: new database credentials in use", "db_user", s.db.user())
	}
	s.logAPIKey()
}

// logAPIKey logs the API key, as a careless application would; outrider scrubs it.
func (s *shop) logAPIKey() {
	if s.apiKeyFile == "" {
		return
	}
	kv, err := readEnvFile(s.apiKeyFile)
	if err != nil {
		s.log.Warn("cannot read the API key file", "error", err.Error())
		return
	}
	key := kv["API_KEY"]
	if key == "" {
		key = kv["api_key"]
	}
	s.log.Warn("calling payments with API key " + key)
}

// reqInfo is what a handler knows of its request.
type reqInfo struct {
	ctx       context.Context
	span      trace.Span
	log       *slog.Logger
	requestID string
	hub       *sentry.Hub
}

// handle wraps a handler with a span, a request logger carrying the correlation IDs,
// a Sentry hub in the same trace, panic recovery and the duration metric.
func (s *shop) handle(route string, h func(w http.ResponseWriter, r *http.Request, ri *reqInfo) int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, span := s.tracer.Start(r.Context(), route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route)))
		sc := span.SpanContext()
		reqID := r.Header.Get("X-Request-Id")
		if reqID == "" {
			reqID = newRequestID()
		}
		ri := &reqInfo{ctx: ctx, span: span, requestID: reqID,
			log: s.log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String(), "request_id", reqID)}
		if hub := sentry.CurrentHub(); hub.Client() != nil {
			ri.hub = hub.Clone()
			if pc, err := sentry.PropagationContextFromHeaders(sc.TraceID().String()+"-"+sc.SpanID().String()+"-1", ""); err == nil {
				ri.hub.ConfigureScope(func(sc *sentry.Scope) {
					sc.SetPropagationContext(pc)
					sc.SetTag("request_id", reqID)
				})
			}
		}
		w.Header().Set("X-Trace-Id", sc.TraceID().String())
		w.Header().Set("X-Request-Id", reqID)
		status := http.StatusInternalServerError
		defer func() {
			if p := recover(); p != nil {
				// What the Go runtime would print had the panic not been recovered.
				stack := fmt.Sprintf("panic: %v\n\n%s", p, debug.Stack())
				err := fmt.Errorf("panic: %v", p)
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
				ri.log.Error("handler panicked", "error", err.Error(), "stack", stack)
				if ri.hub != nil {
					ri.hub.Recover(p)
				}
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
			d := time.Since(start)
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			span.End()
			if s.duration != nil {
				s.duration.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("http.route", route),
					attribute.String("http.request.method", r.Method), attribute.Int("http.response.status_code", status)))
			}
			ri.log.Info("request done", "method", r.Method, "path", r.URL.Path, "status", status, "duration_ms", d.Milliseconds())
		}()
		status = h(w, r, ri)
	})
}

func (s *shop) getOrder(w http.ResponseWriter, r *http.Request, ri *reqInfo) int {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		http.Error(w, "order id must be a number", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	delay := time.Duration(0)
	if s.slowEvery > 0 && id%s.slowEvery == 0 || r.URL.Query().Has("slow") {
		delay = time.Duration(200+rand.IntN(600)) * time.Millisecond
	}
	if err := s.query(ri, "db.select order", delay); err != nil {
		return s.fail(w, ri, "cannot read the order", err)
	}
	fmt.Fprintf(w, "{\"id\":%d,\"status\":\"shipped\"}\n", id)
	return http.StatusOK
}

func (s *shop) placeOrder(w http.ResponseWriter, r *http.Request, ri *reqInfo) int {
	if err := s.query(ri, "db.insert order", 0); err != nil {
		return s.fail(w, ri, "cannot store the order", err)
	}
	_, pay := s.tracer.Start(ri.ctx, "payments.charge", trace.WithSpanKind(trace.SpanKindClient))
	declined := r.URL.Query().Has("decline")
	if declined {
		pay.SetStatus(codes.Error, "payment declined")
	}
	pay.End()
	outcome := "placed"
	if declined {
		outcome = "declined"
	}
	if s.orders != nil {
		s.orders.Add(ri.ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	}
	if declined {
		return s.fail(w, ri, "payment declined", errors.New("payment declined: card expired"))
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintln(w, `{"status":"placed"}`)
	return http.StatusCreated
}

// crash panics inside a handler, as a nil map or pointer would.
func (s *shop) crash(w http.ResponseWriter, r *http.Request, ri *reqInfo) int {
	var prices map[string]int
	//lint:ignore SA5000 the demo's crash endpoint panics on purpose
	prices[r.URL.Query().Get("sku")]++ // assignment to entry in nil map
	return http.StatusOK
}

// fail answers 500, logs the error in the request's trace and reports it to Sentry.
func (s *shop) fail(w http.ResponseWriter, ri *reqInfo, msg string, err error) int {
	ri.span.RecordError(err)
	ri.span.SetStatus(codes.Error, msg)
	ri.log.Error(msg, "error", err.Error())
	if ri.hub != nil {
		ri.hub.CaptureException(err)
	}
	http.Error(w, msg, http.StatusInternalServerError)
	return http.StatusInternalServerError
}

// query runs one statement on the current pool in a child span; without a database it
// only waits.
func (s *shop) query(ri *reqInfo, name string, delay time.Duration) error {
	ctx, span := s.tracer.Start(ri.ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql")))
	defer span.End()
	if s.db == nil {
		time.Sleep(delay)
		return nil
	}
	p := s.db.acquire()
	defer p.release()
	var one int
	err := p.db.QueryRowContext(ctx, "SELECT 1 FROM pg_sleep($1)", delay.Seconds()).Scan(&one)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "query failed")
		return err
	}
	return nil
}

func newRequestID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// waitForFiles waits up to d for every non-empty path to exist.
func waitForFiles(ctx context.Context, d time.Duration, paths ...string) error {
	deadline := time.Now().Add(d)
	for _, p := range paths {
		for p != "" {
			if _, err := os.Stat(p); err == nil {
				break
			} else if time.Now().After(deadline) {
				return fmt.Errorf("%s is not there (waited %s for the sidecar to render it): %w", p, d, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}
