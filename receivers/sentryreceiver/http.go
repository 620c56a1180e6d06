package sentryreceiver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

// Endpoint path elements: /api/<project>/envelope/ and /api/<project>/store/.
const (
	apiPrefix = "/api/"
	// EnvelopeContentType is what SDKs send envelopes as.
	EnvelopeContentType = "application/x-sentry-envelope"
)

func (r *Receiver) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: r.cfg.HeaderTimeout(),
		ReadTimeout:       r.cfg.ReadTimeout,
		WriteTimeout:      r.cfg.WriteTimeout(),
		IdleTimeout:       r.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
}

// httpError is a refusal with its HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// route splits /api/<project>/<endpoint>[/] into its parts.
func route(path string) (project, endpoint string, ok bool) {
	rest, found := strings.CutPrefix(path, apiPrefix)
	if !found {
		return "", "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	project, endpoint, found = strings.Cut(rest, "/")
	if !found || project == "" || (endpoint != endpointEnvelope && endpoint != endpointStore) {
		return "", "", false
	}
	return project, endpoint, true
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	project, endpoint, ok := route(req.URL.Path)
	if !ok {
		writeError(w, &httpError{http.StatusNotFound, fmt.Sprintf(
			"no Sentry endpoint at %s; SDKs send to /api/<project>/envelope/ (set the SDK's DSN to http://<public_key>@%s/<project>)", req.URL.Path, req.Host)}, 0)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.m.requests.WithLabelValues(endpoint, resultInvalid).Inc()
		writeError(w, &httpError{http.StatusMethodNotAllowed, "Sentry requests must be POST"}, 0)
		return
	}
	if r.cfg.ProjectID != "" && project != r.cfg.ProjectID {
		r.m.requests.WithLabelValues(endpoint, resultUnauthorized).Inc()
		writeError(w, &httpError{http.StatusForbidden, fmt.Sprintf(
			"project %q is not accepted here; this outrider accepts project %s: set the SDK's DSN to http://<public_key>@%s/%s",
			project, r.cfg.ProjectID, req.Host, r.cfg.ProjectID)}, 0)
		return
	}
	key, hasKey := requestKey(req)
	if hasKey && !r.keyOK(key) {
		r.refuseKey(w, req, endpoint, project, "the Sentry key in the request is not this outrider's")
		return
	}
	if !hasKey && endpoint == endpointStore {
		r.refuseKey(w, req, endpoint, project, "the request carries no Sentry key (X-Sentry-Auth: Sentry sentry_key=...)")
		return
	}

	size := req.ContentLength
	if ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce != "" && ce != "identity" {
		size = -1 // the decompressed size is known only once read
	}
	resv, herr := r.reserve(req.Context(), size)
	if herr != nil {
		r.m.requests.WithLabelValues(endpoint, resultBusy).Inc()
		r.writeBusy(w, herr)
		return
	}
	defer resv.Release()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}()
	if herr := r.readBody(w, req, buf); herr != nil {
		res := resultInvalid
		if herr.status == http.StatusRequestEntityTooLarge {
			res = resultTooLarge
		}
		r.m.requests.WithLabelValues(endpoint, res).Inc()
		writeError(w, herr, 0)
		return
	}

	env, herr := r.decode(endpoint, buf.Bytes())
	if herr == nil {
		herr = r.admit(env, buf.Len(), resv)
	}
	if herr != nil {
		res := resultInvalid
		switch {
		case herr.status == http.StatusRequestEntityTooLarge:
			res = resultTooLarge
		case herr.status == http.StatusTooManyRequests:
			r.m.requests.WithLabelValues(endpoint, resultBusy).Inc()
			r.writeBusy(w, herr)
			return
		case strings.Contains(herr.msg, "max_json_depth"):
			res = resultTooDeep
		}
		r.m.requests.WithLabelValues(endpoint, res).Inc()
		writeError(w, herr, 0)
		return
	}
	if !hasKey {
		key, hasKey = dsnKey(env.Header["dsn"])
		if !hasKey || !r.keyOK(key) {
			msg := "the request carries no Sentry key (X-Sentry-Auth: Sentry sentry_key=..., or the envelope header's dsn)"
			if hasKey {
				msg = "the Sentry key in the envelope's dsn is not this outrider's"
			}
			r.refuseKey(w, req, endpoint, project, msg)
			return
		}
	}

	res, herr := r.ingest(req.Context(), env)
	if herr != nil {
		r.m.requests.WithLabelValues(endpoint, resultInvalid).Inc()
		writeError(w, herr, 0)
		return
	}
	if res.err != nil {
		r.m.events.WithLabelValues("sdk", EventRefused).Add(float64(res.events))
		if errors.Is(res.err, pipeline.ErrFull) {
			r.m.requests.WithLabelValues(endpoint, resultFull).Inc()
			r.writeRateLimited(w, "queue_full", &httpError{http.StatusTooManyRequests, "outrider's queue is full; retry later: " + res.err.Error()})
			return
		}
		r.log.Warn("cannot store a Sentry envelope in the queue; the SDK was told it failed", "error", res.err)
		r.m.requests.WithLabelValues(endpoint, resultError).Inc()
		writeError(w, &httpError{http.StatusServiceUnavailable, "outrider could not store the event; retry: " + res.err.Error()}, time.Second)
		return
	}
	r.m.events.WithLabelValues("sdk", EventAccepted).Add(float64(res.events))
	r.m.events.WithLabelValues("sdk", EventLimited).Add(float64(res.limited))
	r.m.requests.WithLabelValues(endpoint, resultOK).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if res.eventID == "" {
		_, _ = io.WriteString(w, "{}")
		return
	}
	_, _ = io.WriteString(w, `{"id":"`+res.eventID+`"}`)
}

// writeBusy answers a request refused for max_inflight_bytes.
func (r *Receiver) writeBusy(w http.ResponseWriter, e *httpError) {
	r.writeRateLimited(w, "busy", e)
}

// writeRateLimited answers 429 with Retry-After and an X-Sentry-Rate-Limits header
// without categories: the limit covers everything the SDK sends.
func (r *Receiver) writeRateLimited(w http.ResponseWriter, reason string, e *httpError) {
	secs := int((r.retryAfter + time.Second - 1) / time.Second)
	w.Header().Set("X-Sentry-Rate-Limits", strconv.Itoa(secs)+"::organization:"+reason)
	writeError(w, e, r.retryAfter)
}

func (r *Receiver) keyOK(key string) bool {
	return subtle.ConstantTimeCompare([]byte(key), r.key) == 1
}

func (r *Receiver) refuseKey(w http.ResponseWriter, req *http.Request, endpoint, project, why string) {
	r.m.requests.WithLabelValues(endpoint, resultUnauthorized).Inc()
	if r.cfg.ProjectID != "" {
		project = r.cfg.ProjectID
	}
	r.log.Debug("refused a Sentry request with a wrong or missing key", "remote", req.RemoteAddr, "reason", why)
	writeError(w, &httpError{http.StatusUnauthorized, fmt.Sprintf(
		"%s; set the SDK's DSN to http://<public_key>@%s/%s with the public_key from outrider's configuration (receivers.sentry.public_key; the injector sets SENTRY_DSN to it)",
		why, req.Host, project)}, 0)
}

// requestKey returns the sentry_key of the X-Sentry-Auth or Authorization header, or
// of the query string.
func requestKey(req *http.Request) (string, bool) {
	for _, h := range []string{"X-Sentry-Auth", "Authorization"} {
		if v := req.Header.Get(h); v != "" {
			if key, ok := authKey(v); ok {
				return key, true
			}
		}
	}
	if q := req.URL.Query(); q.Has("sentry_key") {
		return q.Get("sentry_key"), true
	}
	return "", false
}

// authKey extracts sentry_key from "Sentry sentry_key=k, sentry_version=7, ...".
func authKey(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if len(v) >= 7 && strings.EqualFold(v[:7], "sentry ") {
		v = v[7:]
	}
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.TrimSpace(k) == "sentry_key" {
			return strings.Trim(strings.TrimSpace(val), `"`), true
		}
	}
	return "", false
}

// dsnKey returns the public key of an envelope header's "dsn".
func dsnKey(v any) (string, bool) {
	s, ok := v.(string)
	if !ok || s == "" {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.User.Username() == "" {
		return "", false
	}
	return u.User.Username(), true
}

// bodyPool holds request body buffers; envelopes parsed from one are serialized into
// a queue entry before the buffer is put back.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps unusually large buffers out of the pool.
const maxPooledBody = 4 << 20

var gzipPool sync.Pool // *gzip.Reader

// readBody reads the (possibly gzip- or deflate-compressed) body into buf, refusing
// more than max_envelope_bytes compressed or decompressed.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request, buf *bytes.Buffer) *httpError {
	limit := int64(r.cfg.MaxEnvelopeBytes)
	tooLarge := &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf(
		"request larger than %s (receivers.sentry.max_envelope_bytes); send fewer or smaller attachments", r.cfg.MaxEnvelopeBytes)}
	if req.ContentLength > limit {
		return tooLarge
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, limit)
	ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding")))
	switch ce {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if gz == nil {
			gz, err = gzip.NewReader(body)
		} else {
			err = gz.Reset(body)
		}
		if err != nil {
			return encodingError(ce, err)
		}
		defer gzipPool.Put(gz)
		body = gz
	case "deflate":
		// HTTP's deflate is zlib-wrapped; some clients send raw deflate instead.
		br := bufio.NewReader(body)
		if head, err := br.Peek(2); err == nil && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return encodingError(ce, err)
			}
			defer zr.Close()
			body = zr
		} else {
			fr := flate.NewReader(br)
			defer fr.Close()
			body = fr
		}
	default:
		return &httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Encoding %q; send gzip, deflate or no encoding", ce)}
	}
	if ce == "" && req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	var mbe *http.MaxBytesError
	var fce flate.CorruptInputError
	switch {
	case errors.As(err, &mbe), n > limit:
		return tooLarge
	case err == nil:
		return nil
	case ce != "" && ce != "identity" && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, zlib.ErrChecksum) || errors.Is(err, zlib.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &fce)):
		return encodingError(ce, err)
	}
	return badRequest("cannot read the request body: %v", err)
}

func encodingError(ce string, err error) *httpError {
	return badRequest("the body is not valid %s (Content-Encoding: %s): %v", ce, ce, err)
}

// writeError writes a Sentry-style error response, {"detail": msg}, with Retry-After
// when retryAfter is positive.
func writeError(w http.ResponseWriter, e *httpError, retryAfter time.Duration) {
	out, _ := json.Marshal(struct {
		Detail string `json:"detail"`
	}{e.msg})
	w.Header().Set("Content-Type", "application/json")
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(out)
}
