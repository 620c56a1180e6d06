package otlpexporter

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/pipeline"
)

// want is the expected classification of an answer.
type want struct {
	ok        bool
	permanent string // reason; "" means retryable
	rejected  int    // for partial success
	after     time.Duration
	contains  string
}

func check(t *testing.T, err error, w want) {
	t.Helper()
	if w.ok {
		if err != nil {
			t.Fatalf("classified as %v, want success", err)
		}
		return
	}
	if err == nil {
		t.Fatal("classified as success, want an error")
	}
	reason, perm := pipeline.IsPermanent(err)
	switch {
	case w.permanent != "" && (!perm || reason != w.permanent):
		t.Fatalf("classified as %v, want permanent %q", err, w.permanent)
	case w.permanent == "" && perm:
		t.Fatalf("classified as %v, want retryable", err)
	}
	if n := pipeline.RejectedCount(err); n != w.rejected {
		t.Errorf("rejected count %d, want %d", n, w.rejected)
	}
	if after, _ := pipeline.RetryAfter(err); after != w.after {
		t.Errorf("retry after %v, want %v", after, w.after)
	}
	if !strings.Contains(err.Error(), w.contains) {
		t.Errorf("%q lacks %q", err, w.contains)
	}
}

func withRetryInfo(code codes.Code, d time.Duration) error {
	st, err := status.New(code, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestClassifyGRPC(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want want
	}{
		{"nil", nil, want{ok: true}},
		{"OK", status.Error(codes.OK, ""), want{ok: true}},
		{"Unavailable", status.Error(codes.Unavailable, "connection refused"), want{contains: "export to tempo:4317: Unavailable: connection refused"}},
		{"Unavailable TLS", status.Error(codes.Unavailable, "authentication handshake failed: tls: first record does not look like a TLS handshake"), want{contains: "check tls"}},
		{"Unavailable with RetryInfo", withRetryInfo(codes.Unavailable, 3*time.Second), want{after: 3 * time.Second}},
		{"DeadlineExceeded", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), want{}},
		{"Aborted", status.Error(codes.Aborted, ""), want{}},
		{"Canceled", status.Error(codes.Canceled, "server shutting down"), want{}},
		{"OutOfRange", status.Error(codes.OutOfRange, ""), want{}},
		{"DataLoss", status.Error(codes.DataLoss, ""), want{}},
		{"ResourceExhausted with RetryInfo", withRetryInfo(codes.ResourceExhausted, 7*time.Second), want{after: 7 * time.Second}},
		{"ResourceExhausted without RetryInfo", status.Error(codes.ResourceExhausted, "queue full"), want{contains: "queue full"}},
		{"message too large", status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5242880 vs. 4194304)"), want{permanent: ReasonTooLarge, contains: "lower batch.max_bytes"}},
		{"InvalidArgument", status.Error(codes.InvalidArgument, "bad span"), want{permanent: ReasonBadRequest, contains: "bad span"}},
		{"Unauthenticated", status.Error(codes.Unauthenticated, "no token"), want{permanent: ReasonUnauthorized, contains: "check headers"}},
		{"PermissionDenied", status.Error(codes.PermissionDenied, ""), want{permanent: ReasonUnauthorized, contains: "X-Scope-OrgID"}},
		{"NotFound", status.Error(codes.NotFound, ""), want{permanent: ReasonNotFound, contains: "check endpoint"}},
		{"Unimplemented", status.Error(codes.Unimplemented, "unknown service"), want{permanent: ReasonNotFound, contains: "4317"}},
		{"Internal", status.Error(codes.Internal, "panic"), want{permanent: ReasonRejected, contains: "Internal: panic"}},
		{"Unknown", status.Error(codes.Unknown, ""), want{permanent: ReasonRejected}},
		{"FailedPrecondition", status.Error(codes.FailedPrecondition, ""), want{permanent: ReasonRejected}},
		{"no status", errors.New("dial tcp: connection refused"), want{contains: "connection refused"}},
		{"long message cut", status.Error(codes.Unavailable, strings.Repeat("x", 5000)), want{contains: strings.Repeat("x", 1024) + " …"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tracesSignal.classifyGRPC(tt.err, "tempo:4317")
			check(t, err, tt.want)
			if err != nil && len(err.Error()) > 1500 {
				t.Errorf("message of %d bytes", len(err.Error()))
			}
		})
	}
}

func TestClassifyHTTP(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	proto := map[string]string{"Content-Type": "application/x-protobuf"}
	tests := []struct {
		name   string
		code   int
		header map[string]string
		body   []byte
		cut    bool
		want   want
	}{
		{"200 empty", 200, nil, nil, false, want{ok: true}},
		{"202", 202, nil, nil, false, want{ok: true}},
		{"200 partial", 200, proto, partialBody(t, 5, "too old"), false, want{permanent: ReasonPartialSuccess, rejected: 5, contains: "rejected 5 spans of the request: too old"}},
		{"200 warning only", 200, proto, partialBody(t, 0, "deprecated"), false, want{ok: true}},
		{"200 not a response", 200, nil, []byte("OK"), false, want{ok: true}},
		{"200 cut", 200, nil, []byte("xx"), true, want{ok: true}},
		{"429 seconds", 429, map[string]string{"Retry-After": "7"}, []byte("rate limited"), false, want{after: 7 * time.Second, contains: "429 Too Many Requests: rate limited"}},
		{"429 date", 429, map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, nil, false, want{after: 90 * time.Second}},
		{"429 bare", 429, nil, nil, false, want{}},
		{"502", 502, nil, nil, false, want{}},
		{"503 Retry-After", 503, map[string]string{"Retry-After": "2"}, nil, false, want{after: 2 * time.Second}},
		{"504", 504, nil, nil, false, want{}},
		{"500", 500, nil, []byte("boom"), false, want{contains: "500 Internal Server Error: boom"}},
		{"400 status proto", 400, proto, statusBody(t, "invalid trace id"), false, want{permanent: ReasonBadRequest, contains: "400 Bad Request: invalid trace id"}},
		{"400 status json", 400, map[string]string{"Content-Type": "application/json"}, []byte(`{"code":3,"message":"bad json span"}`), false, want{permanent: ReasonBadRequest, contains: ": bad json span"}},
		{"400 garbage proto", 400, proto, []byte{0xff, 0xff, 0xff}, false, want{permanent: ReasonBadRequest, contains: "3 bytes of protobuf that is not a google.rpc.Status"}},
		{"401", 401, nil, []byte("unauthorized"), false, want{permanent: ReasonUnauthorized, contains: "check headers"}},
		{"403", 403, nil, nil, false, want{permanent: ReasonUnauthorized, contains: "(empty body)"}},
		{"404", 404, nil, []byte("404 page not found"), false, want{permanent: ReasonNotFound, contains: "check the endpoint path, e.g. /v1/traces"}},
		{"405", 405, nil, nil, false, want{permanent: ReasonNotFound}},
		{"413", 413, nil, nil, false, want{permanent: ReasonTooLarge, contains: "lower batch.max_bytes"}},
		{"415", 415, nil, nil, false, want{permanent: ReasonBadRequest, contains: "415 Unsupported Media Type"}},
		{"redirect", 301, map[string]string{"Location": "https://x"}, nil, false, want{contains: "redirects are not followed"}},
		{"long body", 500, nil, []byte(strings.Repeat("y", 5000)), false, want{contains: strings.Repeat("y", 1024) + " …"}},
		{"cut body", 500, nil, []byte("partial"), true, want{contains: "partial …"}},
		{"invalid UTF-8", 400, nil, []byte("bad \xff byte"), false, want{permanent: ReasonBadRequest, contains: "bad \uFFFD byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			var warned []string
			err := tracesSignal.classifyHTTP(tt.code, h, tt.body, tt.cut, "http://tempo:4318/v1/traces", now, func(m string) { warned = append(warned, m) })
			check(t, err, tt.want)
			if tt.name == "200 warning only" && (len(warned) != 1 || warned[0] != "deprecated") {
				t.Errorf("warnings %q, want the partial_success message", warned)
			}
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	if n, msg, err := decodeResponse(nil); n != 0 || msg != "" || err != nil {
		t.Errorf("empty response = %d, %q, %v", n, msg, err)
	}
	if n, msg, err := decodeResponse(partialBody(t, 12, "why")); n != 12 || msg != "why" || err != nil {
		t.Errorf("partial response = %d, %q, %v", n, msg, err)
	}
	if _, _, err := decodeResponse([]byte{0x0a, 0xff}); err == nil {
		t.Error("a truncated response decoded")
	}
}

// FuzzClassifyHTTP checks that any answer is classified without a panic, that only 2xx
// can succeed, that 429/5xx are never permanent and other 4xx always are, that a
// partial success never claims more than the body says, and that messages stay short.
func FuzzClassifyHTTP(f *testing.F) {
	f.Add(200, "application/x-protobuf", []byte{0x0a, 0x04, 0x08, 0x05, 0x12, 0x00}, "")
	f.Add(400, "application/x-protobuf", []byte{0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'}, "")
	f.Add(400, "application/json", []byte(`{"message":"x"}`), "")
	f.Add(429, "text/plain", []byte("slow"), "5")
	f.Add(503, "", []byte("\xff\xfe"), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, code int, contentType string, body []byte, retryAfter string) {
		if code < 100 || code > 999 {
			return
		}
		h := http.Header{"Content-Type": {contentType}, "Retry-After": {retryAfter}}
		err := tracesSignal.classifyHTTP(code, h, body, false, "http://tempo:4318/v1/traces", time.Now(), nil)
		success := code >= 200 && code < 300
		if !success && err == nil {
			t.Fatalf("status %d classified as success", code)
		}
		if err == nil {
			return
		}
		reason, perm := pipeline.IsPermanent(err)
		switch {
		case success:
			if reason != ReasonPartialSuccess || pipeline.RejectedCount(err) <= 0 {
				t.Fatalf("2xx classified as %v", err)
			}
		case code == 429 || code >= 500:
			if perm {
				t.Fatalf("status %d classified permanent", code)
			}
		case code >= 400:
			if !perm {
				t.Fatalf("status %d classified retryable", code)
			}
		}
		if len(err.Error()) > 3*maxErrorText+400 {
			t.Fatalf("message of %d bytes", len(err.Error()))
		}
	})
}

// FuzzDecodeResponse feeds arbitrary bytes to the response decoder of both protocols.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x04, 0x08, 0x05, 0x12, 0x00})
	f.Add([]byte{0x0a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		n, _, err := decodeResponse(body)
		perr := tracesSignal.partialSuccess(body, "tempo:4317", nil)
		if err != nil || n <= 0 {
			if perr != nil {
				t.Fatalf("partialSuccess = %v for a response rejecting %d (decode error %v)", perr, n, err)
			}
			return
		}
		if got := pipeline.RejectedCount(perr); got <= 0 || int64(got) > n {
			t.Fatalf("rejected count %d for %d", got, n)
		}
		_ = fmt.Sprint(perr)
	})
}

// TestSplittableRefusals: refusals one batch of a request may cause are splittable,
// so the Sender pushes the batches apart; others drop the request whole.
func TestSplittableRefusals(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		err   error
		split bool
	}{
		{"grpc InvalidArgument", tracesSignal.classifyGRPC(status.Error(codes.InvalidArgument, "bad span"), "t"), true},
		{"grpc unmarshal", tracesSignal.classifyGRPC(status.Error(codes.Internal, "grpc: error unmarshalling request: proto: cannot parse invalid wire-format data"), "t"), true},
		{"grpc too large", tracesSignal.classifyGRPC(status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5 vs. 4)"), "t"), true},
		{"grpc unauthenticated", tracesSignal.classifyGRPC(status.Error(codes.Unauthenticated, "no"), "t"), false},
		{"grpc unimplemented", tracesSignal.classifyGRPC(status.Error(codes.Unimplemented, "no"), "t"), false},
		{"http 400", tracesSignal.classifyHTTP(400, http.Header{}, []byte("bad"), false, "u", now, nil), true},
		{"http 413", tracesSignal.classifyHTTP(413, http.Header{}, nil, false, "u", now, nil), true},
		{"http 401", tracesSignal.classifyHTTP(401, http.Header{}, nil, false, "u", now, nil), false},
		{"http 404", tracesSignal.classifyHTTP(404, http.Header{}, nil, false, "u", now, nil), false},
		{"http partial success", tracesSignal.partialSuccess(partialBody(t, 3, "bad"), "u", nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, perm := pipeline.IsPermanent(tt.err); !perm {
				t.Fatalf("%v is not permanent", tt.err)
			}
			if got := exporterhelper.IsSplittable(tt.err); got != tt.split {
				t.Errorf("splittable = %v, want %v (%v)", got, tt.split, tt.err)
			}
		})
	}
}
