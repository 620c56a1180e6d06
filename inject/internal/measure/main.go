// Command measure runs the outrider agent with the configuration the injector
// generates for a typical pod (one Vault secret and a template, a log file, OTLP
// traces and logs) against real Vault, Loki and Jaeger on 127.0.0.1, and reports its
// resident memory and CPU when idle, under a steady load and under a burst. The
// injector's default resources (inject.DefaultMemoryRequest and friends) come from
// these numbers; docs/annotations.md shows the last run.
//
//	make build backends && go run ./inject/internal/measure -outrider bin/outrider
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"gopkg.in/yaml.v3"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/inject/internal/jsonpatch"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// phase is one measured period with a constant load.
type phase struct {
	name          string
	duration      time.Duration
	linesPerSec   int
	spansPerSec   int
	outage        bool  // Loki and Jaeger are stopped for the phase
	rssMax, rssAt int64 // bytes
	cpuSeconds    float64
}

func main() {
	bin := flag.String("outrider", "bin/outrider", "the outrider binary to measure")
	idle := flag.Duration("idle", 60*time.Second, "length of the idle phase")
	steady := flag.Duration("steady", 60*time.Second, "length of the steady phase")
	burst := flag.Duration("burst", 30*time.Second, "length of the burst phase")
	outage := flag.Duration("outage", 30*time.Second, "length of the burst phase with Loki and Jaeger down")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*bin, []*phase{
		{name: "idle", duration: *idle},
		{name: "steady (200 lines/s, 100 spans/s)", duration: *steady, linesPerSec: 200, spansPerSec: 100},
		{name: "burst (5000 lines/s, 2000 spans/s)", duration: *burst, linesPerSec: 5000, spansPerSec: 2000},
		{name: "burst, Loki and Jaeger down", duration: *outage, linesPerSec: 5000, spansPerSec: 2000, outage: true},
	}); err != nil {
		log.Fatal(err)
	}
}

func run(bin string, phases []*phase) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "outrider-measure-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	log.Print("starting Vault, Loki and Jaeger")
	v, err := vaulttest.Start(ctx, filepath.Join(dir, "vault"))
	if err != nil {
		return err
	}
	defer v.Stop()
	if _, err := v.Client.Logical().Write("secret/data/shop/db", map[string]any{"data": map[string]any{"user": "shop", "password": "s3cr3t-value"}}); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	l, err := lokitest.Start(ctx, filepath.Join(dir, "loki"))
	if err != nil {
		return err
	}
	defer l.Stop()
	j, err := jaegertest.StartIn(ctx, filepath.Join(dir, "jaeger"))
	if err != nil {
		return err
	}
	defer j.Stop()

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	cfg, err := agentConfig(dir, v.Addr, l.URL, "http://"+j.OTLPGRPCEndpoint(), ports)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "agent", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "VAULT_TOKEN="+v.RootToken, "POD_NAME=web-0", "POD_NAMESPACE=shop", "CONTAINER_NAME=web")
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := waitReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[0]), 30*time.Second); err != nil {
		out, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("%w\n%s", err, out)
	}
	log.Printf("agent ready (pid %d); measuring", cmd.Process.Pid)

	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(fmt.Sprintf("127.0.0.1:%d", ports[2])), otlptracehttp.WithInsecure())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.Empty()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := tp.Tracer("measure")
	logFile, err := os.OpenFile(filepath.Join(dir, "logs", "app.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()

	pid := cmd.Process.Pid
	seq := 0
	for _, p := range phases {
		if p.outage {
			l.Stop()
			j.Stop()
		}
		cpu0, err := cpuSeconds(pid)
		if err != nil {
			return err
		}
		end := time.Now().Add(p.duration)
		tick := time.NewTicker(100 * time.Millisecond)
		for now := range tick.C {
			if now.After(end) {
				break
			}
			for i := 0; i < p.linesPerSec/10; i++ {
				seq++
				fmt.Fprintf(logFile, `{"time":%q,"level":"info","msg":"request served","method":"GET","path":"/api/items/%d","status":200,"duration_ms":%d,"trace_id":"%032x","request_id":"req-%d"}`+"\n",
					now.UTC().Format(time.RFC3339Nano), seq%1000, rand.IntN(300), rand.Uint64(), seq)
			}
			for i := 0; i < p.spansPerSec/10; i++ {
				_, span := tracer.Start(ctx, "GET /api/items")
				span.SetAttributes(attribute.String("http.method", "GET"), attribute.Int("http.status_code", 200), attribute.String("http.route", "/api/items/{id}"))
				span.End()
			}
			if rss, err := procStatus(pid, "VmRSS"); err == nil {
				p.rssMax = max(p.rssMax, rss)
				p.rssAt = rss
			}
		}
		tick.Stop()
		cpu1, err := cpuSeconds(pid)
		if err != nil {
			return err
		}
		p.cpuSeconds = cpu1 - cpu0
	}
	hwm, err := procStatus(pid, "VmHWM")
	if err != nil {
		return err
	}
	fmt.Printf("\n| phase | duration | RSS at end | RSS max | CPU (millicores) |\n|---|---|---|---|---|\n")
	for _, p := range phases {
		fmt.Printf("| %s | %s | %.1f MiB | %.1f MiB | %.0f |\n", p.name, p.duration, mib(p.rssAt), mib(p.rssMax), 1000*p.cpuSeconds/p.duration.Seconds())
	}
	fmt.Printf("\npeak RSS (VmHWM) over the whole run: %.1f MiB\n", mib(hwm))
	lines, spans := 0, 0
	for _, p := range phases {
		lines += p.linesPerSec * int(p.duration.Seconds())
		spans += p.spansPerSec * int(p.duration.Seconds())
	}
	fmt.Printf("written: %d log lines, %d spans; the agent's counters:\n", lines, spans)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(metrics), "\n") {
		for _, name := range []string{"outrider_tail_lines_read_total", "outrider_otlp_items_total", "outrider_exporter_sent_records_total"} {
			if strings.HasPrefix(line, name) {
				fmt.Println("  " + line)
			}
		}
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// agentConfig is the configuration the injector generates for a typical pod, moved
// to the paths and ports of this machine, with token auth instead of Kubernetes auth.
func agentConfig(dir, vaultAddr, lokiURL, tempo string, ports []int) ([]byte, error) {
	in, err := inject.NewInjector(inject.Defaults{Image: "outrider:measure", VaultAddr: vaultAddr, LokiURL: lokiURL, TempoEndpoint: tempo})
	if err != nil {
		return nil, err
	}
	pod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", Annotations: map[string]string{
			inject.AnnotationInject:                 "true",
			inject.AnnotationRole:                   "web",
			inject.AnnotationSecretPrefix + "db":    "secret/data/shop/db",
			inject.AnnotationTemplatePrefix + "dsn": `{{ with secret "secret/data/shop/db" }}postgres://{{ .Data.data.user }}:{{ .Data.data.password }}@db/shop{{ end }}`,
			inject.AnnotationLogs:                   "/var/log/app/*.log",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}},
	}
	raw, err := json.Marshal(&pod)
	if err != nil {
		return nil, err
	}
	resp := in.Mutate(&admissionv1.AdmissionRequest{
		UID: "measure", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
		Namespace: "shop", Object: runtime.RawExtension{Raw: raw},
	})
	if !resp.Allowed {
		return nil, fmt.Errorf("the injector denied the pod: %s", resp.Result.Message)
	}
	patched, err := jsonpatch.Apply(raw, resp.Patch)
	if err != nil {
		return nil, err
	}
	var out corev1.Pod
	if err := json.Unmarshal(patched, &out); err != nil {
		return nil, err
	}
	generated := out.Annotations[inject.AnnotationConfig]
	for _, d := range []string{"secrets", "logs", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	moved := strings.NewReplacer(
		inject.DataDir, filepath.Join(dir, "data"),
		inject.DefaultSecretsDir, filepath.Join(dir, "secrets"),
		"/var/log/app", filepath.Join(dir, "logs"),
		fmt.Sprintf(":%d", inject.DefaultAgentPort), fmt.Sprintf("127.0.0.1:%d", ports[0]),
	).Replace(generated)
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(moved), &doc); err != nil {
		return nil, err
	}
	secrets := doc["secrets"].(map[string]any)
	secrets["vault"].(map[string]any)["auth"] = map[string]any{"method": "token"}
	doc["receivers"] = map[string]any{"otlp": map[string]any{
		"grpc": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", ports[1])},
		"http": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", ports[2])},
	}}
	var b bytes.Buffer
	if err := yaml.NewEncoder(&b).Encode(doc); err != nil {
		return nil, err
	}
	log.Printf("agent configuration (generated by the injector, moved to %s):\n%s", dir, b.String())
	return b.Bytes(), nil
}

func waitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the agent was not ready within %s", timeout)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// procStatus reads a "kB" field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
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

// cpuSeconds is the user and system CPU time of the process (clock ticks of 1/100 s).
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	return (utime + stime) / 100, nil
}
