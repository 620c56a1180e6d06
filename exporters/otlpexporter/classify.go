package otlpexporter

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/pipeline"
)

// Drop reasons, the values of the dropped-records metric's reason label.
const (
	// ReasonBadRequest: the backend found the spans invalid (gRPC InvalidArgument,
	// HTTP 400 and other 4xx).
	ReasonBadRequest = exporterhelper.ReasonBadRequest
	// ReasonUnauthorized: the backend refused the credentials or tenant (gRPC
	// Unauthenticated/PermissionDenied, HTTP 401/403).
	ReasonUnauthorized = exporterhelper.ReasonUnauthorized
	// ReasonNotFound: the endpoint does not serve OTLP traces (gRPC Unimplemented or
	// NotFound, HTTP 404/405).
	ReasonNotFound = "not_found"
	// ReasonTooLarge: the request was over the backend's size limit (HTTP 413, gRPC
	// ResourceExhausted "message larger than max").
	ReasonTooLarge = exporterhelper.ReasonTooLarge
	// ReasonRejected: the backend failed the request in a way retrying cannot fix
	// (gRPC Internal, Unknown, FailedPrecondition, ...).
	ReasonRejected = "rejected"
	// ReasonPartialSuccess: the backend stored the request but for the spans it
	// counted in partial_success.rejected_spans.
	ReasonPartialSuccess = "partial_success"
)

// Hints appended to errors, saying what to check; the signal's own are in signal.go.
const (
	hintGRPCPath = "check endpoint and protocol: endpoint must be the backend's OTLP gRPC port (4317 by default); for an OTLP/HTTP port (4318) set protocol: http"
	hintTLS      = "check tls and the endpoint scheme: https:// speaks TLS, http:// plaintext, and the backend must do the same"
)

// maxErrorText is how much of a backend's error message an error keeps.
const maxErrorText = 1 << 10

// classifyGRPC classifies the error of an Export call. Retryable, as the OTLP
// specification says: Unavailable, DeadlineExceeded, Aborted, Canceled, OutOfRange,
// DataLoss, and ResourceExhausted with RetryInfo (its delay honoured). Unlike the
// specification, ResourceExhausted without RetryInfo is retried too (with backoff):
// it is how a backend sheds load, and we prefer late spans to lost ones — except when
// it is gRPC's message size limit ("larger than max"), which no retry can pass. Every
// other code is permanent; errors that carry no gRPC status (connection failures) are
// retryable. InvalidArgument, the size limit and Internal for a request the server
// could not unmarshal are exporterhelper.Splittable: one batch of the request may be the
// cause, and the Sender pushes the request's batches apart.
func (s *signal) classifyGRPC(err error, target string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return pipeline.Retryable(fmt.Errorf("export to %s: %w", target, err), 0)
	}
	msg := cutText(st.Message())
	base := fmt.Errorf("export to %s: %s: %s", target, st.Code(), msg)
	switch st.Code() {
	case codes.OK:
		return nil
	case codes.Unavailable:
		if looksLikeTLS(msg) {
			base = fmt.Errorf("%w; %s", base, hintTLS)
		}
		return pipeline.Retryable(base, retryDelay(st))
	case codes.ResourceExhausted:
		if strings.Contains(msg, "larger than max") {
			// gRPC's own message size limit, on either side: no retry will fit, but
			// a part of the request may.
			return exporterhelper.Splittable(pipeline.Permanent(ReasonTooLarge, fmt.Errorf("%w; %s", base, s.hintTooLarge())))
		}
		return pipeline.Retryable(base, retryDelay(st))
	case codes.DeadlineExceeded, codes.Aborted, codes.Canceled, codes.OutOfRange, codes.DataLoss:
		return pipeline.Retryable(base, retryDelay(st))
	case codes.Unauthenticated, codes.PermissionDenied:
		return pipeline.Permanent(ReasonUnauthorized, fmt.Errorf("%w; %s", base, s.hintAuth))
	case codes.Unimplemented, codes.NotFound:
		return pipeline.Permanent(ReasonNotFound, fmt.Errorf("%w; %s", base, hintGRPCPath))
	case codes.InvalidArgument:
		return exporterhelper.Splittable(pipeline.Permanent(ReasonBadRequest, fmt.Errorf("%w; the backend found the %s invalid", base, s.items)))
	default:
		if st.Code() == codes.Internal && strings.Contains(msg, "unmarshal") {
			// The server could not decode the request: one batch of it may be the cause.
			return exporterhelper.Splittable(pipeline.Permanent(ReasonBadRequest, base))
		}
		if st.Code() == codes.Internal && looksLikeTLS(msg) {
			return pipeline.Permanent(ReasonRejected, fmt.Errorf("%w; %s", base, hintTLS))
		}
		return pipeline.Permanent(ReasonRejected, base)
	}
}

// retryDelay returns the delay of a status's RetryInfo detail, or 0.
func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			if d := ri.GetRetryDelay().AsDuration(); d > 0 {
				return d
			}
		}
	}
	return 0
}

func looksLikeTLS(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "tls") || strings.Contains(m, "handshake") ||
		strings.Contains(m, "x509") || strings.Contains(m, "certificate") ||
		strings.Contains(m, "server preface") || strings.Contains(m, "https")
}

// classifyHTTP classifies an OTLP/HTTP response from its status, headers and (at most
// maxResponseBody bytes of) body; cut reports a longer body. 2xx is delivered, or a
// partial success; 429, 502, 503, 504 and other 5xx are retried, honouring
// Retry-After; other 4xx are permanent. A 1xx/3xx means the endpoint points at the
// wrong place (redirects are not followed) and is retried, so no span is lost before
// the configuration is fixed.
func (s *signal) classifyHTTP(code int, header http.Header, body []byte, cut bool, url string, now time.Time, warn func(string)) error {
	if code >= 200 && code < 300 {
		if cut {
			// Too long for an export response: not one, but the items arrived.
			return nil
		}
		return s.partialSuccess(body, url, warn)
	}
	err := fmt.Errorf("export to %s: %s: %s", url, exporterhelper.StatusText(code), errorText(header.Get("Content-Type"), body, cut))
	// s.policy says what the errors of OTLP/HTTP statuses tell the user to check;
	// other 4xx are ReasonBadRequest.
	return s.policy.Classify(code, header, now, err, nil)
}

// partialSuccess decodes an export response (ExportTraceServiceResponse, or
// ExportMetricsServiceResponse, the same on the wire). It returns
// pipeline.PartlyRejected when the backend rejected some items, and nil otherwise,
// including for a body that is not a response (the status said the items arrived). A
// message without rejected items is a warning, passed to warn (which may be nil).
func (s *signal) partialSuccess(body []byte, target string, warn func(string)) error {
	rejected, msg, err := decodeResponse(body)
	if err != nil {
		return nil
	}
	if rejected <= 0 {
		if msg != "" && warn != nil {
			warn(msg)
		}
		return nil
	}
	if msg == "" {
		msg = "(no error_message)"
	}
	return pipeline.PartlyRejected(ReasonPartialSuccess, int(min(rejected, int64(1<<31-1))),
		fmt.Errorf("export to %s: the backend rejected %d %s of the request: %s", target, rejected, s.items, cutText(msg)))
}

// decodeResponse reads partial_success from an ExportTraceServiceResponse, or an
// ExportMetricsServiceResponse (whose partial_success has the same field numbers and
// types: rejected_data_points is rejected_spans on the wire). An empty body is the
// common, full success.
func decodeResponse(body []byte) (rejected int64, msg string, err error) {
	if len(body) == 0 {
		return 0, "", nil
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(body); err != nil {
		return 0, "", fmt.Errorf("decode ExportTraceServiceResponse: %w", err)
	}
	ps := resp.PartialSuccess()
	return ps.RejectedSpans(), ps.ErrorMessage(), nil
}

// errorText is the message of an error response: a google.rpc.Status's message when
// the body is one (protobuf or JSON, as OTLP/HTTP says), else the body as text.
func errorText(contentType string, body []byte, cut bool) string {
	ct := strings.ToLower(contentType)
	switch {
	case len(body) == 0:
		return "(empty body)"
	case strings.Contains(ct, "protobuf") && !cut:
		var st spb.Status
		if err := proto.Unmarshal(body, &st); err == nil && st.GetMessage() != "" {
			return cutText(st.GetMessage())
		}
		return fmt.Sprintf("(%d bytes of protobuf that is not a google.rpc.Status)", len(body))
	case strings.Contains(ct, "json") && !cut:
		var st struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &st); err == nil && st.Message != "" {
			return cutText(st.Message)
		}
	}
	s := cutText(string(body))
	if cut && !strings.HasSuffix(s, " …") {
		s += " …"
	}
	return s
}

// cutText makes s fit a log line: valid UTF-8, no surrounding space, at most
// maxErrorText bytes.
func cutText(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxErrorText {
		return strings.ToValidUTF8(s[:maxErrorText], "") + " …"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// classifyTransport classifies an error of the HTTP transport (no response): it is
// retried, with a hint when it looks like a TLS mismatch.
func classifyTransport(err error) error {
	if looksLikeTLS(err.Error()) {
		err = fmt.Errorf("%w; %s", err, hintTLS)
	}
	return pipeline.Retryable(err, 0)
}
