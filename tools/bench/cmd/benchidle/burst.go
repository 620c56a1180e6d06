package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

// burstSize is what one burst sends: log lines appended to the application's file,
// OTLP/gRPC trace requests of spansPerRequest spans, and Sentry events.
type burstSize struct {
	lines, traceRequests, spansPerRequest, events int
}

// deliveryTimeout bounds how long a burst may take to arrive at the backends.
const deliveryTimeout = 2 * time.Minute

// sendBurst sends one burst to the sidecar and waits until the backends have all of
// it; delivered says what arrived, problem what did not.
func sendBurst(ctx context.Context, s *sidecar, b *backends, n burstSize, seq int) (delivered, problem string) {
	began := time.Now()
	marker := fmt.Sprintf("benchidle-burst-%d-%s", seq, randomHex(4))
	spansBefore := b.otlp.spans.Load()
	eventsBefore := len(b.sentry.Events())
	if err := appendLines(s.logFile(), marker, n.lines); err != nil {
		return "", fmt.Sprintf("write the log burst: %v", err)
	}
	if err := sendTraces(ctx, s.otlpGRPC, n.traceRequests, n.spansPerRequest); err != nil {
		return "", fmt.Sprintf("send the trace burst: %v", err)
	}
	if err := sendEvents(ctx, s.sentry, s.sentryKey, marker, n.events); err != nil {
		return "", fmt.Sprintf("send the Sentry burst: %v", err)
	}
	wantSpans := int64(n.traceRequests * n.spansPerRequest)
	deadline := time.Now().Add(deliveryTimeout)
	for b.otlp.spans.Load()-spansBefore < wantSpans || len(b.sentry.Events())-eventsBefore < n.events {
		if time.Now().After(deadline) {
			return "", fmt.Sprintf("after %v the sinks have %d of %d spans and %d of %d events",
				deliveryTimeout, b.otlp.spans.Load()-spansBefore, wantSpans, len(b.sentry.Events())-eventsBefore, n.events)
		}
		select {
		case <-ctx.Done():
			return "", "interrupted during the burst"
		case <-time.After(50 * time.Millisecond):
		}
	}
	got, err := b.loki.WaitCount(ctx, `{service_name=~".+"} |= "`+marker+`"`, began.Add(-time.Minute), n.lines, time.Until(deadline))
	if err != nil {
		return "", fmt.Sprintf("Loki has %d of the %d burst lines: %v", len(got), n.lines, err)
	}
	return fmt.Sprintf("%d lines, %d spans, %d events in %v", len(got), b.otlp.spans.Load()-spansBefore,
		len(b.sentry.Events())-eventsBefore, time.Since(began).Round(time.Millisecond)), ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// appendLines appends n JSON lines of about 200 bytes stamped now, each holding
// marker, to path.
func appendLines(path, marker string, n int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	now := time.Now().UTC()
	for i := range n {
		buf.WriteString(`{"time":"`)
		buf.WriteString(now.Add(time.Duration(i) * time.Microsecond).Format(time.RFC3339Nano))
		buf.WriteString(`","level":"info","msg":"GET /api/orders answered 200","burst":"`)
		buf.WriteString(marker)
		buf.WriteString(`","line":`)
		buf.WriteString(strconv.Itoa(i))
		buf.WriteString(`,"trace_id":"`)
		buf.WriteString(randomHex(16))
		buf.WriteString(`","duration_ms":12}` + "\n")
		if buf.Len() > 64<<10 {
			if _, err := f.Write(buf.Bytes()); err != nil {
				f.Close()
				return err
			}
			buf.Reset()
		}
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sendTraces sends requests OTLP/gRPC requests of spans spans each to addr.
func sendTraces(ctx context.Context, addr string, requests, spans int) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	for range requests {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "web")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("benchidle")
		now := time.Now()
		var trace pcommon.TraceID
		_, _ = rand.Read(trace[:])
		for i := range spans {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(trace)
			var id pcommon.SpanID
			_, _ = rand.Read(id[:])
			sp.SetSpanID(id)
			sp.SetName("GET /api/orders")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i+5) * time.Millisecond)))
			a := sp.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutStr("url.path", "/api/orders")
			a.PutInt("http.response.status_code", 200)
			a.PutStr("server.address", "web.shop.svc")
		}
		if err := exportRetrying(ctx, client, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
			return err
		}
	}
	return nil
}

// exportRetrying sends req, again after a pause while the agent answers that it is
// busy (RESOURCE_EXHAUSTED, UNAVAILABLE), as an OTLP exporter does, for at most a
// minute.
func exportRetrying(ctx context.Context, client ptraceotlp.GRPCClient, req ptraceotlp.ExportRequest) error {
	deadline := time.Now().Add(time.Minute)
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := client.Export(rctx, req)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			return nil
		case codes.ResourceExhausted, codes.Unavailable:
			if time.Now().After(deadline) {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		default:
			return err
		}
	}
}

// sendEvents posts n Sentry error events, each of its own fingerprint so that the
// limiter holds none back, to the Sentry endpoint at addr.
func sendEvents(ctx context.Context, addr, key, marker string, n int) error {
	url := "http://" + addr + "/api/1/envelope/?sentry_key=" + key
	for i := range n {
		id := randomHex(16)
		event := fmt.Sprintf(`{"event_id":%q,"timestamp":%d,"platform":"go","level":"error",`+
			`"exception":{"values":[{"type":"OrderError%d","value":"order %d failed (%s)",`+
			`"stacktrace":{"frames":[{"function":"main.handle%d","module":"main","filename":"main.go","lineno":%d}]}}]}}`,
			id, time.Now().Unix(), i, i, marker, i, 10+i)
		body := sentryenv.NewEventEnvelope(id, []byte(event), time.Now())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-sentry-envelope")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("event %d: %s", i, resp.Status)
		}
	}
	return nil
}
