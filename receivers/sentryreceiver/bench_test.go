package sentryreceiver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// countQueue counts entries and keeps none.
type countQueue struct{ n int }

func (q *countQueue) Append(_ context.Context, _ []byte) error { q.n++; return nil }

func benchmarkEndpoint(b *testing.B, process ProcessFunc) {
	data := sentryGoEnvelopes(b)["sentry-go-exception.envelope"]
	cfg := testConfig()
	r := New(cfg, Settings{Queue: &countQueue{}, Process: process})
	h := r.newHTTPServer().Handler
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/42/envelope/", bytes.NewReader(data))
		req.Header.Set("X-Sentry-Auth", authValue)
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkEnvelopeEndpoint is one sentry-go exception envelope through the handler
// without a Process hook (the event is validated, not re-encoded).
func BenchmarkEnvelopeEndpoint(b *testing.B) { benchmarkEndpoint(b, nil) }

// BenchmarkEnvelopeEndpointProcess adds a hook, so the event is re-encoded.
func BenchmarkEnvelopeEndpointProcess(b *testing.B) {
	benchmarkEndpoint(b, func(ev map[string]any) bool { ev["environment"] = "prod"; return true })
}
