package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Handler serves /mutate: an AdmissionReview v1 in, an AdmissionReview v1 out. It
// only reads and writes HTTP; the decision is the Injector's Mutate.
//
// Its memory is bounded: bodies larger than MaxReviewBytes are refused (413), by their
// Content-Length before anything is read; at most MaxInflightBytes of bodies are
// handled at once, and a request past that is answered 429 with Retry-After at once
// (the API server retries, then applies the failurePolicy); at most
// MaxConcurrentMutations pods are decoded and injected at once.
type Handler struct {
	injector *Injector
	metrics  *Metrics
	logger   *slog.Logger
	inflight *semaphore.Weighted
	mutating chan struct{}
}

// NewHandler returns the /mutate handler. A nil logger discards.
func NewHandler(in *Injector, m *Metrics, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Handler{injector: in, metrics: m, logger: logger,
		inflight: semaphore.NewWeighted(MaxInflightBytes),
		mutating: make(chan struct{}, MaxConcurrentMutations),
	}
}

// ServeHTTP answers POST requests with an application/json AdmissionReview v1 body.
// Requests that are not one are answered 400 (malformed), 405 (method), 413 (too
// large), 415 (content type), 429 (busy, with Retry-After) or 503 (cancelled while
// waiting), with a plain-text reason; an AdmissionReview is otherwise answered 200,
// its verdict in the response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, http.StatusMethodNotAllowed, "use POST with an AdmissionReview")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		h.refuse(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be application/json, got %q", r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > MaxReviewBytes {
		h.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the AdmissionReview is %d bytes, larger than the injector's limit of %d (%s); the API server sends no review of a pod it accepts this large",
			r.ContentLength, MaxReviewBytes, confval.ByteSize(MaxReviewBytes)))
		return
	}
	// The body is counted against MaxInflightBytes as it arrives, so that a client
	// that announces a large body and sends it slowly holds only what it sent.
	br := &budgetReader{r: http.MaxBytesReader(w, r.Body, MaxReviewBytes), sem: h.inflight}
	defer br.release()
	body, err := br.readAll()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.Is(err, errBusy) {
			w.Header().Set("Retry-After", "1")
			h.refuse(w, http.StatusTooManyRequests, fmt.Sprintf("busy: admission requests holding %s are being handled already; retry in a second", confval.ByteSize(MaxInflightBytes)))
			return
		}
		if errors.As(err, &tooLarge) {
			h.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the AdmissionReview is larger than the injector's limit of %d bytes (%s)", MaxReviewBytes, confval.ByteSize(MaxReviewBytes)))
			return
		}
		h.refuse(w, http.StatusBadRequest, "cannot read the request body")
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		h.refuse(w, http.StatusBadRequest, fmt.Sprintf("the body is not an AdmissionReview: %v", err))
		return
	}
	gvk := admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
	if review.APIVersion != gvk.GroupVersion().String() || review.Kind != gvk.Kind {
		h.refuse(w, http.StatusBadRequest, fmt.Sprintf("expected apiVersion %s, kind %s; got %q, %q (set admissionReviewVersions: [v1] in the webhook configuration)",
			gvk.GroupVersion(), gvk.Kind, review.APIVersion, review.Kind))
		return
	}
	if review.Request == nil {
		h.refuse(w, http.StatusBadRequest, "the AdmissionReview has no request")
		return
	}
	body = nil
	select {
	case h.mutating <- struct{}{}:
	case <-r.Context().Done():
		h.refuse(w, http.StatusServiceUnavailable, "the request was cancelled while waiting for its turn")
		return
	}
	resp, result := h.injector.mutate(review.Request)
	<-h.mutating
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		h.refuse(w, http.StatusInternalServerError, "cannot encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)

	elapsed := time.Since(start)
	h.metrics.requests.WithLabelValues(result).Inc()
	h.metrics.duration.WithLabelValues(result).Observe(elapsed.Seconds())
	req := review.Request
	attrs := []slog.Attr{
		slog.String("result", result), slog.String("uid", string(req.UID)), slog.String("namespace", req.Namespace),
		slog.String("name", req.Name), slog.String("operation", string(req.Operation)), slog.Duration("duration", elapsed),
	}
	level := slog.LevelInfo
	switch result {
	case ResultSkipped:
		level = slog.LevelDebug
	case ResultDenied, ResultError:
		attrs = append(attrs, slog.String("reason", resp.Result.Message))
	}
	h.logger.LogAttrs(r.Context(), level, "admission request", attrs...)
}

// errBusy is budgetReader's error when MaxInflightBytes are in hand.
var errBusy = errors.New("busy")

// budgetReader reads a body in chunks, each taken from sem before it is read (twice
// its size: the chunks and the body they are joined into), failing with errBusy when
// sem has no room; release gives it all back.
type budgetReader struct {
	r    io.Reader
	sem  *semaphore.Weighted
	held int64
}

// budgetChunk is the size of the chunks a body is read in.
const budgetChunk = 32 << 10

// readAll reads the whole body: into chunks (no copies while it grows), then into
// one slice.
func (b *budgetReader) readAll() ([]byte, error) {
	var (
		chunks [][]byte
		total  int
	)
	for {
		if !b.sem.TryAcquire(2 * budgetChunk) {
			return nil, errBusy
		}
		chunk := make([]byte, budgetChunk)
		n, err := io.ReadFull(b.r, chunk)
		b.held += 2 * int64(n)
		b.sem.Release(2 * int64(budgetChunk-n))
		chunks = append(chunks, chunk[:n])
		total += n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	body := make([]byte, 0, total)
	for _, c := range chunks {
		body = append(body, c...)
	}
	return body, nil
}

func (b *budgetReader) release() {
	b.sem.Release(b.held)
	b.held = 0
}

func (h *Handler) refuse(w http.ResponseWriter, code int, msg string) {
	h.metrics.badRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.logger.Warn("refused request", "code", code, "reason", msg)
	http.Error(w, msg, code)
}
