package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/grpcraw"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
)

// The hostile tests run the agent as the injector runs it in a pod — the container's
// default memory limit of 96 MiB, a soft Go heap limit of 80% of it
// (runtime.memory_limit, inject/agentconfig.go) — in a memory cgroup limited to
// 96 MiB when the machine lets the test create one, and send it what an attacker
// would. After each attack the agent must be alive, its peak RSS (VmHWM) under
// 96 MiB, and a normal client's data must reach the real backend.

const (
	sidecarLimit   = 96 << 20 // inject.DefaultMemoryLimit
	sidecarSoftMiB = 76       // 80% of it, rounded down to MiB, as the injector sets it
)

// hostileAgent is one agent under attack.
type hostileAgent struct {
	*agentProc
	dir, cfgPath      string
	grpc, http, entry string // OTLP gRPC and HTTP, Sentry (host:port)
	metrics           string
	cgroup            string // the agent's memory cgroup directory, or ""
}

// hostileConfig writes an agent config with every receiver at its default limits,
// logs to lokiURL, traces to jaegerGRPC (empty: none) and errors to sentryDSN.
func hostileConfig(t *testing.T, service, lokiURL, jaegerGRPC, sentryDSN string) *hostileAgent {
	t.Helper()
	ports, err := backendtest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	a := &hostileAgent{
		dir:   t.TempDir(),
		grpc:  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		http:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
		entry: fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}
	traces := ""
	if jaegerGRPC != "" {
		traces = fmt.Sprintf("  otlp: {endpoint: \"http://%s\", batch: {max_wait: 200ms}, retry: {initial_interval: 100ms, max_interval: 1s}}\n", jaegerGRPC)
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app, environment: e2e}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
runtime: {memory_limit: %[8]dMiB}
receivers:
  otlp: {grpc: {listen: "%[3]s"}, http: {listen: "%[4]s"}}
  sentry: {listen: "%[5]s", public_key: hostile-key}
exporters:
  loki: {url: %[6]s, batch: {max_wait: 200ms}}
  sentry: {dsn: "%[7]s"}
%[9]s`, a.dir, service, a.grpc, a.http, a.entry, lokiURL, sentryDSN, sidecarSoftMiB, traces)
	a.cfgPath = filepath.Join(a.dir, "outrider.yaml")
	writeFile(t, a.cfgPath, cfg)
	return a
}

// start runs the agent, in a 96 MiB memory cgroup when one can be made, and waits
// for its receivers.
func (a *hostileAgent) start(t *testing.T) {
	t.Helper()
	if a.cgroup == "" {
		a.cgroup = memoryCgroup(t)
	}
	logPath := filepath.Join(a.dir, fmt.Sprintf("agent-%d.log", time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if a.cgroup != "" {
		// The shell joins the cgroup, then becomes the agent: every byte it allocates
		// is charged there.
		cmd = exec.Command("/bin/sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, a.cgroup, outriderBin, "agent", "--config", a.cfgPath)
	} else {
		cmd = exec.Command(outriderBin, "agent", "--config", a.cfgPath)
	}
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%dMiB", sidecarSoftMiB))
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			p.dumpLog()
		}
	})
	a.agentProc = p
	a.metrics = waitListen(t, p)
	waitLog(t, p, "otlp receiver listening")
	waitLog(t, p, "sentry endpoint listening")
}

// memoryCgroup creates a memory cgroup limited to 96 MiB under the test's own
// (cgroup v2 memory.max, or v1 memory.limit_in_bytes) and returns its directory, or
// "" with a log line when the machine does not allow it; it is removed at cleanup.
func memoryCgroup(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Logf("no memory cgroup (%v): GOMEMLIMIT and VmHWM only", err)
		return ""
	}
	var dir, limitFile string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			base := filepath.Join("/sys/fs/cgroup", parts[2])
			if c, err := os.ReadFile(filepath.Join(base, "cgroup.controllers")); err == nil && strings.Contains(string(c), "memory") && dir == "" {
				dir, limitFile = base, "memory.max"
			}
		case strings.Contains(","+parts[1]+",", ",memory,"):
			dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes"
		}
	}
	if dir == "" {
		t.Logf("no memory cgroup controller: GOMEMLIMIT and VmHWM only")
		return ""
	}
	cg := filepath.Join(dir, fmt.Sprintf("outrider-hostile-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Logf("cannot create a memory cgroup under %s (%v): GOMEMLIMIT and VmHWM only", dir, err)
		return ""
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ { // empty once the agent has exited
			if os.Remove(cg) == nil || errors.Is(os.Remove(cg), os.ErrNotExist) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove cgroup %s", cg)
	})
	if err := os.WriteFile(filepath.Join(cg, limitFile), []byte(strconv.Itoa(sidecarLimit)), 0o644); err != nil {
		t.Logf("cannot limit cgroup %s (%v): GOMEMLIMIT and VmHWM only", cg, err)
		return ""
	}
	t.Logf("agent runs in memory cgroup %s with %s = %d", cg, limitFile, sidecarLimit)
	return cg
}

// procStatusKB returns a "VmHWM"-style field of /proc/PID/status in bytes.
func procStatusKB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// checkAlive asserts that the agent survived attack with its peak RSS under the
// sidecar's limit, and logs the answer and the peak for the record.
func (a *hostileAgent) checkAlive(t *testing.T, attack, answer string) {
	t.Helper()
	select {
	case <-a.exited:
		t.Fatalf("%s: the agent died: %v", attack, a.err)
	default:
	}
	pid := a.cmd.Process.Pid
	hwm, err := procStatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatalf("%s: %v", attack, err)
	}
	rss, _ := procStatusKB(pid, "VmRSS")
	cg := ""
	if a.cgroup != "" {
		for _, f := range []string{"memory.peak", "memory.max_usage_in_bytes"} {
			if b, err := os.ReadFile(filepath.Join(a.cgroup, f)); err == nil {
				cg = fmt.Sprintf(", cgroup %s %.1f MiB (page cache included)", f, float64(atoi64(string(b)))/(1<<20))
			}
		}
	}
	t.Logf("ATTACK %s: answer %s; agent alive, peak RSS (VmHWM) %.1f MiB, RSS now %.1f MiB%s",
		attack, answer, float64(hwm)/(1<<20), float64(rss)/(1<<20), cg)
	if hwm >= sidecarLimit {
		t.Errorf("%s: peak RSS %.1f MiB, over the sidecar's %d MiB", attack, float64(hwm)/(1<<20), sidecarLimit>>20)
	}
}

func atoi64(s string) int64 { n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64); return n }

// deepValue returns the protobuf of an AnyValue nested depth lists deep, built back
// to front (no recursion, no quadratic copying).
func deepValue(depth int) []byte {
	buf := make([]byte, 12*depth+16)
	p := len(buf)
	put := func(b ...byte) { p -= len(b); copy(buf[p:], b) }
	put(0x0a, 1, 'x') // string_value "x"
	var tmp [10]byte
	for i := 0; i < depth; i++ {
		put(protowire.AppendVarint(tmp[:0], uint64(len(buf)-p))...)
		put(0x0a) // ArrayValue.values
		put(protowire.AppendVarint(tmp[:0], uint64(len(buf)-p))...)
		put(0x2a) // AnyValue.array_value
	}
	return buf[p:]
}

// depthFor returns the depth whose deepValue is at most size bytes.
func depthFor(size int) int {
	lo, hi := 1, size/4
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(deepValue(mid)) <= size {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func wrap(num protowire.Number, inner []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
}

// deepLogs is an ExportLogsServiceRequest of about size bytes: one log record whose
// body is nested as deep as fits.
func deepLogs(size int) []byte {
	return wrap(1, wrap(2, wrap(2, wrap(5, deepValue(depthFor(size-64))))))
}

// deepTraces is an ExportTraceServiceRequest of about size bytes: one valid span
// whose attribute "deep" is nested as deep as fits.
func deepTraces(size int) []byte {
	kv := append(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "deep"), wrap(2, deepValue(depthFor(size-128)))...)
	span := append(wrap(1, bytes.Repeat([]byte{7}, 16)), wrap(2, bytes.Repeat([]byte{8}, 8))...)
	span = append(span, protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), "deep-span")...)
	span = append(span, wrap(9, kv)...)
	return wrap(1, wrap(2, wrap(2, span)))
}

// deepJSON is an OTLP/JSON request of about size bytes whose log body (or span
// attribute) is nested as deep as fits.
func deepJSON(size int, logs bool) []byte {
	const open, close = `{"arrayValue":{"values":[`, `]}}`
	n := (size - 256) / (len(open) + len(close))
	v := strings.Repeat(open, n) + `{"stringValue":"x"}` + strings.Repeat(close, n)
	if logs {
		return []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":` + v + `}]}]}]}`)
	}
	return []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"07070707070707070707070707070707","spanId":"0808080808080808","name":"deep","attributes":[{"key":"deep","value":` + v + `}]}]}]}]}`)
}

func postHostile(ctx context.Context, url, contentType string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}

func grpcConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

const (
	grpcTraces = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	grpcLogs   = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
)

func exportGRPC(ctx context.Context, cc *grpc.ClientConn, method string, body []byte) error {
	var out []byte
	return cc.Invoke(ctx, method, body, &out, grpc.ForceCodecV2(grpcraw.Codec{}))
}

// sendNormalLogs sends one log record with marker over OTLP/HTTP and waits until
// Loki has it.
func (a *hostileAgent) sendNormalLogs(t *testing.T, lokiQuery func(marker string) bool, marker string) {
	t.Helper()
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("normal client " + marker)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		code, msg, err := postHostile(ctx, "http://"+a.http+"/v1/logs", "application/x-protobuf", body)
		if err == nil && code == 200 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("a normal client's logs after the attack: %d %q %v", code, msg, err)
		}
		time.Sleep(200 * time.Millisecond) // 429 while the attack drains
	}
	if !lokiQuery(marker) {
		t.Fatalf("the normal client's log line %q did not reach Loki", marker)
	}
}

// TestHostileLogsAndSentry attacks the log and Sentry paths: values nested as deep
// as a request holds over OTLP/HTTP protobuf and JSON and OTLP/gRPC, a Sentry
// envelope and store request nested as deep, and 5,000 slowloris connections spread
// over the three listeners.
func TestHostileLogsAndSentry(t *testing.T) {
	loki := sharedLoki(t)
	upstream := sentrytest.Start(t, sentrytest.WithPublicKey("up"), sentrytest.WithProject(5))
	a := hostileConfig(t, "hostile-logs", loki.URL, "", upstream.DSN("up", 5))
	a.start(t)
	start := time.Now().Add(-time.Minute)
	inLoki := func(marker string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := loki.WaitCount(ctx, `{service="hostile-logs"} |= "`+marker+`"`, start, 1, 45*time.Second)
		return err == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	deep := deepLogs(4<<20 - 1024)
	for _, tc := range []struct {
		name, ct string
		body     []byte
	}{
		{"OTLP/HTTP protobuf logs nested 4 MiB deep", "application/x-protobuf", deep},
		{"OTLP/HTTP JSON logs nested 4 MiB deep", "application/json", deepJSON(4<<20-1024, true)},
	} {
		code, msg, err := postHostile(ctx, "http://"+a.http+"/v1/logs", tc.ct, tc.body)
		if err != nil || code != 400 || !strings.Contains(msg, "receivers.otlp.max_value_depth") {
			t.Errorf("%s: %d %q %v; want 400 naming receivers.otlp.max_value_depth", tc.name, code, msg, err)
		}
		a.checkAlive(t, tc.name, fmt.Sprintf("HTTP %d %s", code, firstLine(msg)))
	}
	cc := grpcConn(t, a.grpc)
	err := exportGRPC(ctx, cc, grpcLogs, deep)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "receivers.otlp.max_value_depth") {
		t.Errorf("OTLP/gRPC deep logs: %v; want INVALID_ARGUMENT naming the limit", err)
	}
	a.checkAlive(t, "OTLP/gRPC logs nested 4 MiB deep", status.Convert(err).Code().String()+" "+firstLine(status.Convert(err).Message()))

	// Sentry: an event nested as deep as 1 MiB allows, by envelope and by store.
	n := (1<<20 - 4096) / 2
	event := `{"message":"deep","extra":{"v":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`
	env := "{}\n" + `{"type":"event","length":` + strconv.Itoa(len(event)) + "}\n" + event + "\n"
	for _, tc := range []struct{ name, path, ct, body string }{
		{"Sentry envelope nested 1 MiB deep", "/api/1/envelope/", "application/x-sentry-envelope", env},
		{"Sentry store request nested 1 MiB deep", "/api/1/store/", "application/json", event},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.entry+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_key=hostile-key, sentry_version=7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "receivers.sentry.max_json_depth") {
			t.Errorf("%s: %d %s; want 400 naming receivers.sentry.max_json_depth", tc.name, resp.StatusCode, b)
		}
		a.checkAlive(t, tc.name, fmt.Sprintf("HTTP %d %s", resp.StatusCode, firstLine(string(b))))
	}

	// 64 concurrent requests of about 4 MB, over HTTP and then over gRPC; every one
	// acknowledged must be in Loki whole.
	var acked []string
	for _, transport := range []string{"http", "grpc"} {
		answers, ok := loadAttack(ctx, 64, func(i int) (string, []byte) {
			marker := fmt.Sprintf("load-%s-%d-", transport, i)
			return marker, bigLogs(marker, loadLines, 4_000_000)
		}, func(ctx context.Context, body []byte) string {
			if transport == "http" {
				code, _, err := postHostile(ctx, "http://"+a.http+"/v1/logs", "application/x-protobuf", body)
				if err != nil {
					return "error: " + firstLine(err.Error())
				}
				return fmt.Sprintf("HTTP %d", code)
			}
			return status.Convert(exportGRPC(ctx, cc, grpcLogs, body)).Code().String()
		})
		a.checkAlive(t, fmt.Sprintf("64 concurrent ~4 MB log requests over %s", transport), fmt.Sprint(answers))
		acked = append(acked, ok...)
	}
	if len(acked) == 0 {
		t.Fatal("no load request was acknowledged: the limits refuse everything")
	}
	for _, marker := range acked {
		qctx, qcancel := context.WithTimeout(ctx, 90*time.Second)
		_, err := loki.WaitCount(qctx, `{service="hostile-logs"} |= "`+marker+`"`, start, loadLines, 60*time.Second)
		qcancel()
		if err != nil {
			t.Fatalf("acknowledged request %s: not all %d lines in Loki: %v", marker, loadLines, err)
		}
	}
	t.Logf("all %d acknowledged load requests (%d lines each) are in Loki", len(acked), loadLines)

	// 5,000 slowloris connections: open, send part of a request's headers, hold.
	held, refused := slowloris(t, []string{a.http, a.grpc, a.entry}, 5000, 20*time.Second)
	time.Sleep(2 * time.Second)
	a.checkAlive(t, "5,000 slowloris connections", fmt.Sprintf("%d held open by the agent, %d closed at once", held, refused))

	a.sendNormalLogs(t, inLoki, fmt.Sprintf("after-attacks-%d", time.Now().UnixNano()))
	sendNormalSentry(t, a, upstream)
	a.checkAlive(t, "normal clients after the attacks", "stored and delivered")
}

// loadLines is the number of log records of one load request.
const loadLines = 256

// bigLogs is an ExportLogsServiceRequest of about size bytes: lines records, each
// "<marker><n> " followed by padding.
func bigLogs(marker string, lines, size int) []byte {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	pad := strings.Repeat("p", size/lines-64)
	now := time.Now()
	for i := 0; i < lines; i++ {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i))))
		lr.Body().SetStr(fmt.Sprintf("%s%d %s", marker, i, pad))
	}
	b, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	return b
}

// loadAttack sends n requests at once, made by build and sent by send, and returns
// how many got each answer and the markers of those acknowledged (HTTP 200, OK).
func loadAttack(ctx context.Context, n int, build func(i int) (marker string, body []byte),
	send func(ctx context.Context, body []byte) string) (map[string]int, []string) {
	var (
		mu      sync.Mutex
		answers = map[string]int{}
		acked   []string
		wg      sync.WaitGroup
	)
	for i := 0; i < n; i++ {
		marker, body := build(i)
		wg.Go(func() {
			answer := send(ctx, body)
			mu.Lock()
			defer mu.Unlock()
			answers[answer]++
			if answer == "HTTP 200" || answer == "OK" {
				acked = append(acked, marker)
			}
		})
	}
	wg.Wait()
	return answers, acked
}

// sendNormalSentry sends an event to the agent's Sentry endpoint and waits for it at
// the upstream Sentry.
func sendNormalSentry(t *testing.T, a *hostileAgent, upstream *sentrytest.Server) {
	t.Helper()
	before := len(upstream.Events())
	id := fmt.Sprintf("%032x", time.Now().UnixNano())
	event := `{"event_id":"` + id + `","message":"normal client","level":"error"}`
	env := `{"event_id":"` + id + `"}` + "\n" + `{"type":"event","length":` + strconv.Itoa(len(event)) + "}\n" + event + "\n"
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.entry+"/api/1/envelope/", strings.NewReader(env))
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_key=hostile-key, sentry_version=7")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("a normal Sentry event after the attacks was not accepted: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if _, err := upstream.WaitEvents(ctx, before+1); err != nil {
		t.Fatalf("the normal Sentry event did not reach Sentry: %v", err)
	}
}

// slowloris opens n connections round robin over addrs, each sending the start of
// a request and holding it, within d; it returns how many the agent kept open and
// how many it closed at once. The connections are closed at cleanup.
func slowloris(t *testing.T, addrs []string, n int, d time.Duration) (held, refused int) {
	t.Helper()
	var conns []net.Conn
	dialFailed := 0
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	deadline := time.Now().Add(d)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		c, err := net.DialTimeout("tcp", addrs[i%len(addrs)], 2*time.Second)
		if err != nil {
			dialFailed++
			continue
		}
		// Half an HTTP/1.1 header block, or half an HTTP/2 preface: both wait for more.
		if _, err := io.WriteString(c, "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-"); err != nil {
			dialFailed++
			c.Close()
			continue
		}
		conns = append(conns, c)
	}
	// A connection the agent closed at once reads EOF or a reset promptly.
	var mu sync.Mutex
	var wg sync.WaitGroup
	open := 0
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err := bufio.NewReader(c).ReadByte()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				open++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return open, len(conns) - open + dialFailed
}

func firstLine(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if i := strings.IndexAny(s, "\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// TestDeepLogsNeverReachTheQueue sends a log body nested as deep as 4 MiB allows:
// refused at the door, so the durable queue never holds it, and the agent restarted
// three times on the same data directory starts and delivers normally.
func TestDeepLogsNeverReachTheQueue(t *testing.T) {
	loki := sharedLoki(t)
	upstream := sentrytest.Start(t, sentrytest.WithPublicKey("up"), sentrytest.WithProject(5))
	a := hostileConfig(t, "hostile-restart", loki.URL, "", upstream.DSN("up", 5))
	a.start(t)
	start := time.Now().Add(-time.Minute)
	inLoki := func(marker string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := loki.WaitCount(ctx, `{service="hostile-restart"} |= "`+marker+`"`, start, 1, 45*time.Second)
		return err == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, msg, err := postHostile(ctx, "http://"+a.http+"/v1/logs", "application/x-protobuf", deepLogs(4<<20-1024))
	if err != nil || code != 400 {
		t.Fatalf("deep logs: %d %q %v; want 400", code, msg, err)
	}
	a.checkAlive(t, "deep logs before restarts", fmt.Sprintf("HTTP %d %s", code, firstLine(msg)))
	for i := 1; i <= 3; i++ {
		if err := a.stop(30 * time.Second); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		a.start(t)
		time.Sleep(2 * time.Second) // the pump reads the queue at start
		a.checkAlive(t, fmt.Sprintf("restart %d after the deep logs request", i), "started")
	}
	a.sendNormalLogs(t, inLoki, fmt.Sprintf("after-restarts-%d", time.Now().UnixNano()))
	if data, _ := os.ReadFile(a.log); bytes.Contains(data, []byte("stack overflow")) || bytes.Contains(data, []byte("quarantin")) {
		t.Errorf("the agent's log mentions a crash or a quarantined entry: the deep request reached the queue")
	}
}

// bigTraces is an ExportTraceServiceRequest of about size bytes: spans spans of one
// new trace, each with an attribute filling its share.
func bigTraces(traceID pcommon.TraceID, spans, size int) []byte {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	pad := strings.Repeat("p", size/spans-200)
	now := time.Now()
	for i := 0; i < spans; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1), 1, 2, 3, 4, 5, 6, 7})
		sp.SetName(fmt.Sprintf("load-%d", i))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		sp.Attributes().PutStr("pad", pad)
	}
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b
}

// TestHostileTracesAndLoad attacks the trace path: values nested as deep as 4 MiB
// allows over OTLP/HTTP protobuf and JSON and OTLP/gRPC, then 64 concurrent requests
// of about 4 MB over HTTP and over gRPC. Every request the agent acknowledged must
// reach Jaeger whole.
func TestHostileTracesAndLoad(t *testing.T) {
	j := jaegertest.Shared(t)
	loki := sharedLoki(t)
	upstream := sentrytest.Start(t, sentrytest.WithPublicKey("up"), sentrytest.WithProject(5))
	a := hostileConfig(t, "hostile-traces", loki.URL, j.OTLPGRPCEndpoint(), upstream.DSN("up", 5))
	a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	deep := deepTraces(4<<20 - 1024)
	for _, tc := range []struct {
		name, ct string
		body     []byte
	}{
		{"OTLP/HTTP protobuf traces nested 4 MiB deep", "application/x-protobuf", deep},
		{"OTLP/HTTP JSON traces nested 4 MiB deep", "application/json", deepJSON(4<<20-1024, false)},
	} {
		code, msg, err := postHostile(ctx, "http://"+a.http+"/v1/traces", tc.ct, tc.body)
		if err != nil || code != 400 || !strings.Contains(msg, "receivers.otlp.max_value_depth") {
			t.Errorf("%s: %d %q %v; want 400 naming receivers.otlp.max_value_depth", tc.name, code, msg, err)
		}
		a.checkAlive(t, tc.name, fmt.Sprintf("HTTP %d %s", code, firstLine(msg)))
	}
	cc := grpcConn(t, a.grpc)
	err := exportGRPC(ctx, cc, grpcTraces, deep)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "receivers.otlp.max_value_depth") {
		t.Errorf("OTLP/gRPC deep traces: %v; want INVALID_ARGUMENT naming the limit", err)
	}
	a.checkAlive(t, "OTLP/gRPC traces nested 4 MiB deep", status.Convert(err).Code().String()+" "+firstLine(status.Convert(err).Message()))

	const concurrent, spans, size = 64, 16, 4_000_000
	var acked []string
	for _, transport := range []string{"http", "grpc"} {
		answers, ok := loadAttack(ctx, concurrent, func(i int) (string, []byte) {
			var id pcommon.TraceID
			copy(id[:], fmt.Sprintf("%-8s%08d", transport, i))
			return id.String(), bigTraces(id, spans, size)
		}, func(ctx context.Context, body []byte) string {
			if transport == "http" {
				code, _, err := postHostile(ctx, "http://"+a.http+"/v1/traces", "application/x-protobuf", body)
				if err != nil {
					return "error: " + firstLine(err.Error())
				}
				return fmt.Sprintf("HTTP %d", code)
			}
			return status.Convert(exportGRPC(ctx, cc, grpcTraces, body)).Code().String()
		})
		a.checkAlive(t, fmt.Sprintf("%d concurrent ~4 MB trace requests over %s", concurrent, transport), fmt.Sprint(answers))
		acked = append(acked, ok...)
	}
	if len(acked) == 0 {
		t.Fatal("no load request was acknowledged: the limits refuse everything")
	}
	for _, id := range acked {
		got, err := j.WaitForTrace(ctx, id, spans)
		if err != nil || len(got) != spans {
			t.Fatalf("acknowledged trace %s: %d spans in Jaeger, want %d (%v)", id, len(got), spans, err)
		}
	}
	t.Logf("all %d acknowledged load requests (%d spans each) are in Jaeger", len(acked), spans)

	var id pcommon.TraceID
	copy(id[:], "normal-after-ld!")
	normal := bigTraces(id, 2, 4000)
	if code, msg, err := postHostile(ctx, "http://"+a.http+"/v1/traces", "application/x-protobuf", normal); err != nil || code != 200 {
		t.Fatalf("a normal client's traces after the attacks: %d %q %v", code, msg, err)
	}
	if _, err := j.WaitForTrace(ctx, id.String(), 2); err != nil {
		t.Fatalf("the normal client's trace did not reach Jaeger: %v", err)
	}
	a.checkAlive(t, "normal client after the trace attacks", "stored and delivered")
}
