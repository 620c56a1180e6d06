package otlpreceiver

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/outrider-dev/outrider/pipeline"
)

// OTLP/HTTP paths.
const (
	TracesPath  = "/v1/traces"
	LogsPath    = "/v1/logs"
	MetricsPath = "/v1/metrics"
)

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

func (r *Receiver) newHTTPServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc(TracesPath, func(w http.ResponseWriter, req *http.Request) { r.serveHTTP(w, req, KindTraces) })
	mux.HandleFunc(LogsPath, func(w http.ResponseWriter, req *http.Request) { r.serveHTTP(w, req, KindLogs) })
	mux.HandleFunc(MetricsPath, func(w http.ResponseWriter, req *http.Request) { r.serveHTTP(w, req, KindMetrics) })
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, fmt.Sprintf("no OTLP endpoint at %s; send traces to %s, logs to %s and metrics to %s", req.URL.Path, TracesPath, LogsPath, MetricsPath), http.StatusNotFound)
	})
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: r.cfg.HeaderTimeout(),
		ReadTimeout:       r.cfg.ReadTimeout,
		WriteTimeout:      r.cfg.WriteTimeout(),
		IdleTimeout:       r.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
}

// maxHeaderBytes bounds an HTTP request's headers.
const maxHeaderBytes = 64 << 10

// bodyPool holds request body buffers: decoding copies everything it keeps, so a
// buffer is reused as soon as the request is decoded.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var gzipPool sync.Pool // *gzip.Reader

// httpError is a refusal with its HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request, k Kind) {
	signal := k.String()
	asJSON := false
	if ct := req.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
		case mt == contentJSON:
			asJSON = true
		case mt == contentProtobuf:
		default:
			err = errors.New(mt)
		}
		if err != nil {
			r.m.requests.WithLabelValues(signal, "http", resultInvalid).Inc()
			writeHTTPError(w, asJSON, &httpError{http.StatusUnsupportedMediaType,
				fmt.Sprintf("unsupported Content-Type %q; send %s or %s", ct, contentProtobuf, contentJSON)}, 0)
			return
		}
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, asJSON, &httpError{http.StatusMethodNotAllowed, "OTLP export requests must be POST"}, 0)
		return
	}
	if q, err := r.appender(k); q == nil {
		r.m.requests.WithLabelValues(signal, "http", resultInvalid).Inc()
		r.writeRefusal(w, asJSON, err)
		return
	}
	size := req.ContentLength
	if ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce != "" && ce != "identity" {
		size = -1 // the decompressed size is known only once read
	}
	resv, ref := r.reserve(req.Context(), size)
	if ref != nil {
		r.writeHTTPRefusal(w, asJSON, signal, ref)
		return
	}
	defer resv.Release()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= int(r.cfg.MaxRequestBytes) {
			bodyPool.Put(buf)
		}
	}()
	if herr := r.readBody(w, req, buf); herr != nil {
		res := resultInvalid
		if herr.status == http.StatusRequestEntityTooLarge {
			res = resultTooLarge
		}
		r.m.requests.WithLabelValues(signal, "http", res).Inc()
		writeHTTPError(w, asJSON, herr, 0)
		return
	}

	var (
		o    outcome
		resp interface {
			MarshalProto() ([]byte, error)
			MarshalJSON() ([]byte, error)
		}
		derr error
	)
	fast, tried := false, false
	if k == KindTraces && !asJSON && r.fastBoundsDepth() {
		o, fast = r.consumeTracesProto(req.Context(), buf.Bytes(), "http")
		resp, tried = ptraceotlp.NewExportResponse(), true
	}
	if !fast {
		if ref := r.admit(buf.Bytes(), k, asJSON, resv); ref != nil {
			r.writeHTTPRefusal(w, asJSON, signal, ref)
			return
		}
	}
	if k == KindTraces && !asJSON && !tried {
		o, fast = r.consumeTracesProto(req.Context(), buf.Bytes(), "http")
		resp = ptraceotlp.NewExportResponse()
	}
	switch {
	case fast:
	case k == KindTraces:
		ereq := ptraceotlp.NewExportRequest()
		if derr = unmarshal(ereq, buf.Bytes(), asJSON); derr == nil {
			o = r.consumeTraces(req.Context(), ereq.Traces(), "http")
			tr := ptraceotlp.NewExportResponse()
			if o.rejected > 0 {
				tr.PartialSuccess().SetRejectedSpans(int64(o.rejected))
				tr.PartialSuccess().SetErrorMessage(o.message)
			}
			resp = tr
		}
	case k == KindLogs:
		ereq := plogotlp.NewExportRequest()
		if derr = unmarshal(ereq, buf.Bytes(), asJSON); derr == nil {
			o = r.consumeLogs(req.Context(), ereq.Logs(), "http")
			resp = plogotlp.NewExportResponse()
		}
	case k == KindMetrics:
		ereq := pmetricotlp.NewExportRequest()
		if derr = unmarshal(ereq, buf.Bytes(), asJSON); derr == nil {
			o = r.consumeMetrics(req.Context(), ereq.Metrics(), "http")
			resp = metricsResponse(o)
		}
	}
	if derr != nil {
		r.m.requests.WithLabelValues(signal, "http", resultInvalid).Inc()
		format := "protobuf"
		if asJSON {
			format = "JSON"
		}
		writeHTTPError(w, asJSON, &httpError{http.StatusBadRequest, fmt.Sprintf("cannot decode the OTLP %s request (%s): %v", signal, format, derr)}, 0)
		return
	}
	if o.err != nil {
		r.writeRefusal(w, asJSON, o.err)
		return
	}
	var (
		out []byte
		err error
	)
	if asJSON {
		out, err = resp.MarshalJSON()
		w.Header().Set("Content-Type", contentJSON)
	} else {
		out, err = resp.MarshalProto()
		w.Header().Set("Content-Type", contentProtobuf)
	}
	if err != nil {
		writeHTTPError(w, asJSON, &httpError{http.StatusInternalServerError, "cannot encode the response: " + err.Error()}, 0)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func unmarshal(m interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}, data []byte, asJSON bool) error {
	if asJSON {
		return m.UnmarshalJSON(data)
	}
	return m.UnmarshalProto(data)
}

// readBody reads the (possibly gzip-compressed) body into buf, refusing more than
// max_request_bytes compressed or decompressed.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request, buf *bytes.Buffer) *httpError {
	limit := int64(r.cfg.MaxRequestBytes)
	tooLarge := &httpError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("request larger than %s (receivers.otlp.max_request_bytes); send smaller batches", r.cfg.MaxRequestBytes)}
	if req.ContentLength > limit {
		return tooLarge
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, limit)
	switch ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		gz, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if gz == nil {
			gz, err = gzip.NewReader(body)
		} else {
			err = gz.Reset(body)
		}
		if err != nil {
			return gzipError(err)
		}
		defer gzipPool.Put(gz)
		body = gz
	default:
		return &httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Encoding %q; send gzip or no encoding", ce)}
	}
	if req.ContentLength > 0 && req.ContentLength < limit {
		buf.Grow(int(req.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), n > limit:
		return tooLarge
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF) && req.Header.Get("Content-Encoding") != "":
		return gzipError(err)
	case err != nil:
		return &httpError{http.StatusBadRequest, "cannot read the request body: " + err.Error()}
	}
	return nil
}

func gzipError(err error) *httpError {
	return &httpError{http.StatusBadRequest, "the body is not valid gzip (Content-Encoding: gzip): " + err.Error()}
}

// writeHTTPRefusal answers a request refused before decoding.
func (r *Receiver) writeHTTPRefusal(w http.ResponseWriter, asJSON bool, signal string, ref *refusal) {
	status, res, retry := http.StatusBadRequest, resultInvalid, time.Duration(0)
	switch ref.kind {
	case refuseTooDeep:
		res = resultTooDeep
	case refuseTooLarge:
		status, res = http.StatusRequestEntityTooLarge, resultTooLarge
	case refuseBusy:
		status, res, retry = http.StatusTooManyRequests, resultBusy, r.retryAfter
	}
	r.m.requests.WithLabelValues(signal, "http", res).Inc()
	writeHTTPError(w, asJSON, &httpError{status, ref.msg}, retry)
}

// writeRefusal answers a request that was not stored: 429 with Retry-After when the
// queue is full, 503 when storing failed, 404 when the signal has no exporter.
func (r *Receiver) writeRefusal(w http.ResponseWriter, asJSON bool, err error) {
	switch {
	case noExporter(err):
		writeHTTPError(w, asJSON, &httpError{http.StatusNotFound, err.Error()}, 0)
	case errors.Is(err, pipeline.ErrFull):
		writeHTTPError(w, asJSON, &httpError{http.StatusTooManyRequests, "outrider's queue is full; retry later: " + err.Error()}, r.retryAfter)
	default:
		writeHTTPError(w, asJSON, &httpError{http.StatusServiceUnavailable, "outrider could not store the request; retry: " + err.Error()}, time.Second)
	}
}

// writeHTTPError writes an OTLP error response: a google.rpc.Status in the request's
// encoding, with Retry-After when retryAfter is positive.
func writeHTTPError(w http.ResponseWriter, asJSON bool, e *httpError, retryAfter time.Duration) {
	st := &spb.Status{Code: int32(grpcCodeOf(e.status)), Message: e.msg}
	var (
		out []byte
		err error
	)
	if asJSON {
		out, err = protojson.Marshal(st)
		w.Header().Set("Content-Type", contentJSON)
	} else {
		out, err = proto.Marshal(st)
		w.Header().Set("Content-Type", contentProtobuf)
	}
	if err != nil {
		out = []byte(e.msg)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(out)
}

func grpcCodeOf(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusInternalServerError:
		return codes.Internal
	}
	return codes.InvalidArgument
}
