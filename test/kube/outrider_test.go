package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runOutrider runs one outrider command to completion and returns its stdout and
// stderr; a non-zero exit is an error that carries stderr.
func runOutrider(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return runOutriderEnv(ctx, nil, args...)
}

// runOutriderEnv is runOutrider with env (NAME=value) added to the environment.
func runOutriderEnv(ctx context.Context, env []string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, outriderBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("outrider %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// injectorProc is a running `outrider inject` webhook server.
type injectorProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
	// base is https://<listen address>; client trusts the webhook's CA and checks
	// the certificate against serverName.
	base       string
	client     *http.Client
	serverName string
}

// startInjector starts `outrider <args>` serving on listen with a certificate that
// caPEM issued for serverName, and waits until /healthz answers. The process is
// killed at cleanup if the test did not stop it, and its log is printed when the test
// failed.
func startInjector(t *testing.T, args []string, listen, serverName string, caPEM []byte) *injectorProc {
	t.Helper()
	return startInjectorEnv(t, nil, args, listen, serverName, caPEM)
}

// startInjectorEnv is startInjector with env (NAME=value) added to the environment.
func startInjectorEnv(t *testing.T, env []string, args []string, listen, serverName string, caPEM []byte) *injectorProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "injector.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(outriderBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the webhook CA is not PEM")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}}
	p := &injectorProc{
		t: t, cmd: cmd, log: logPath, exited: make(chan struct{}),
		base:       "https://" + listen,
		client:     &http.Client{Transport: tr, Timeout: 10 * time.Second},
		serverName: serverName,
	}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		tr.CloseIdleConnections()
		if t.Failed() {
			p.dumpLog()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, code, err := p.get("/healthz")
		if err == nil && code == http.StatusOK && strings.TrimSpace(body) == "ok" {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("outrider inject exited before it served /healthz: %v", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("outrider inject did not answer /healthz within 30s: code %d, %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get fetches path over HTTPS.
func (p *injectorProc) get(path string) (string, int, error) {
	resp, err := p.client.Get(p.base + path)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(body), resp.StatusCode, err
}

// stop sends SIGTERM and returns the exit error once the process is gone.
func (p *injectorProc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("outrider inject did not stop within %s of SIGTERM", timeout)
	}
}

func (p *injectorProc) dumpLog() {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	p.t.Logf("outrider inject log %s (last %d lines):\n%s", p.log, len(lines), strings.Join(lines, "\n"))
}

// eventually calls try every 50ms until it returns nil or timeout passes, and then
// fails the test with the last error.
func eventually(t testing.TB, timeout time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
