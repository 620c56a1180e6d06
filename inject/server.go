package inject

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServerConfig configures the webhook's HTTPS server.
type ServerConfig struct {
	// Listen is host:port, such as :8443.
	Listen string
	// CertFile and KeyFile are the serving certificate (with its chain) and key in
	// PEM; they are read again when they change.
	CertFile, KeyFile string
	// ShutdownTimeout bounds how long a stop waits for requests in flight; default
	// 10s.
	ShutdownTimeout time.Duration
	// DrainDelay is how long a stop keeps serving after SIGTERM, with /healthz
	// answering 503, so that Kubernetes takes the replica out of the Service before it
	// closes its listener: with failurePolicy Fail, an admission sent to a replica
	// that has already closed would be refused. 0 stops at once.
	DrainDelay time.Duration
}

// Server serves /mutate, /healthz and /metrics over HTTPS.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	timeout  time.Duration
	drain    time.Duration
	draining atomic.Bool
	logger   *slog.Logger
}

// NewServer loads the certificate and listens; Run serves. gatherer is what /metrics
// shows (nil: prometheus.DefaultGatherer).
func NewServer(cfg ServerConfig, mutate http.Handler, gatherer prometheus.Gatherer, m *Metrics, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	certs, err := NewCertReloader(cfg.CertFile, cfg.KeyFile, m, logger)
	if err != nil {
		return nil, err
	}
	s := &Server{timeout: cfg.ShutdownTimeout, drain: cfg.DrainDelay, logger: logger}
	mux := http.NewServeMux()
	mux.Handle("/mutate", mutate)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if s.draining.Load() {
			http.Error(w, "draining: shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	s.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	s.ln = ln
	return s, nil
}

// Close releases the listener of a server whose Run was never called.
func (s *Server) Close() error { return s.ln.Close() }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done, then stops accepting connections and waits up to the
// shutdown timeout for requests in flight. It returns nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ServeTLS(s.ln, "", "") }()
	s.logger.Info("injector listening", "addr", s.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	if s.drain > 0 {
		s.draining.Store(true)
		s.logger.Info("draining: still serving while the replica leaves the Service", "delay", s.drain.String())
		select {
		case err := <-errc:
			return fmt.Errorf("serve %s: %w", s.Addr(), err)
		case <-time.After(s.drain):
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.logger.Info("injector stopped")
	return nil
}
