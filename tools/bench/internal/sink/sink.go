// Package sink is a counting backend for benchmarks: an HTTP server on loopback that
// accepts Loki pushes and OTLP/HTTP log exports, decodes them fully, counts the
// entries (and those that carry a trace ID) and throws them away.
package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// Paths the sink serves.
const (
	LokiPushPath = "/loki/api/v1/push"
	OTLPLogsPath = "/v1/logs"
)

// maxBody bounds one request body as received.
const maxBody = 128 << 20

// Counts is what the sink has received so far.
type Counts struct {
	// Entries is the number of log entries (Loki) or log records (OTLP) accepted.
	Entries int64
	// WithTraceID counts the entries with a trace ID: Loki structured metadata
	// trace_id, or a non-empty OTLP TraceID.
	WithTraceID int64
	// Requests is the number of accepted requests.
	Requests int64
	// WireBytes is the size of the accepted request bodies as sent (compressed).
	WireBytes int64
	// Rejected is the number of requests answered with an error status.
	Rejected int64
	// LastError describes the latest rejected request.
	LastError string
	// Last is when the latest accepted request that held entries was counted; zero
	// before the first. It carries a monotonic clock reading.
	Last time.Time
}

// Sink is a running counting server. Its methods are safe for concurrent use.
type Sink struct {
	logger *slog.Logger
	ln     net.Listener
	srv    *http.Server
	served chan error

	mu     sync.Mutex
	counts Counts

	closeOnce sync.Once
	closeErr  error
}

// Start listens on 127.0.0.1 on a free port and serves until Close.
func Start(logger *slog.Logger) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback for the counting sink: %w", err)
	}
	s := &Sink{logger: logger, ln: ln, served: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+LokiPushPath, s.handleLoki)
	mux.HandleFunc("POST "+OTLPLogsPath, s.handleOTLP)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the sink's base URL, "http://127.0.0.1:PORT".
func (s *Sink) URL() string { return "http://" + s.ln.Addr().String() }

// Counts returns a snapshot of what has been received.
func (s *Sink) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Close stops the server, waiting for requests in flight until ctx ends, after which
// it closes their connections. It is idempotent.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			s.closeErr = fmt.Errorf("stop the counting sink: %w", err)
		}
	})
	return s.closeErr
}

func (s *Sink) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return nil, false
	}
	return body, true
}

func (s *Sink) reject(w http.ResponseWriter, status int, err error) {
	s.mu.Lock()
	s.counts.Rejected++
	first := s.counts.Rejected == 1
	s.counts.LastError = err.Error()
	s.mu.Unlock()
	if first {
		s.logger.Warn("counting sink rejected a request", "status", status, "error", err)
	}
	http.Error(w, err.Error(), status)
}

func (s *Sink) accept(entries, withTrace int, wire int) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Requests++
	s.counts.WireBytes += int64(wire)
	if entries > 0 {
		s.counts.Entries += int64(entries)
		s.counts.WithTraceID += int64(withTrace)
		s.counts.Last = now
	}
}

func statusFor(err error) int {
	if errors.Is(err, errUnsupported) {
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

func (s *Sink) handleLoki(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	n, withTrace, err := CountLokiPush(r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), body)
	if err != nil {
		s.reject(w, statusFor(err), err)
		return
	}
	s.accept(n, withTrace, len(body))
	w.WriteHeader(http.StatusNoContent)
}

var (
	otlpProtoResponse, _ = plogotlp.NewExportResponse().MarshalProto()
	otlpJSONResponse, _  = plogotlp.NewExportResponse().MarshalJSON()
)

func (s *Sink) handleOTLP(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	ct := r.Header.Get("Content-Type")
	n, withTrace, err := CountOTLPLogs(ct, r.Header.Get("Content-Encoding"), body)
	if err != nil {
		s.reject(w, statusFor(err), err)
		return
	}
	s.accept(n, withTrace, len(body))
	if mt, _ := mediaType(ct); mt == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(otlpJSONResponse)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(otlpProtoResponse)
}
