package sentryexporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// benchEnvelope is an event envelope of about size bytes, with a message that
// compresses like a real stack trace (repetitive, not constant).
func benchEnvelope(b *testing.B, size int) []byte {
	b.Helper()
	var msg strings.Builder
	for i := 0; msg.Len() < size-600; i++ {
		msg.WriteString("main.handler(0xc000123456, 0x")
		msg.WriteString(strings.Repeat(string(rune('0'+i%10)), 4))
		msg.WriteString(")\n\t/app/internal/server/handler.go:")
		msg.WriteString(string(rune('1' + i%9)))
		msg.WriteString("42 +0x1d5\n")
	}
	env := sentryenv.Envelope{
		Header: map[string]any{"event_id": eventID(1), "dsn": appDSN, "sdk": map[string]any{"name": "sentry.go", "version": "0.50.0"}},
		Items: []sentryenv.Item{{Type: "event", Payload: []byte(`{"event_id":"` + eventID(1) +
			`","level":"error","platform":"go","message":` + quote(msg.String()) + `}`)}},
	}
	return env.Marshal()
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// BenchmarkExportEnvelope measures forwarding 4 KiB envelopes to an HTTP server on
// loopback: parse, header rewrite, gzip, POST, answer, acknowledgement.
func BenchmarkExportEnvelope(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"id":"00000000000000000000000000000001"}`)
	}))
	defer srv.Close()
	exp, err := New(Config{DSN: confval.Secret("http://" + upstreamKey + "@" + srv.Listener.Addr().String() + "/1")}, Settings{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	data := benchEnvelope(b, 4<<10)
	var wg sync.WaitGroup
	ack := func(err error) {
		if err != nil {
			b.Error(err)
		}
		wg.Done()
	}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		wg.Add(1)
		if err := exp.ExportEnvelope(ctx, pipeline.Envelope{Data: data, Ack: ack}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := exp.Shutdown(sctx); err != nil {
		b.Fatal(err)
	}
}
