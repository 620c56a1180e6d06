package secrets

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/render"
)

// TestKVChangeReloadsApp: a KV v2 change is detected by polling the metadata, the
// file is rewritten and the application gets SIGHUP. It measures the propagation
// latency (Vault write → SIGHUP seen by the app) over ten changes at a 1s interval,
// and checks that unchanged secrets cost at most one request per secret per
// interval, while the changing one costs one more read per change.
func TestKVChangeReloadsApp(t *testing.T) {
	t.Parallel()
	v := sharedVault(t)
	c := v.Client
	mnt := unique("kv")
	mount(t, c, "kv", mnt, map[string]string{"version": "2"})
	kvPut(t, c, mnt, "app", map[string]any{"password": "first-password-0", "user": "app"})
	kvPut(t, c, mnt, "other1", map[string]any{"token": "other1-token-value"})
	kvPut(t, c, mnt, "other2", map[string]any{"token": "other2-token-value"})

	dir := t.TempDir()
	a := startApp(t, dir)
	appFile := filepath.Join(dir, "app.env")
	cfg := Config{
		Vault:        tokenVault(v),
		PollInterval: time.Second,
		Reload:       a.signalReload(),
		Files: []File{
			fileCfg(appFile, `{{ with secret "`+mnt+`/app" }}PASSWORD={{ .Data.data.password }}{{ end }}`+"\n"),
			shortCfg(filepath.Join(dir, "other1.json"), mnt+"/data/other1", render.FormatJSON),
			shortCfg(filepath.Join(dir, "other2.env"), mnt+"/other2", render.FormatEnv),
		},
	}
	h := newHarness(t, cfg)
	h.run(t)
	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	select {
	case <-h.s.Rendered():
	default:
		t.Error("Ready, but Rendered is not closed")
	}

	if got := readFile(t, appFile); got != "PASSWORD=first-password-0\n" {
		t.Fatalf("app.env = %q", got)
	}
	st, err := os.Stat(appFile)
	if err != nil || st.Mode().Perm() != 0o400 {
		t.Fatalf("app.env mode = %v, %v; want 0400", st.Mode(), err)
	}
	if n := len(a.hups()); n != 0 {
		t.Fatalf("the app got %d SIGHUP for the first render (the files did not exist: nothing to reload)", n)
	}

	changes := *propagationChanges
	if changes < 2 {
		t.Fatalf("-propagation-changes=%d: measure at least 2 changes", changes)
	}
	var lat []time.Duration
	values := []string{"first-password-0"}
	countFrom := time.Now()
	for i := 1; i <= changes; i++ {
		// Writes land at a random point of the poll cycle, as real ones do.
		time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		pw := fmt.Sprintf("rotated-password-%d", i)
		values = append(values, pw)
		kvPut(t, c, mnt, "app", map[string]any{"password": pw, "user": "app"})
		written := time.Now()
		eventually(t, 10*time.Second, fmt.Sprintf("SIGHUP #%d", i), func() bool { return len(a.hups()) >= i })
		hup := a.hups()[i-1]
		if !fileHas(appFile, "PASSWORD="+pw+"\n") {
			t.Fatalf("change %d: the app was signalled but app.env = %q", i, readFile(t, appFile))
		}
		lat = append(lat, hup.Sub(written))
	}
	countTo := time.Now()
	t.Logf("propagation latency (KV v2 write -> SIGHUP in the app), %d changes, poll_interval 1s, reload min_wait 100ms: p50 %v, p99 %v, max %v, all %v",
		changes, percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond),
		slices.Max(lat).Round(time.Millisecond), roundAll(lat))

	// Requests: one metadata poll per secret per interval; reads only for changes.
	reqs := h.req.between(countFrom, countTo)
	intervals := countTo.Sub(countFrom).Seconds() / cfg.PollInterval.Seconds()
	per := map[string]int{}
	for _, r := range reqs {
		per[r.method+" "+r.path]++
	}
	for _, name := range []string{"app", "other1", "other2"} {
		polls := per["GET /v1/"+mnt+"/metadata/"+name]
		reads := per["GET /v1/"+mnt+"/data/"+name]
		t.Logf("%s: %d metadata polls and %d reads in %.1f intervals: %.2f requests per interval when unchanged (%.1f per minute)", name, polls, reads, intervals, float64(polls)/intervals, float64(polls)/countTo.Sub(countFrom).Minutes())
		if float64(polls) > intervals+1 {
			t.Errorf("%s: %d metadata polls in %.1f intervals; want at most one per interval", name, polls, intervals)
		}
		if float64(polls) < intervals/2 {
			t.Errorf("%s: only %d metadata polls in %.1f intervals; the secret is not being polled", name, polls, intervals)
		}
		wantReads := 0
		if name == "app" {
			wantReads = changes
		}
		if reads != wantReads {
			t.Errorf("%s: %d reads, want %d (one per change)", name, reads, wantReads)
		}
	}
	for k := range per {
		if !strings.Contains(k, "/"+mnt+"/") {
			t.Errorf("unexpected request %s while only polling", k)
		}
	}

	// The redactor holds the current and the previous password only.
	got := h.red.values(mnt + "/app")
	want := []string{fmt.Sprintf("rotated-password-%d", changes), fmt.Sprintf("rotated-password-%d", changes-1)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("registered values of %s/app = %d values, want the current and previous password", mnt, len(got))
	}
	if ev := h.rec.find(audit.KindReload, "ok", "all"); len(ev) < changes {
		t.Errorf("%d successful reload events, want %d", len(ev), changes)
	}
	if ev := h.rec.find(audit.KindFetch, "ok", mnt+"/app"); len(ev) != changes+1 || ev[len(ev)-1].Version != changes+1 {
		t.Errorf("fetch events for %s/app: %+v; want %d, the last one of version %d", mnt, ev, changes+1, changes+1)
	}
	h.rec.noLeak(t, append(values, "other1-token-value", "other2-token-value")...)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// TestKVv1ChangeDetected: a KV v1 secret has no versions: it is re-read every
// interval (one request) and compared; a change re-renders the file, an unchanged
// read does nothing.
func TestKVv1ChangeDetected(t *testing.T) {
	t.Parallel()
	v := sharedVault(t)
	c := v.Client
	mnt := unique("kv1")
	mount(t, c, "kv", mnt, nil)
	write(t, c, mnt+"/app", map[string]any{"token": "kv1-token-1"})
	dir := t.TempDir()
	out := filepath.Join(dir, "token")
	cfg := Config{Vault: tokenVault(v), PollInterval: time.Second,
		Files: []File{{FileConfig: render.FileConfig{Path: out, Source: mnt + "/app", Key: "token"}}}}
	h := newHarness(t, cfg)
	h.run(t)
	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	from := time.Now()
	time.Sleep(2500 * time.Millisecond)
	write(t, c, mnt+"/app", map[string]any{"token": "kv1-token-2"})
	eventually(t, 5*time.Second, "the change", func() bool { return fileHas(out, "kv1-token-2") })
	to := time.Now()
	reads := 0
	for _, r := range h.req.between(from, to) {
		if r.path == "/v1/"+mnt+"/app" {
			reads++
		}
	}
	if intervals := to.Sub(from).Seconds(); float64(reads) > intervals+1 || reads < 2 {
		t.Errorf("%d reads in %.1f intervals; want about one per interval", reads, intervals)
	}
	if ev := h.rec.find(audit.KindFetch, "ok", mnt+"/app"); len(ev) != 2 || ev[1].Detail != "changed" {
		t.Errorf("fetch events %+v; want the first read and the change only", ev)
	}
	if got := h.red.values(mnt + "/app"); !slices.Equal(got, []string{"kv1-token-1", "kv1-token-2"}) {
		t.Errorf("registered %d values, want the current and the previous token", len(got))
	}
}
