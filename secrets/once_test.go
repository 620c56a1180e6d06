package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/render"
)

// TestRenderOnce renders every file once against the real Vault: the good files are
// written even though one template references a missing key and one a missing
// secret; the error names both files and why, without values; nothing is left
// running (goleak in TestMain).
func TestRenderOnce(t *testing.T) {
	t.Parallel()
	v := sharedVault(t)
	c := v.Client
	mnt := unique("kv")
	mount(t, c, "kv", mnt, map[string]string{"version": "2"})
	kvPut(t, c, mnt, "app", map[string]any{"password": "once-password-1", "user": "app-user"})
	kv1 := unique("kv1")
	mount(t, c, "kv", kv1, nil)
	write(t, c, kv1+"/legacy", map[string]any{"token": "legacy-token-1"})

	dir := t.TempDir()
	good := filepath.Join(dir, "good.env")
	legacy := filepath.Join(dir, "legacy.txt")
	missingKey := filepath.Join(dir, "missing-key.conf")
	missingSecret := filepath.Join(dir, "missing-secret.conf")
	cfg := Config{
		Vault: tokenVault(v),
		Files: []File{
			fileCfg(missingKey, `{{ with secret "`+mnt+`/app" }}user={{ .Data.data.user }} pass={{ .Data.data.passwrd }}{{ end }}`),
			shortCfg(good, mnt+"/app", render.FormatEnv),
			fileCfg(missingSecret, `{{ (secret "`+mnt+`/nothing-here").Data.data.x }}`),
			{FileConfig: render.FileConfig{Path: legacy, Source: kv1 + "/legacy", Key: "token"}},
		},
	}
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := h.s.RenderOnce(ctx)
	if err == nil {
		t.Fatal("RenderOnce = nil, want an error naming the two failed files")
	}
	msg := err.Error()
	t.Logf("RenderOnce error:\n%s", msg)
	for _, want := range []string{
		"2 of 4 files not rendered",
		missingKey, `no key "passwrd"`, "line 1",
		missingSecret, "secret not found at " + mnt + "/nothing-here",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q", want)
		}
	}
	if !errors.Is(err, render.ErrMissingKey) || !errors.Is(err, render.ErrNotFound) {
		t.Errorf("the error does not wrap render.ErrMissingKey and render.ErrNotFound")
	}
	var oe *OnceError
	if !errors.As(err, &oe) || len(oe.Files) != 2 || oe.Files[0].Path != missingKey || oe.Files[1].Path != missingSecret {
		t.Errorf("OnceError = %+v", oe)
	}
	for _, v := range []string{"once-password-1", "app-user", "legacy-token-1"} {
		if strings.Contains(msg, v) {
			t.Errorf("the error holds a secret value")
		}
	}
	if got := readFile(t, good); got != "password=once-password-1\nuser=app-user\n" {
		t.Errorf("good.env = %q", got)
	}
	if got := readFile(t, legacy); got != "legacy-token-1" {
		t.Errorf("legacy.txt = %q", got)
	}
	for _, p := range []string{missingKey, missingSecret} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s was written although its render failed", p)
		}
	}
	if h.s.Ready() {
		t.Error("Ready after a RenderOnce with failures")
	}
	if n := len(h.rec.find(audit.KindRender, "ok", "")); n != 2 {
		t.Errorf("%d render ok events, want 2", n)
	}
	if n := len(h.rec.find(audit.KindRender, "error", "")); n != 2 {
		t.Errorf("%d render error events, want 2", n)
	}
	// The secret read by two files was fetched once.
	if n := len(h.rec.find(audit.KindFetch, "ok", mnt+"/app")); n != 1 {
		t.Errorf("%s/app fetched %d times, want once for both files", mnt, n)
	}
	if err := h.s.RenderOnce(ctx); err == nil || !strings.Contains(err.Error(), "runs once") {
		t.Errorf("a second RenderOnce = %v, want an error", err)
	}
	h.rec.noLeak(t, "once-password-1", "legacy-token-1")
}

// TestRenderOnceAllGood: with every file fine, RenderOnce returns nil and the Syncer
// is ready.
func TestRenderOnceAllGood(t *testing.T) {
	t.Parallel()
	v := sharedVault(t)
	mnt := unique("kv")
	mount(t, v.Client, "kv", mnt, map[string]string{"version": "2"})
	kvPut(t, v.Client, mnt, "a", map[string]any{"k": "value-of-a"})
	dir := t.TempDir()
	cfg := Config{Vault: tokenVault(v), Files: []File{
		{FileConfig: render.FileConfig{Path: filepath.Join(dir, "a"), Source: mnt + "/a", Key: "k"}},
		fileCfg(filepath.Join(dir, "b"), `{{ (secret "`+mnt+`/a").Data.data.k | base64Encode }}`),
	}}
	h := newHarness(t, cfg)
	if err := h.s.RenderOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !h.s.Ready() {
		t.Error("not Ready after a successful RenderOnce")
	}
	if got := readFile(t, filepath.Join(dir, "b")); got != "dmFsdWUtb2YtYQ==" {
		t.Errorf("b = %q", got)
	}
}
