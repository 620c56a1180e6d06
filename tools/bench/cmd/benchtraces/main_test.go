package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == fakeArg {
		os.Exit(fakeMain(os.Args[2:]))
	}
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{
			name: "defaults",
			args: []string{"-outrider", "bin/outrider"},
			check: func(t *testing.T, o options) {
				if o.spans != 1_000_000 || o.clients != 4 || o.spansPerRequest != 100 || o.otelcolQueue != "memory" ||
					o.Timeout != 10*time.Minute || o.Only != "both" || o.Workdir != "" {
					t.Errorf("defaults %+v", o)
				}
				if !strings.HasSuffix(o.Otelcol, "/bin/otelcol-v0.160.0") {
					t.Errorf("default otelcol %q", o.Otelcol)
				}
			},
		},
		{
			name: "all set",
			args: []string{"-outrider", "a", "-otelcol", "b", "-spans", "10", "-clients", "2", "-spans-per-request", "50",
				"-otelcol-queue", "file", "-workdir", "w", "-timeout", "1m", "-only", "otelcol"},
			check: func(t *testing.T, o options) {
				if o.Outrider != "a" || o.Otelcol != "b" || o.spans != 10 || o.clients != 2 || o.spansPerRequest != 50 ||
					o.otelcolQueue != "file" || o.Workdir != "w" || o.Timeout != time.Minute || o.Only != "otelcol" {
					t.Errorf("parsed %+v", o)
				}
			},
		},
		{
			name: "profile",
			args: []string{"-outrider-cpuprofile", "cpu.out", "-profile-time", "3s"},
			check: func(t *testing.T, o options) {
				if o.profile != "cpu.out" || o.profileTime != 3*time.Second {
					t.Errorf("profile %q for %v", o.profile, o.profileTime)
				}
			},
		},
		{name: "short profile", args: []string{"-outrider-cpuprofile", "x", "-profile-time", "10ms"}, wantErr: "-profile-time must be at least 1s"},
		{name: "profile needs outrider", args: []string{"-outrider-cpuprofile", "x", "-only", "otelcol"}, wantErr: "profiles outrider"},
		{name: "zero spans", args: []string{"-spans", "0"}, wantErr: "-spans must be positive"},
		{name: "zero clients", args: []string{"-clients", "0"}, wantErr: "-clients must be positive"},
		{name: "one span per request", args: []string{"-spans-per-request", "1"}, wantErr: "-spans-per-request must be at least 2"},
		{name: "bad queue", args: []string{"-otelcol-queue", "disk"}, wantErr: "-otelcol-queue must be"},
		{name: "shared flags are checked", args: []string{"-timeout", "0s"}, wantErr: "-timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func testSetup(t *testing.T, queue string) runSetup {
	dir := t.TempDir()
	return runSetup{dir: dir, data: filepath.Join(dir, "data"), grpcPort: 4317, httpPort: 4318, sinkAddr: "127.0.0.1:9999", otelcolQueue: queue}
}

// TestOutriderConfigIsAccepted checks the rendered configuration against outrider's
// own parser and validation, so the benchmark breaks here, not at run time, when a
// key is renamed.
func TestOutriderConfigIsAccepted(t *testing.T) {
	run := testSetup(t, "memory")
	text, err := peer.Render(outriderTemplate, dataFor(run))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("outrider.yaml", []byte(text))
	if err != nil {
		t.Fatalf("outrider rejects the benchmark's configuration: %v\n%s", err, text)
	}
	if cfg.DataDir != run.data || cfg.Receivers.OTLP == nil || cfg.Receivers.OTLP.GRPC.Listen != "127.0.0.1:4317" ||
		cfg.Exporters.OTLP == nil || cfg.Exporters.OTLP.Endpoint != "http://127.0.0.1:9999" || cfg.Exporters.OTLP.Compression != "none" {
		t.Errorf("parsed %+v", cfg)
	}
	if cfg.Server.Listen != "127.0.0.1:0" || cfg.Server.Pprof {
		t.Errorf("server %+v, want an ephemeral port without pprof", cfg.Server)
	}
	run.pprofPort = 6060
	text, err = peer.Render(outriderTemplate, dataFor(run))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Parse("outrider.yaml", []byte(text)); err != nil {
		t.Fatalf("outrider rejects the profiling configuration: %v\n%s", err, text)
	}
	if cfg.Server.Listen != "127.0.0.1:6060" || !cfg.Server.Pprof {
		t.Errorf("server %+v, want pprof on 127.0.0.1:6060", cfg.Server)
	}
	args, err := outriderSystem("/bin/outrider").Configure(run)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(args, " ") != "agent --config "+filepath.Join(run.dir, "outrider.yaml") {
		t.Errorf("args %q", args)
	}
}

func TestOtelcolConfig(t *testing.T) {
	for _, queue := range []string{"memory", "file"} {
		t.Run(queue, func(t *testing.T) {
			run := testSetup(t, queue)
			args, err := otelcolSystem("/bin/otelcol").Configure(run)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(args[1])
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Extensions map[string]map[string]any `yaml:"extensions"`
				Receivers  struct {
					OTLP struct {
						Protocols map[string]map[string]string `yaml:"protocols"`
					} `yaml:"otlp"`
				} `yaml:"receivers"`
				Exporters map[string]struct {
					Endpoint     string          `yaml:"endpoint"`
					Compression  string          `yaml:"compression"`
					TLS          map[string]bool `yaml:"tls"`
					SendingQueue map[string]any  `yaml:"sending_queue"`
				} `yaml:"exporters"`
				Service struct {
					Extensions []string                       `yaml:"extensions"`
					Telemetry  map[string]map[string]string   `yaml:"telemetry"`
					Pipelines  map[string]map[string][]string `yaml:"pipelines"`
				} `yaml:"service"`
			}
			if err := yaml.Unmarshal(data, &cfg); err != nil {
				t.Fatalf("invalid YAML: %v\n%s", err, data)
			}
			exp, ok := cfg.Exporters["otlp_grpc"]
			if !ok || exp.Endpoint != "127.0.0.1:9999" || exp.Compression != "none" || !exp.TLS["insecure"] {
				t.Errorf("exporter %+v", cfg.Exporters)
			}
			if got := cfg.Receivers.OTLP.Protocols; len(got) != 1 || got["grpc"]["endpoint"] != "127.0.0.1:4317" {
				t.Errorf("receiver protocols %v", got)
			}
			p := cfg.Service.Pipelines["traces"]
			if strings.Join(p["receivers"], ",") != "otlp" || strings.Join(p["processors"], ",") != "batch" || strings.Join(p["exporters"], ",") != "otlp_grpc" {
				t.Errorf("pipeline %v", p)
			}
			if cfg.Service.Telemetry["metrics"]["level"] != "none" {
				t.Errorf("telemetry %v", cfg.Service.Telemetry)
			}
			persistent := exp.SendingQueue["storage"] == "file_storage" && cfg.Extensions["file_storage"]["directory"] == run.data &&
				strings.Join(cfg.Service.Extensions, ",") == "file_storage"
			if persistent != (queue == "file") {
				t.Errorf("queue %s: sending queue %v, extensions %v / %v", queue, exp.SendingQueue, cfg.Extensions, cfg.Service.Extensions)
			}
		})
	}
}

func TestBuildRequest(t *testing.T) {
	td := buildRequest(rand.New(rand.NewPCG(1, 2)), 101, time.Now())
	if td.SpanCount() != 101 || td.ResourceSpans().Len() != resourcesPerRequest {
		t.Fatalf("%d spans in %d resources", td.SpanCount(), td.ResourceSpans().Len())
	}
	roots := 0
	for _, rs := range td.ResourceSpans().All() {
		if _, ok := rs.Resource().Attributes().Get("service.name"); !ok {
			t.Error("resource without service.name")
		}
		for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
			if sp.Attributes().Len() != spanAttrs {
				t.Fatalf("span with %d attributes, want %d", sp.Attributes().Len(), spanAttrs)
			}
			if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() || sp.EndTimestamp() < sp.StartTimestamp() {
				t.Fatalf("span ids %s/%s times %v..%v", sp.TraceID(), sp.SpanID(), sp.StartTimestamp(), sp.EndTimestamp())
			}
			if sp.ParentSpanID().IsEmpty() {
				roots++
			}
		}
	}
	if roots == 0 || roots == 101 {
		t.Errorf("%d root spans of 101: want traces of several spans", roots)
	}
}

// flakyServer refuses its first requests with Unavailable, then counts like the sink.
type flakyServer struct {
	refuse atomic.Int64
	sink   *countingSink
}

func (f *flakyServer) export(req []byte) error {
	if f.refuse.Add(-1) >= 0 {
		return status.Error(codes.Unavailable, "not yet")
	}
	return f.sink.export(req)
}

func TestGenerateDeliversExactlyAndRetries(t *testing.T) {
	payloads, err := buildPayloads(2, 3, 100)
	if err != nil {
		t.Fatal(err)
	}
	sink := newCountingSink(1050, spanAttrs)
	flaky := &flakyServer{sink: sink}
	flaky.refuse.Store(2)
	srv, lis, serr, err := serveRaw(flaky)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop(); <-serr }()
	var st loadStats
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = generate(ctx, loadConfig{endpoint: lis.Addr().String(), spans: 1050, clients: 1, payloads: payloads, retryWait: time.Millisecond}, &st)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.Done():
	default:
		t.Fatal("sink not done after every span was accepted")
	}
	c := sink.Counts()
	if st.sent.Load() != 1050 || c.Spans != 1050 || c.Requests != 11 || st.retries.Load() != 2 || st.rejected.Load() != 0 || c.WrongAttrs != 0 {
		t.Errorf("sent %d, sink %+v, retries %d, rejected %d", st.sent.Load(), c, st.retries.Load(), st.rejected.Load())
	}
	if c.Reached.IsZero() || c.Last.Before(c.Reached) {
		t.Errorf("reached %v, last %v", c.Reached, c.Last)
	}
}

func TestGenerateStopsOnPermanentError(t *testing.T) {
	payloads, err := buildPayloads(2, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	srv, lis, serr, err := serveRaw(rejectAll{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop(); <-serr }()
	var st loadStats
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = generate(ctx, loadConfig{endpoint: lis.Addr().String(), spans: 100, clients: 2, payloads: payloads, retryWait: time.Millisecond}, &st)
	if err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("generate = %v, want the permanent error", err)
	}
	if st.sent.Load() != 0 || st.rejected.Load() == 0 {
		t.Errorf("sent %d rejected %d", st.sent.Load(), st.rejected.Load())
	}
}

type rejectAll struct{}

func (rejectAll) export([]byte) error { return status.Error(codes.InvalidArgument, "no") }

func TestRejectedSpans(t *testing.T) {
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(7)
	data, err := resp.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rejectedSpans(data); n != 7 || err != nil {
		t.Errorf("rejectedSpans = %d, %v", n, err)
	}
	if n, err := rejectedSpans(nil); n != 0 || err != nil {
		t.Errorf("empty response: %d, %v", n, err)
	}
	if _, err := rejectedSpans([]byte{0xff}); err == nil {
		t.Error("garbage response accepted")
	}
}

func testRunOptions(t *testing.T, timeout time.Duration, out io.Writer) runOptions {
	payloads, err := buildPayloads(4, 4, 100)
	if err != nil {
		t.Fatal(err)
	}
	return runOptions{
		workdir: t.TempDir(), spans: 1050, clients: 2, payloads: payloads, otelcolQueue: "memory",
		timeout: timeout, ready: 20 * time.Second, poll: 5 * time.Millisecond, progress: time.Minute,
		settle: 50 * time.Millisecond, stopGrace: 5 * time.Second, out: out,
	}
}

func TestMeasure(t *testing.T) {
	tests := []struct {
		mode        string
		timeout     time.Duration
		wantProblem string
		wantLost    int64
	}{
		{mode: "all", timeout: 20 * time.Second},
		{mode: "drop", timeout: 2 * time.Second, wantProblem: "only 950 of 1050 sent spans arrived", wantLost: 100},
		{mode: "exit", timeout: 20 * time.Second, wantProblem: "the process exited"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			var out bytes.Buffer
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			r, err := measureSystem(context.Background(), logger, fakeSystem("fake", tt.mode), testRunOptions(t, tt.timeout, &out))
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantProblem == "" {
				if r.problem != "" || !r.Complete || r.sent != 1050 || r.Delivered != 1050 || r.lost() != 0 {
					t.Fatalf("result %+v\n%s", r, out.String())
				}
				if r.Wall <= 0 || r.PeakRSS <= 0 || r.CPU < 0 || r.requests != 11 {
					t.Errorf("figures %+v", r)
				}
				if msgs := losses([]result{r}); len(msgs) != 0 {
					t.Errorf("losses %v", msgs)
				}
				return
			}
			if !strings.Contains(r.problem, tt.wantProblem) || r.Complete {
				t.Fatalf("problem %q, complete %v; want %q", r.problem, r.Complete, tt.wantProblem)
			}
			if r.lost() != tt.wantLost {
				t.Errorf("lost %d, want %d", r.lost(), tt.wantLost)
			}
			if msgs := strings.Join(losses([]result{r}), "\n"); !strings.Contains(msgs, tt.wantProblem) {
				t.Errorf("losses do not report the problem: %s", msgs)
			}
			if tt.wantLost > 0 && !strings.Contains(strings.Join(losses([]result{r}), "\n"), "SPANS LOST") {
				t.Error("loss not reported loudly")
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	results := []result{
		{Figures: measure.Figures{Name: peer.Outrider, Delivered: 1000, Complete: true, Wall: 2 * time.Second, CPU: time.Second, PeakRSS: 20 * measure.MiB},
			want: 1000, sent: 1000, requests: 10, load: "0.50 0.40 0.30"},
		{Figures: measure.Figures{Name: peer.Otelcol, Delivered: 900, Complete: true, Wall: time.Second, CPU: 2 * time.Second, PeakRSS: 100 * measure.MiB},
			want: 1000, sent: 1000, requests: 5, retries: 3, load: "1.00 0.50 0.40"},
	}
	var b bytes.Buffer
	if err := printTable(&b, options{}, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"system    spans_sent  spans_received  lost  wall_s  spans/s  cpu_s  spans/cpu_s  peak_rss_MB  batches_out  retries  load_avg        \n",
		"outrider  1000        1000            0     2.00    500      1.00   1000         20.0         10           0        0.50 0.40 0.30  \n",
		"otelcol   1000        900             100   1.00    900      2.00   450          100.0        5            3        1.00 0.50 0.40  \n",
		"ratio (outrider/otelcol): spans per CPU-second 2.22×, peak RSS 0.20×\n(MB = 2^20 bytes;",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestLosses(t *testing.T) {
	dup := result{Figures: measure.Figures{Name: "x", Delivered: 12, Complete: true}, want: 10, sent: 10, rejected: 1, wrongAttrs: 3}
	lost := result{Figures: measure.Figures{Name: "y", Delivered: 8}, want: 10, sent: 10, problem: "only 8 of 10 sent spans arrived"}
	msgs := strings.Join(losses([]result{dup, lost}), "\n")
	for _, want := range []string{"DUPLICATES: x delivered 2", "SPANS REJECTED: x refused 1", "ALTERED: x delivered 3",
		"y: only 8 of 10", "SPANS LOST: y delivered 8 of the 10 spans it accepted (2 lost)"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("losses lack %q: %s", want, msgs)
		}
	}
	if msgs := losses([]result{{Figures: measure.Figures{Name: "z", Delivered: 10, Complete: true}, want: 10, sent: 10}}); len(msgs) != 0 {
		t.Errorf("losses of a clean run: %v", msgs)
	}
}

func TestSinkCountsAndRefusesGarbage(t *testing.T) {
	payloads, err := buildPayloads(8, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	sink := newCountingSink(150, spanAttrs)
	if err := sink.Serve(); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	conn, err := grpc.NewClient(sink.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp []byte
	if err := conn.Invoke(ctx, exportMethod, &payloads[0].data, &resp); err != nil {
		t.Fatal(err)
	}
	if c := sink.Counts(); c.Spans != 100 || c.Requests != 1 || !c.Reached.IsZero() || c.Last.IsZero() {
		t.Fatalf("after one request: %+v", c)
	}
	garbage := []byte{0xff, 0xff}
	if err := conn.Invoke(ctx, exportMethod, &garbage, &resp); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("garbage: %v, want InvalidArgument", err)
	}
	if err := conn.Invoke(ctx, exportMethod, &payloads[0].data, &resp); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.Done():
	default:
		t.Fatal("Done not closed at 200 of 150 spans")
	}
	if c := sink.Counts(); c.Spans != 200 || c.Requests != 2 || c.Reached.IsZero() || c.WrongAttrs != 0 {
		t.Fatalf("after two requests: %+v", c)
	}
}
