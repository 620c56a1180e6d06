package jaegertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared(code == 0)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestMissingBinary(t *testing.T) {
	t.Setenv(BinaryEnv, filepath.Join(t.TempDir(), "no-jaeger"))
	_, err := StartIn(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "run `make backends`") || !strings.Contains(err.Error(), BinaryEnv) {
		t.Fatalf("StartIn = %v, want the command that builds Jaeger", err)
	}
}

func TestBinaryPath(t *testing.T) {
	t.Setenv(BinaryEnv, "")
	t.Setenv("OUTRIDER_CACHE", "/cache")
	if got := Binary(); got != "/cache/bin/jaeger-"+Version {
		t.Fatalf("Binary = %s", got)
	}
	t.Setenv(BinaryEnv, "/opt/jaeger")
	if got := Binary(); got != "/opt/jaeger" {
		t.Fatalf("Binary with %s = %s", BinaryEnv, got)
	}
}

// sendSpans exports a parent and a child span of one trace through exp and returns
// the trace ID.
func sendSpans(t *testing.T, ctx context.Context, exp sdktrace.SpanExporter, service string) trace.TraceID {
	t.Helper()
	res := resource.NewSchemaless(attribute.String("service.name", service), attribute.String("k8s.pod.name", "web-0"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	tr := tp.Tracer("jaegertest")
	ctx, parent := tr.Start(ctx, "GET /users", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 200)))
	_, child := tr.Start(ctx, "SELECT users", trace.WithSpanKind(trace.SpanKindClient))
	child.End()
	parent.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("export spans: %v", err)
	}
	return parent.SpanContext().TraceID()
}

func TestSharedReceivesOTLP(t *testing.T) {
	j := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name string
		exp  func() (sdktrace.SpanExporter, error)
	}{
		{"grpc", func() (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(j.OTLPGRPCEndpoint()), otlptracegrpc.WithInsecure())
		}},
		{"http", func() (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(j.OTLPHTTPEndpoint()+"/v1/traces"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, err := tt.exp()
			if err != nil {
				t.Fatal(err)
			}
			id := sendSpans(t, ctx, exp, "svc-"+tt.name)
			spans, err := j.WaitForTrace(ctx, id.String(), 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(spans) != 2 {
				t.Fatalf("got %d spans, want 2: %+v", len(spans), spans)
			}
			parent, child := spans[0], spans[1]
			if parent.Name != "GET /users" || child.Name != "SELECT users" {
				t.Fatalf("span names %q, %q", parent.Name, child.Name)
			}
			if parent.TraceID != id.String() || child.TraceID != id.String() {
				t.Errorf("trace IDs %s, %s, want %s", parent.TraceID, child.TraceID, id)
			}
			if parent.ParentSpanID != "" || child.ParentSpanID != parent.SpanID || len(child.SpanID) != 16 {
				t.Errorf("parent %q/%q, child %q/%q", parent.SpanID, parent.ParentSpanID, child.SpanID, child.ParentSpanID)
			}
			if parent.Service != "svc-"+tt.name || parent.Resource["k8s.pod.name"] != "web-0" || parent.Resource["service.name"] != parent.Service {
				t.Errorf("service %q, resource %v", parent.Service, parent.Resource)
			}
			if parent.Attributes["http.request.method"] != "GET" || parent.Attributes["http.response.status_code"] != "200" {
				t.Errorf("parent attributes %v", parent.Attributes)
			}
			for k := range child.Attributes {
				if strings.HasPrefix(k, jaegerAttrPrefix) {
					t.Errorf("jaeger annotation %q kept", k)
				}
			}
			if parent.Kind != "Server" || child.Kind != "Client" || parent.Scope != "jaegertest" {
				t.Errorf("kinds %q %q, scope %q", parent.Kind, child.Kind, parent.Scope)
			}
			if parent.Start.IsZero() || parent.End.Before(parent.Start) {
				t.Errorf("times %v..%v", parent.Start, parent.End)
			}
		})
	}
}

func TestGetTraceMissingAndInvalid(t *testing.T) {
	j := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spans, err := j.GetTrace(ctx, "0123456789abcdef0123456789abcdef")
	if spans != nil || err != nil {
		t.Fatalf("unknown trace: %v, %v; want nil, nil", spans, err)
	}
	if _, err := j.GetTrace(ctx, "xyz"); err == nil || !strings.Contains(err.Error(), "32 hexadecimal digits") {
		t.Fatalf("bad ID: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if _, err := j.WaitForTrace(short, "0123456789abcdef0123456789abcdef", 1); err == nil || !strings.Contains(err.Error(), "0 of 1 spans") {
		t.Fatalf("WaitForTrace of a missing trace: %v", err)
	}
}

func TestStopRestartKeepsPorts(t *testing.T) {
	j := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newExporter := func() sdktrace.SpanExporter {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(j.OTLPGRPCEndpoint()), otlptracegrpc.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		return exp
	}
	before := sendSpans(t, ctx, newExporter(), "before")
	if _, err := j.WaitForTrace(ctx, before.String(), 2); err != nil {
		t.Fatal(err)
	}
	grpcAddr, query := j.OTLPGRPCEndpoint(), j.QueryURL()

	j.Stop()
	if j.Running() {
		t.Fatal("Running after Stop")
	}
	if c, err := net.DialTimeout("tcp", grpcAddr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", grpcAddr)
	}
	j.Stop() // twice is safe

	if err := j.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if j.OTLPGRPCEndpoint() != grpcAddr || j.QueryURL() != query || !j.Running() {
		t.Fatalf("Restart moved Jaeger: %s %s -> %s %s", grpcAddr, query, j.OTLPGRPCEndpoint(), j.QueryURL())
	}
	after := sendSpans(t, ctx, newExporter(), "after")
	if _, err := j.WaitForTrace(ctx, after.String(), 2); err != nil {
		t.Fatal(err)
	}
	// Memory storage: what was stored before the restart is gone (documented).
	if spans, err := j.GetTrace(ctx, before.String()); err != nil || spans != nil {
		t.Fatalf("trace from before Restart: %d spans, %v; want none", len(spans), err)
	}
}

func TestConfigListensOnLoopbackOnly(t *testing.T) {
	j := &Jaeger{otlpGRPCPort: 1, otlpHTTPPort: 2, queryHTTPPort: 3, queryGRPCPort: 4}
	cfg := j.config()
	for _, want := range []string{"endpoint: 127.0.0.1:1\n", "endpoint: 127.0.0.1:2\n", "endpoint: 127.0.0.1:3\n", "endpoint: 127.0.0.1:4\n",
		"level: none", "max_traces: 100000", "enable_tracing: false"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	for _, line := range strings.Split(cfg, "\n") {
		if strings.Contains(line, "endpoint:") && !strings.Contains(line, "127.0.0.1:") {
			t.Errorf("non-loopback endpoint %q", line)
		}
	}
	for _, unwanted := range []string{"health", "zpages", "expvar", "zipkin", "remote_sampling"} {
		if strings.Contains(cfg, unwanted) {
			t.Errorf("config enables %s", unwanted)
		}
	}
}

func TestServerEnvDropsOTEL(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://10.0.0.1:4317")
	t.Setenv("JAEGERTEST_KEEP", "1")
	env := strings.Join(serverEnv(), "\n")
	if strings.Contains(env, "OTEL_EXPORTER_OTLP_ENDPOINT") || !strings.Contains(env, "JAEGERTEST_KEEP=1") {
		t.Fatalf("server environment:\n%s", env)
	}
}
