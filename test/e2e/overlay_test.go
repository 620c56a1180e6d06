package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// configMapDir lays out an overlay the way the kubelet mounts a ConfigMap: the file
// is a symlink into ..data, itself a symlink to a timestamped directory, and an
// update swaps ..data atomically by rename.
type configMapDir struct {
	t   *testing.T
	dir string
	gen int
}

func newConfigMapDir(t *testing.T, dir, content string) *configMapDir {
	t.Helper()
	c := &configMapDir{t: t, dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.update(content)
	if err := os.Symlink("..data/overlay.yaml", filepath.Join(dir, "overlay.yaml")); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *configMapDir) path() string { return filepath.Join(c.dir, "overlay.yaml") }

func (c *configMapDir) update(content string) {
	c.t.Helper()
	c.gen++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", c.gen, time.Now().UnixNano())
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		c.t.Fatal(err)
	}
	writeFile(c.t, filepath.Join(c.dir, ts, "overlay.yaml"), content)
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
}

// TestOverlay runs the agent with an overlay mounted like a ConfigMap: the overlay's
// labels are applied at start, a change is applied without a restart, and a bad
// overlay (unknown field, then an invalid value) makes /readyz not ready naming the
// file, line and field while the agent keeps shipping with its last good
// configuration; fixing it makes the agent ready again.
func TestOverlay(t *testing.T) {
	loki := sharedLoki(t)
	dir := t.TempDir()
	mkdirs(t, filepath.Join(dir, "logs"))
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, agentConfig(dir, "e2e-overlay", loki.URL, "", ""))
	overlay := func(v string) string {
		return "logs:\n  sources:\n    - name: app\n      labels: {overlay: " + v + "}\n"
	}
	cm := newConfigMapDir(t, filepath.Join(dir, "overlay"), overlay("v1"))
	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath, "--overlay", cm.path())
	addr := waitListen(t, agent)

	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	seq := 0
	write := func(n int) {
		for i := 0; i < n; i++ {
			w.line(`{"level":"info","msg":"overlay test seq=%d"}`, seq)
			seq++
		}
		w.flush()
	}
	ctx := context.Background()
	readyz := func() string { return httpGet(t, "http://"+addr+"/readyz") }
	waitReadyz := func(want bool, contains ...string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var body string
		for time.Now().Before(deadline) {
			body = readyz()
			ok := !strings.Contains(body, "not ready") == want
			for _, c := range contains {
				ok = ok && strings.Contains(body, c)
			}
			if ok {
				return body
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("/readyz never became ready=%v containing %q; last answer:\n%s", want, contains, body)
		return ""
	}

	write(50)
	if _, err := loki.WaitCount(ctx, `{service="e2e-overlay", overlay="v1"}`, start, 50, 30*time.Second); err != nil {
		t.Fatalf("the overlay's label at start: %v", err)
	}
	waitReadyz(true)

	cm.update(overlay("v2"))
	waitLog(t, agent, "config reloaded")
	write(50)
	if _, err := loki.WaitCount(ctx, `{service="e2e-overlay", overlay="v2"}`, start, 50, 30*time.Second); err != nil {
		t.Fatalf("after the overlay changed: %v", err)
	}

	bad := []struct {
		name, content string
		want          []string
	}{
		{"unknown field", "exporters:\n  loki:\n    tenant: team-a\n",
			[]string{cm.path(), "exporters.loki.tenant: unknown key (line 3)"}},
		{"invalid value", "logs:\n  sources:\n    - name: app\n      labels: {overlay: v3}\n      max_line_bytes: 1GiB\n",
			[]string{"logs.sources[0].max_line_bytes", "set by overlay " + cm.path() + ", line 5"}},
		{"YAML error", "logs: [\n", []string{cm.path(), "invalid YAML"}},
	}
	for i, b := range bad {
		cm.update(b.content)
		body := waitReadyz(false, b.want...)
		t.Logf("%s: /readyz says:\n%s", b.name, body)
		// The last good configuration keeps shipping.
		write(20)
		if _, err := loki.WaitCount(ctx, `{service="e2e-overlay", overlay="v2"}`, start, 50+20*(i+1), 30*time.Second); err != nil {
			t.Fatalf("with a bad overlay (%s), the last good configuration stopped shipping: %v", b.name, err)
		}
	}

	cm.update(overlay("v4"))
	waitReadyz(true)
	write(10)
	if _, err := loki.WaitCount(ctx, `{service="e2e-overlay", overlay="v4"}`, start, 10, 30*time.Second); err != nil {
		t.Fatalf("after the overlay was fixed: %v", err)
	}
}

// TestOverlayBadAtStart starts the agent with an invalid overlay: it runs on the
// base alone, not ready and saying why, and takes the overlay when it is fixed.
func TestOverlayBadAtStart(t *testing.T) {
	loki := sharedLoki(t)
	dir := t.TempDir()
	mkdirs(t, filepath.Join(dir, "logs"))
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, agentConfig(dir, "e2e-overlay-start", loki.URL, "", ""))
	cm := newConfigMapDir(t, filepath.Join(dir, "overlay"), "exporters:\n  loki:\n    labelz: {a: b}\n")
	agent := startAgent(t, cfgPath, "--overlay", cm.path())
	addr := waitListen(t, agent)
	body := httpGet(t, "http://"+addr+"/readyz")
	for _, want := range []string{"not ready", cm.path(), "exporters.loki.labelz: unknown key (line 3)"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz = %s\nwant it to contain %q", body, want)
		}
	}
	cm.update("exporters:\n  loki:\n    labels: {fixed: \"yes\"}\n")
	waitLog(t, agent, "config reloaded")
	if body := httpGet(t, "http://"+addr+"/readyz"); strings.Contains(body, "not ready") {
		t.Fatalf("still not ready after the overlay was fixed: %s", body)
	}
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	w.line(`{"level":"info","msg":"fixed"}`)
	w.flush()
	if _, err := loki.WaitCount(context.Background(), `{service="e2e-overlay-start", fixed="yes"}`, time.Now().Add(-time.Minute), 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
