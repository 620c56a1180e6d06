package parse

import (
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

// Lines as common logging libraries and servers write them, read with format auto.
func TestRealWorld(t *testing.T) {
	const (
		e = pipeline.LevelError
		w = pipeline.LevelWarn
		i = pipeline.LevelInfo
		d = pipeline.LevelDebug
	)
	runLines(t, mustNew(t, Config{}), []lineCase{
		{"zap production", `{"level":"error","ts":1704207845.123456,"caller":"server/handler.go:42","msg":"request failed","trace_id":"` + tid + `","span_id":"` + sid + `","request_id":"a1b2","error":"context deadline exceeded","stacktrace":"main.handler\n\t/app/main.go:42"}`,
			fields{e, "2024-01-02T15:04:05.123456Z", tid, sid, "a1b2"}},
		{"zap development console", "2024-01-02T15:04:05.123Z\tERROR\tserver/handler.go:42\trequest failed\t{\"attempt\": 3}",
			fields{Level: e, Time: "2024-01-02T15:04:05.123Z"}},
		{"logrus json", `{"level":"warning","msg":"disk almost full","request_id":"r-1","time":"2024-01-02T15:04:05+01:00"}`,
			fields{Level: w, Time: "2024-01-02T14:04:05Z", Req: "r-1"}},
		{"logrus text", `time="2024-01-02T15:04:05+01:00" level=warning msg="disk almost full" request_id=r-1`,
			fields{Level: w, Time: "2024-01-02T14:04:05Z", Req: "r-1"}},
		{"zerolog", `{"level":"info","trace_id":"` + tid + `","time":"2024-01-02T15:04:05Z","message":"started"}`,
			fields{Level: i, Time: "2024-01-02T15:04:05Z", Trace: tid}},
		{"zerolog unix time", `{"level":"debug","time":1704207845,"message":"tick"}`,
			fields{Level: d, Time: "2024-01-02T15:04:05Z"}},
		{"zerolog console", "3:04PM INF started trace_id=" + tid + " port=8080",
			fields{Level: i, Trace: tid}},
		{"slog json", `{"time":"2024-01-02T15:04:05.123456789+02:00","level":"INFO","msg":"hello","trace_id":"` + tid + `","span_id":"` + sid + `"}`,
			fields{Level: i, Time: "2024-01-02T13:04:05.123456789Z", Trace: tid, Span: sid}},
		{"slog text", `time=2024-01-02T15:04:05.123+02:00 level=ERROR msg="db down" err="dial tcp: i/o timeout" request_id=r-77`,
			fields{Level: e, Time: "2024-01-02T13:04:05.123Z", Req: "r-77"}},
		{"slog default logger", "2024/01/02 15:04:05 WARN cache miss key=users",
			fields{Level: w, Time: "2024-01-02T15:04:05Z"}},
		{"bunyan", `{"name":"api","hostname":"web-1","pid":7,"req_id":"b-9","level":50,"err":{"message":"boom","stack":"Error: boom\n    at x"},"msg":"boom","time":"2024-01-02T15:04:05.123Z","v":0}`,
			fields{Level: e, Time: "2024-01-02T15:04:05.123Z", Req: "b-9"}},
		{"pino", `{"level":30,"time":1704207845123,"pid":7,"hostname":"web-1","req":{"id":"req-1","method":"GET","url":"/"},"msg":"request completed","responseTime":12}`,
			fields{Level: i, Time: "2024-01-02T15:04:05.123Z"}},
		{"python json logger with otel", `{"asctime": "2024-01-02 15:04:05,123", "levelname": "ERROR", "name": "app", "message": "boom", "otelTraceID": "` + tid + `", "otelSpanID": "` + sid + `", "otelServiceName": "app"}`,
			fields{Level: e, Trace: tid, Span: sid}},
		{"structlog", `{"event": "login", "user": "bob", "level": "info", "timestamp": "2024-01-02T15:04:05.123456Z", "request_id": "3f1c"}`,
			fields{Level: i, Time: "2024-01-02T15:04:05.123456Z", Req: "3f1c"}},
		{"ecs", `{"@timestamp":"2024-01-02T15:04:05.123Z","log.level":"ERROR","message":"x","ecs.version":"1.2.0","service.name":"svc","trace.id":"` + tid + `","transaction.id":"aaaaaaaaaaaaaaaa","span.id":"` + sid + `"}`,
			fields{e, "2024-01-02T15:04:05.123Z", tid, sid, ""}},
		{"ecs nested", `{"@timestamp":"2024-01-02T15:04:05.123Z","log":{"level":"warn","logger":"app"},"trace":{"id":"` + tid + `"},"span":{"id":"` + sid + `"},"http":{"request_id":"h-1"}}`,
			fields{w, "2024-01-02T15:04:05.123Z", tid, sid, "h-1"}},
		{"go-kit logfmt", `ts=2024-01-02T15:04:05.123Z caller=main.go:42 level=warn msg="retrying" err="timeout"`,
			fields{Level: w, Time: "2024-01-02T15:04:05.123Z"}},
		{"heroku router", `at=info method=GET path="/" host=app.example request_id=8601b555-6a83-4c12-8269-97c8533cda0e fwd="1.2.3.4" status=200`,
			fields{Req: "8601b555-6a83-4c12-8269-97c8533cda0e"}},
		{"nginx access", `10.0.0.1 - - [02/Jan/2024:15:04:05 +0000] "GET /api/items?id=3 HTTP/1.1" 500 12 "-" "curl/8.4.0" request_id=5f1e2d traceparent=` + tp,
			fields{Trace: tid, Span: sid, Req: "5f1e2d"}},
		{"nginx error", `2024/01/02 15:04:05 [error] 29#29: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: _, request: "GET / HTTP/1.1"`,
			fields{Level: e, Time: "2024-01-02T15:04:05Z"}},
		{"spring boot", `2024-01-02 15:04:05.123 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() threw exception`,
			fields{Level: e, Time: "2024-01-02T15:04:05.123Z"}},
		{"spring boot 3", `2024-01-02T15:04:05.123+01:00  WARN 1 --- [demo] [nio-8080-exec-1] c.e.demo.Controller : slow traceId=` + tid + ` spanId=` + sid,
			fields{w, "2024-01-02T14:04:05.123Z", tid, sid, ""}},
		{"log4j", `[2024-01-02 15:04:05,123] INFO [main] com.example.App - started request_id=abc`,
			fields{Level: i, Time: "2024-01-02T15:04:05.123Z", Req: "abc"}},
		{"python basic", "ERROR:root:something broke",
			fields{Level: e}},
		{"python format", "2024-01-02 15:04:05,123 - app - WARNING - disk low",
			fields{Level: w, Time: "2024-01-02T15:04:05.123Z"}},
		{"klog", "E0102 15:04:05.123456       1 reflector.go:138] failed to list *v1.Pod",
			fields{Level: e}},
		{"rails", `I, [2024-01-02T15:04:05.123456 #1]  INFO -- : Started GET "/" for 10.0.0.1`,
			fields{Level: i}},
		{"go panic", "panic: runtime error: invalid memory address or nil pointer dereference",
			fields{}},
		{"node error", "Error: ENOENT: no such file or directory, open '/app/x'",
			fields{Level: e}},
		{"empty", "", fields{}},
		{"message mentioning errors", "retrying after error in handler (attempt 3)",
			fields{}},
	})
}

func realWorldPlain() []string {
	return []string{
		"3:04PM INF started trace_id=" + tid + " port=8080",
		"2024/01/02 15:04:05 WARN cache miss key=users",
		`10.0.0.1 - - [02/Jan/2024:15:04:05 +0000] "GET / HTTP/1.1" 500 12 request_id=5f1e2d traceparent=` + tp,
		`2024/01/02 15:04:05 [error] 29#29: *1 connect() failed (111: Connection refused)`,
		`2024-01-02 15:04:05.123 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() threw exception`,
		"E0102 15:04:05.123456       1 reflector.go:138] failed to list *v1.Pod",
		"handled traceparent: " + tp + " in 3 ms",
		"ERROR:root:something broke",
		"",
	}
}
