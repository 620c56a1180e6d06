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

	admissionv1 "k8s.io/api/admission/v1"
)

// MaxReviewBytes bounds the body of an admission request. The API server sends
// objects of up to about 3MiB (etcd's default request limit), and an AdmissionReview
// of a pod creation holds one.
const MaxReviewBytes = 8 << 20

// Handler serves /mutate: an AdmissionReview v1 in, an AdmissionReview v1 out. It
// only reads and writes HTTP; the decision is the Injector's Mutate.
type Handler struct {
	injector *Injector
	metrics  *Metrics
	logger   *slog.Logger
}

// NewHandler returns the /mutate handler. A nil logger discards.
func NewHandler(in *Injector, m *Metrics, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Handler{injector: in, metrics: m, logger: logger}
}

// ServeHTTP answers POST requests with an application/json AdmissionReview v1 body.
// Requests that are not one are answered 400 (malformed), 405 (method), 413 (too
// large) or 415 (content type), with a plain-text reason; an AdmissionReview is
// always answered 200, its verdict in the response.
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the AdmissionReview is larger than %d bytes", MaxReviewBytes))
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
	resp, result := h.injector.mutate(review.Request)
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

func (h *Handler) refuse(w http.ResponseWriter, code int, msg string) {
	h.metrics.badRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.logger.Warn("refused request", "code", code, "reason", msg)
	http.Error(w, msg, code)
}
