package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/config"
)

// agentRun is an agent running in a test on a config file it may rewrite.
type agentRun struct {
	t      *testing.T
	a      *Agent
	path   string
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, yaml string, hook func(name string, u unit, err error) (unit, error)) *agentRun {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "outrider.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 4)
	r := &agentRun{t: t, path: path, done: make(chan error, 1)}
	r.a = New(Options{Logger: testLogger(), ConfigPath: path, Config: cfg, Version: "test", OnListen: func(s string) {
		select {
		case addrc <- s:
		default:
		}
	}})
	r.a.unitHook = hook
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.a.Run(ctx) }()
	select {
	case r.addr = <-addrc:
	case err := <-r.done:
		t.Fatalf("Run: %v", err)
	}
	eventually(t, 10*time.Second, "ready", func() bool { return r.a.ready() })
	return r
}

// rewrite replaces the config file with yaml (written aside and renamed over it, as a
// ConfigMap update does), then waits until the reload the watch starts has recorded
// its result. It does not also ask for a reload: a request that arrived after the
// watch had fired reloaded the same file a second time, and on a loaded machine the
// test then looked at the agent in the middle of that second reload.
func (r *agentRun) rewrite(yaml string) *ReloadStatus {
	r.t.Helper()
	before := r.a.lastReload.Load()
	tmp := r.path + ".new"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		r.t.Fatal(err)
	}
	eventually(r.t, 20*time.Second, "the reload", func() bool { return r.a.lastReload.Load() != before })
	return r.a.lastReload.Load()
}

func (r *agentRun) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		r.t.Fatal("Run did not return")
		return nil
	}
}

func (r *agentRun) unit(name string) unit {
	sup := r.a.sup.Load()
	sup.mu.Lock()
	defer sup.mu.Unlock()
	return sup.cur[name].u
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failStart makes a unit's Start fail (after releasing what its build took).
type failStart struct{ unit }

func (f failStart) Start(context.Context) error {
	if d, ok := f.unit.(discarder); ok {
		d.Discard()
	}
	return errors.New("injected start failure")
}

const receiversYAML = `data_dir: DIR
server: {listen: "127.0.0.1:0", shutdown_timeout: 2s}
receivers:
  otlp: {grpc: {listen: "off"}, http: {listen: "127.0.0.1:0"}RESOURCE}
exporters:
  otlp: {endpoint: "http://127.0.0.1:9"}
`

func receiversConfig(dir, resource string) string {
	return strings.NewReplacer("DIR", dir, "RESOURCE", resource).Replace(receiversYAML)
}

// TestReloadRollbackKeepsTheOldGraphBehindTheOldReceivers is the fault where a new
// graph that failed to start was replaced by the old graph behind the new receivers
// (the intake had already been swapped). Now the intake and the graph come back
// together from the old configuration; the OTLP port stays open throughout, and a
// span accepted after the rollback is on disk in the queue the running graph reads.
func TestReloadRollbackKeepsTheOldGraphBehindTheOldReceivers(t *testing.T) {
	dir := t.TempDir()
	hook := func(name string, u unit, err error) (unit, error) {
		if name == unitGraph && err == nil && strings.Contains(u.(*graphUnit).g.cfg.Exporters.OTLP.Endpoint, ":10") {
			return failStart{u}, nil
		}
		return u, err
	}
	r := startAgent(t, receiversConfig(dir, ""), hook)
	oldIntake := r.a.current.Load()
	port := oldIntake.recv.HTTPAddr().String()
	oldReceivers := oldIntake.cfg.Receivers

	stopDial := dialer(port)
	rs := r.rewrite(strings.Replace(receiversConfig(dir, `, resource: {attributes: {team: payments}}`), "127.0.0.1:9", "127.0.0.1:10", 1))
	dials, refused := stopDial()
	if rs.Result != reloadRolledBack || !slices.Contains(rs.Replaced, unitIntake) || !slices.Contains(rs.Replaced, unitGraph) {
		t.Fatalf("reload %+v, want rolled back with the intake and the graph", rs)
	}
	if refused > 0 {
		t.Errorf("the OTLP port closed during the reload: %d of %d dials refused", refused, dials)
	}
	in := r.a.current.Load()
	if in == nil || !reflect.DeepEqual(in.cfg.Receivers, oldReceivers) {
		t.Fatalf("the running intake is not the old configuration's: %+v", in)
	}
	if got := in.recv.HTTPAddr().String(); got != port {
		t.Errorf("the receiver moved from %s to %s", port, got)
	}
	g := r.unit(unitGraph).(*graphUnit).g
	var pumped *pump
	for _, s := range g.sources {
		if p, ok := s.src.(*pump); ok && p.name == "traces" {
			pumped = p
		}
	}
	if pumped == nil || pumped.q != in.traces {
		t.Fatal("the running graph does not read the running intake's traces queue")
	}
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{1})
	sp.SetName("after-rollback")
	var m ptrace.ProtoMarshaler
	body, _ := m.MarshalTraces(td)
	resp, err := http.Post("http://"+port+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST after the rollback = %d", resp.StatusCode)
	}
	if n, _ := in.traces.Len(); n < 1 {
		t.Errorf("the accepted span is not in the running queue (%d entries)", n)
	}
	_, metrics := get(t, "http://"+r.addr+"/metrics")
	if !strings.Contains(metrics, `outrider_config_reloads_total{result="rolled_back"} 1`) {
		t.Errorf("the rollback is not counted")
	}
	if !strings.Contains(metrics, `outrider_queue_capacity_bytes{queue="traces"} `) || !strings.Contains(metrics, `outrider_queue_bytes{queue="traces"} `) {
		t.Errorf("/metrics lacks the traces queue's capacity beside its size")
	}
	_ = r.stop() // the exporter cannot deliver before the deadline: an error is expected
}

// TestUnitSlices: which units a change of each setting replaces; data_dir holds the
// lease-state file, so it rebuilds the syncer.
func TestUnitSlices(t *testing.T) {
	base := `data_dir: /tmp/a
secrets:
  vault: {address: "http://127.0.0.1:8200", auth: {method: token, token: t}}
  files: [{path: /tmp/s/db.env, source: secret/db}]
receivers: {otlp: {http: {listen: "127.0.0.1:4318"}}}
logs: {sources: [{name: app, path: /tmp/l/*.log}]}
exporters: {loki: {url: "http://127.0.0.1:3100"}, otlp: {endpoint: "http://127.0.0.1:4317"}}
`
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"data_dir", "data_dir: /tmp/a", "data_dir: /tmp/b", []string{unitSecrets, unitIntake, unitGraph}},
		{"secrets", "source: secret/db", "source: secret/other", []string{unitSecrets}},
		{"loki url", "3100", "3101", []string{unitGraph}},
		{"receivers", "4318", "4320", []string{unitIntake, unitGraph}},
		{"log source", "/tmp/l/*.log", "/tmp/m/*.log", []string{unitGraph}},
		{"server", "data_dir: /tmp/a", "data_dir: /tmp/a\nserver: {listen: \"127.0.0.1:9\"}", []string{unitServer}},
		{"log level", "data_dir: /tmp/a", "data_dir: /tmp/a\nlog: {level: debug}", nil},
		{"identity", "data_dir: /tmp/a", "data_dir: /tmp/a\nidentity: {service: web}", []string{unitAudit, unitIntake, unitGraph}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, err := config.Parse("a.yaml", []byte(base))
			if err != nil {
				t.Fatal(err)
			}
			to, err := config.Parse("b.yaml", []byte(strings.Replace(base, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			a := New(Options{})
			sup, err := newSupervisor(a.unitKinds(), discard())
			if err != nil {
				t.Fatal(err)
			}
			for i := range sup.kinds {
				k := &sup.kinds[i]
				sup.cur[k.name] = &running{kind: k, slice: k.slice(from)}
			}
			var got []string
			changed := sup.changed(to)
			for _, k := range sup.kinds {
				if changed[k.name] {
					got = append(got, k.name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("replaced %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStatusExplains: /readyz says which secret file is missing and why while Vault
// is unreachable, secrets metrics exist only with secrets, and SIGTERM (ctx) while
// the agent waits for the first render is a clean stop.
func TestStatusExplains(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse("t.yaml", []byte(`data_dir: `+dir+`
server: {listen: "127.0.0.1:0", shutdown_timeout: 2s}
secrets:
  vault: {address: "http://127.0.0.1:9", auth: {method: token, token: t}}
  retry: {initial_interval: 50ms, max_interval: 100ms}
  files: [{path: `+dir+`/db.env, source: secret/db}]
`))
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	logs := &syncBuffer{}
	a := New(Options{ConfigPath: dir + "/missing.yaml", Config: cfg, Version: "test", OnListen: func(s string) { addrc <- s },
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	addr := <-addrc
	var st Status
	eventually(t, 10*time.Second, "/readyz to name the file and the error", func() bool {
		code, body := get(t, "http://"+addr+"/readyz")
		if code != http.StatusServiceUnavailable {
			return false
		}
		st = Status{}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/readyz is not JSON: %v\n%s", err, body)
		}
		for _, u := range st.Units {
			if u.Name == unitSecrets && strings.Contains(u.Detail, dir+"/db.env") && strings.Contains(u.Detail, "127.0.0.1:9") {
				return true
			}
		}
		return false
	})
	if st.Summary != "not ready" {
		t.Errorf("/readyz status %q, want \"not ready\"", st.Summary)
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"status": "ok"`) {
		t.Errorf("/healthz = %d %s while waiting for Vault; it is alive", code, body)
	}
	if _, m := get(t, "http://"+addr+"/metrics"); !strings.Contains(m, "outrider_secrets_renders_total") && !strings.Contains(m, "outrider_vault_") {
		t.Errorf("secrets are configured but no secrets metric is exported")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopping while waiting for the first render: Run = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 2 || !strings.Contains(logs.String(), `"component":"secrets"`) {
		t.Fatalf("the syncer logged nothing:\n%s", logs.String())
	}
	for _, line := range lines {
		if k := duplicateKey(t, line); k != "" {
			t.Errorf("log key %q appears twice: %s", k, line)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// duplicateKey returns a top-level key that a JSON log line holds twice.
func duplicateKey(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatalf("log line is not JSON: %s", line)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		k := tok.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
	}
	return ""
}

// TestMetricsAtStart: counters exist at 0 from the start, secrets metrics only with
// secrets, and the build info names the version, revision and Go version.
func TestMetricsAtStart(t *testing.T) {
	r := startAgent(t, "data_dir: "+t.TempDir()+"\nserver: {listen: \"127.0.0.1:0\", shutdown_timeout: 2s}\n", nil)
	_, m := get(t, "http://"+r.addr+"/metrics")
	for _, want := range []string{
		`outrider_config_reloads_total{result="success"} 0`,
		`outrider_config_reloads_total{result="rejected"} 0`,
		`outrider_config_reloads_total{result="rolled_back"} 0`,
		`outrider_audit_events_dropped_total 0`,
		`outrider_build_info{goversion="go`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, "outrider_secrets_") {
		t.Error("secrets metrics are exported without secrets")
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// hangStop makes a unit's Stop hang until release is closed.
type hangStop struct {
	unit
	release chan struct{}
}

func (h hangStop) Stop(ctx context.Context) error {
	<-h.release
	return h.unit.Stop(ctx)
}

// TestHealthzFailsWhenAUnitIsWedged: a graph whose stop hangs during a reload leaves
// it wedged; /healthz fails (the liveness probe restarts the pod) and says which.
func TestHealthzFailsWhenAUnitIsWedged(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	var graphs atomic.Int32
	hook := func(name string, u unit, err error) (unit, error) {
		if name == unitGraph && err == nil && graphs.Add(1) == 1 {
			return hangStop{u, release}, nil
		}
		return u, err
	}
	y := "data_dir: " + dir + "\nserver: {listen: \"127.0.0.1:0\", shutdown_timeout: 200ms}\nlogs: {sources: [{name: a, path: " + dir + "/*.log}]}\nexporters: {loki: {url: \"http://127.0.0.1:9\"}}\n"
	r := startAgent(t, y, hook)
	rs := r.rewrite(strings.Replace(y, "127.0.0.1:9", "127.0.0.1:10", 1))
	if rs.Result != reloadRolledBack || !strings.Contains(rs.Error, "did not return") {
		t.Fatalf("reload %+v", rs)
	}
	code, body := get(t, "http://"+r.addr+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "unit graph is wedged") {
		t.Errorf("/healthz = %d %s", code, body)
	}
	once.Do(func() { close(release) })
	_ = r.stop()
}

// testLogger discards the agent's log unless OUTRIDER_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("OUTRIDER_TEST_LOG") == "" {
		return discard()
	}
	l := new(slog.LevelVar)
	l.Set(slog.LevelDebug)
	return NewLogger(os.Stderr, "text", l)
}
