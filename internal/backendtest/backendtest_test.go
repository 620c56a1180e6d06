package backendtest

import (
	"path/filepath"
	"testing"
)

func TestBinaryAndCache(t *testing.T) {
	t.Setenv("OUTRIDER_CACHE", "/c")
	t.Setenv("OUTRIDER_X_BIN", "")
	if got := Binary("OUTRIDER_X_BIN", "x", "v1"); got != filepath.Join("/c", "bin", "x-v1") {
		t.Errorf("Binary = %s", got)
	}
	t.Setenv("OUTRIDER_X_BIN", "/opt/x")
	if got := Binary("OUTRIDER_X_BIN", "x", "v1"); got != "/opt/x" {
		t.Errorf("Binary with env = %s", got)
	}
	t.Setenv("OUTRIDER_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := CacheDir(); got != "/xdg/outrider" {
		t.Errorf("CacheDir = %s", got)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v", ports)
		}
		seen[p] = true
	}
}
