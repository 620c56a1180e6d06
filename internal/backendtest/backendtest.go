// Package backendtest holds what the real-backend harnesses (lokitest, vaulttest,
// pgtest) share: where `make backends` caches binaries, and free loopback ports.
package backendtest

import (
	"net"
	"os"
	"path/filepath"
)

// CacheDir is where `make backends` puts what it builds: $OUTRIDER_CACHE, else
// ${XDG_CACHE_HOME:-~/.cache}/outrider.
func CacheDir() string {
	if d := os.Getenv("OUTRIDER_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "outrider")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "outrider")
}

// Binary returns $<envVar> when set, else the cached CacheDir()/bin/<name>-<version>.
func Binary(envVar, name, version string) string {
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	return filepath.Join(CacheDir(), "bin", name+"-"+version)
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. They are free when
// returned; a server started right after binds them.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePort returns one free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}
