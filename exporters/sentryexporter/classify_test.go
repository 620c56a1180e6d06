package sentryexporter

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestClassify(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const id = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name      string
		code      int
		header    map[string]string
		body      string
		cut       bool
		permanent string // drop reason; "" for nil or retryable
		retryable bool
		after     time.Duration
		want      []string // fragments of the error
	}{
		{name: "200", code: 200},
		{name: "202", code: 202},
		{name: "500", code: 500, body: "oops", retryable: true, want: []string{"500 Internal Server Error", id, "oops"}},
		{name: "503 with Retry-After", code: 503, header: map[string]string{"Retry-After": "12"}, retryable: true, after: 12 * time.Second},
		{name: "429 without limits for the envelope", code: 429, header: map[string]string{"Retry-After": "3"}, retryable: true, after: 3 * time.Second},
		{name: "400 with Sentry's detail", code: 400, body: `{"detail":"invalid event envelope","causes":["missing newline after header"]}`,
			permanent: ReasonBadRequest, want: []string{"400 Bad Request", "invalid event envelope (missing newline after header)"}},
		{name: "400 with text", code: 400, body: "  bad things  ", permanent: ReasonBadRequest, want: []string{": bad things"}},
		{name: "400 with a cut body", code: 400, body: `{"detail":"x`, cut: true, permanent: ReasonBadRequest, want: []string{`{"detail":"x …`}},
		{name: "413", code: 413, body: `{"detail":"envelope exceeded size limits"}`, permanent: ReasonTooLarge,
			want: []string{"envelope exceeded size limits", "size limits"}},
		{name: "401", code: 401, body: `{"detail":"missing authorization information"}`, permanent: ReasonUnauthorized,
			want: []string{"missing authorization information", "check the public key in dsn"}},
		{name: "403", code: 403, body: `{"detail":"event submission rejected with_reason: ProjectId"}`, permanent: ReasonUnauthorized,
			want: []string{"ProjectId", "check the public key in dsn"}},
		{name: "404", code: 404, permanent: ReasonNotFound, want: []string{"(empty body)", "/api/<project_id>/envelope/"}},
		{name: "422", code: 422, permanent: ReasonBadRequest},
		{name: "301", code: 301, retryable: true, want: []string{"redirects"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			err := classify(tt.code, h, []byte(tt.body), tt.cut, id, now)
			reason, perm := pipeline.IsPermanent(err)
			after, _ := pipeline.RetryAfter(err)
			switch {
			case tt.permanent != "":
				if !perm || reason != tt.permanent {
					t.Fatalf("err = %v, want permanent %s", err, tt.permanent)
				}
			case tt.retryable:
				if err == nil || perm {
					t.Fatalf("err = %v, want retryable", err)
				}
				if after != tt.after {
					t.Errorf("retry after %v, want %v", after, tt.after)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func TestThrottledAndLimitedErrors(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, err := range []error{
		throttledError([]byte(`{"detail":"event submission rejected with_reason: Usage"}`), false, "abc", "error", now.Add(90*time.Second), now),
		limitedError("abc", "error", now.Add(90*time.Second), now),
	} {
		if after, ok := pipeline.RetryAfter(err); !ok || after != 90*time.Second {
			t.Errorf("%v: retry after %v %v", err, after, ok)
		}
		if _, perm := pipeline.IsPermanent(err); perm || !errors.Is(err, errRateLimited) {
			t.Errorf("%v: not a retryable rate limit", err)
		}
		if !strings.Contains(err.Error(), "category error") || !strings.Contains(err.Error(), "1m30s") {
			t.Errorf("%q does not say what is limited for how long", err)
		}
	}
}

func TestErrorText(t *testing.T) {
	long := strings.Repeat("é", maxErrorText)
	tests := []struct {
		name, body string
		cut        bool
		want       string
	}{
		{"empty", "", false, "(empty body)"},
		{"detail", `{"detail":"bad"}`, false, "bad"},
		{"detail and causes", `{"detail":"bad","causes":["a","b"]}`, false, "bad (a; b)"},
		{"json without detail", `{"error":"x"}`, false, `{"error":"x"}`},
		{"invalid UTF-8", "a\xffb", false, "a\uFFFDb"},
		{"long", long, false, strings.ToValidUTF8(long[:maxErrorText], "") + " …"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorText([]byte(tt.body), tt.cut); got != tt.want {
				t.Errorf("errorText = %q, want %q", got, tt.want)
			}
		})
	}
}
