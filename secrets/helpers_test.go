package secrets

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/pgtest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
)

var seq atomic.Int64

// unique returns a name no other test uses, for mounts and roles on the shared Vault.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func write(t testing.TB, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("setup: write %s: %v", path, err)
	}
	return s
}

func mount(t testing.TB, c *api.Client, kind, path string, options map[string]string) {
	t.Helper()
	if err := c.Sys().Mount(path, &api.MountInput{Type: kind, Options: options}); err != nil {
		t.Fatalf("setup: mount %s at %s: %v", kind, path, err)
	}
}

// kvPut writes a new version of a KV v2 secret and returns it.
func kvPut(t testing.TB, c *api.Client, mnt, name string, data map[string]any) int {
	t.Helper()
	s, err := c.KVv2(mnt).Put(context.Background(), name, data)
	if err != nil {
		t.Fatalf("setup: put %s/%s: %v", mnt, name, err)
	}
	return s.VersionMetadata.Version
}

// tokenVault is the client configuration for the test Vault with its root token.
func tokenVault(v *vaulttest.Vault) vault.Config {
	return vault.Config{Address: v.Addr, Auth: vault.AuthConfig{Method: vault.MethodToken, Token: confval.Secret(v.RootToken)}}
}

// recorder captures everything a Syncer logs and audits.
type recorder struct {
	mu     sync.Mutex
	logs   bytes.Buffer
	events []audit.Event
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.Write(p)
}

func (r *recorder) Record(e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// find returns the events of kind (with outcome, unless "") whose path is path
// (unless "").
func (r *recorder) find(kind audit.Kind, outcome, path string) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, e := range r.events {
		if e.Kind == kind && (outcome == "" || e.Outcome == outcome) && (path == "" || e.Path == path) {
			out = append(out, e)
		}
	}
	return out
}

// text is everything logged and audited, for checks that no value leaked.
func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.Write(r.logs.Bytes())
	for _, e := range r.events {
		fmt.Fprintf(&b, "%+v\n", e)
	}
	return b.String()
}

// noLeak fails if any of values appears in what was logged or audited.
func (r *recorder) noLeak(t *testing.T, values ...string) {
	t.Helper()
	text := r.text()
	for _, v := range values {
		if v != "" && strings.Contains(text, v) {
			t.Errorf("a secret value reached the logs or the audit events")
		}
	}
}

// requests records every HTTP request the Syncer's Vault client actually sends.
type requests struct {
	mu   sync.Mutex
	list []sent
}

type sent struct {
	at           time.Time
	method, path string
}

func (q *requests) wrap(next http.RoundTripper) http.RoundTripper {
	return rtFunc(func(req *http.Request) (*http.Response, error) {
		q.mu.Lock()
		q.list = append(q.list, sent{at: time.Now(), method: req.Method, path: req.URL.Path})
		q.mu.Unlock()
		return next.RoundTrip(req)
	})
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// between returns the requests sent in [from, to).
func (q *requests) between(from, to time.Time) []sent {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []sent
	for _, s := range q.list {
		if !s.at.Before(from) && s.at.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// fakeRedactor records what the Syncer registers.
type fakeRedactor struct {
	mu     sync.Mutex
	owners map[string][]string
}

func (f *fakeRedactor) Set(owner string, values []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.owners == nil {
		f.owners = map[string][]string{}
	}
	f.owners[owner] = slices.Clone(values)
}

func (f *fakeRedactor) Remove(owner string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.owners, owner)
}

func (f *fakeRedactor) values(owner string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.owners[owner])
}

// harness is a Syncer under test and what it reported.
type harness struct {
	s   *Syncer
	rec *recorder
	req *requests
	red *fakeRedactor
}

// newHarness builds a Syncer whose logs, audit events, registered values and Vault
// requests are recorded.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessState(t, cfg, "")
}

// newHarnessState is newHarness with a lease state file.
func newHarnessState(t *testing.T, cfg Config, stateFile string) *harness {
	t.Helper()
	h := &harness{rec: &recorder{}, req: &requests{}, red: &fakeRedactor{}}
	logger := slog.New(slog.NewJSONHandler(h.rec, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := newSyncer(cfg, Settings{Logger: logger, Audit: h.rec, Redact: h.red, Metrics: NewMetrics(nil), StateFile: stateFile}, h.req.wrap)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.s = s
	return h
}

// run starts Run; the test's cleanup cancels it and checks that it returns promptly
// and without error.
func (h *harness) run(t *testing.T) {
	t.Helper()
	t.Cleanup(h.start(t))
}

// start starts Run and returns the function that stops it and checks that it
// returned promptly and without error.
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil on cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of its context being cancelled")
			<-done
		}
	}
}

// eventually waits for cond, checking every 10ms, and fails after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fileHas reports whether path exists and contains sub.
func fileHas(path, sub string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), sub)
}

// app is a stand-in application: a shell that appends "HUP <unix ns>" to a file each
// time it gets SIGHUP. It waits with the wait builtin, which a trapped signal
// interrupts at once, so the time it records is when the signal arrived.
type app struct {
	cmd     *exec.Cmd
	pidFile string
	out     string
}

func startApp(t *testing.T, dir string) *app {
	t.Helper()
	a := &app{pidFile: filepath.Join(dir, "app.pid"), out: filepath.Join(dir, "app.hups")}
	script := `trap 'echo HUP $(date +%s%N) >> ` + a.out + `' HUP; while :; do sleep 1 & wait $!; done`
	a.cmd = exec.Command("/bin/sh", "-c", script)
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		_ = a.cmd.Wait()
	})
	if err := os.WriteFile(a.pidFile, []byte(strconv.Itoa(a.cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the shell install its trap
	return a
}

// hups returns when the app got each SIGHUP.
func (a *app) hups() []time.Time {
	b, err := os.ReadFile(a.out)
	if err != nil {
		return nil
	}
	var out []time.Time
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err == nil {
			out = append(out, time.Unix(0, ns))
		}
	}
	return out
}

// signalReload is a reload that sends SIGHUP to the app.
func (a *app) signalReload() reload.Config {
	return reload.Config{Method: reload.MethodSignal, PIDFile: a.pidFile}
}

// percentile returns the p-th percentile (0..1) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func fileCfg(path, tmpl string) File {
	return File{FileConfig: render.FileConfig{Path: path, Template: tmpl}}
}

func shortCfg(path, source string, format render.Format) File {
	return File{FileConfig: render.FileConfig{Path: path, Source: source, Format: format}}
}

// databaseEngine mounts a database engine on pg with one role, app, whose users are
// named v-<mount>-… (so a test can find its own among the shared server's roles), and
// returns the mount.
func databaseEngine(t *testing.T, c *api.Client, pg *pgtest.Server, defaultTTL, maxTTL string) string {
	t.Helper()
	mnt := unique("database")
	mount(t, c, "database", mnt, nil)
	write(t, c, mnt+"/config/pg", map[string]any{
		"plugin_name":       "postgresql-database-plugin",
		"connection_url":    pg.URL(),
		"username":          "postgres",
		"password":          pg.Password,
		"allowed_roles":     "app",
		"username_template": "v-" + mnt + "-{{random 8}}",
	})
	write(t, c, mnt+"/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         defaultTTL,
		"max_ttl":             maxTTL,
	})
	return mnt
}

// approleAuth enables an AppRole mount with role (token_policies policy plus extra
// role settings), writes its role_id and a secret_id into files under dir, and returns
// the auth config that logs in with them.
func approleAuth(t *testing.T, c *api.Client, dir, role, policy string, extra map[string]any) vault.AuthConfig {
	t.Helper()
	mnt := unique("approle")
	if err := c.Sys().EnableAuth(mnt, "approle", ""); err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"token_policies": policy}
	for k, v := range extra {
		data[k] = v
	}
	write(t, c, "auth/"+mnt+"/role/"+role, data)
	roleID, err := c.Logical().Read("auth/" + mnt + "/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID := write(t, c, "auth/"+mnt+"/role/"+role+"/secret-id", nil).Data["secret_id"].(string)
	roleFile, secretFile := filepath.Join(dir, "role_id"), filepath.Join(dir, "secret_id")
	for p, v := range map[string]string{roleFile: roleID.Data["role_id"].(string), secretFile: secretID} {
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return vault.AuthConfig{Method: vault.MethodAppRole, MountPath: mnt, Role: role, RoleIDFile: roleFile, SecretIDFile: secretFile}
}
