// Package pgtest runs a real PostgreSQL server on 127.0.0.1 for integration tests
// (Vault's database secrets engine) and the demo. It uses Debian's PostgreSQL 15,
// installed by `make backends`; when it is missing, Start fails with that command.
//
// PostgreSQL refuses to run as root, so when the test runs as root the server (and
// initdb) run as the postgres user, in a temporary directory owned by it. The server
// listens on 127.0.0.1 only, on a free port, and on a Unix socket in a directory of
// its own. Local (socket) connections are trusted; TCP connections need a password
// (scram-sha-256), so a login over TCP really checks credentials — which is what a
// test of dynamic database credentials needs.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
)

// Version is the PostgreSQL major version used.
const Version = "15"

// Superuser is the name of the server's superuser.
const Superuser = "postgres"

// BinDir returns the directory of the PostgreSQL programs: $OUTRIDER_PG_BIN, or
// Debian's /usr/lib/postgresql/15/bin.
func BinDir() string {
	if d := os.Getenv("OUTRIDER_PG_BIN"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/" + Version + "/bin"
}

// Server is a running PostgreSQL server.
type Server struct {
	// Host is the TCP address the server listens on (always 127.0.0.1).
	Host string
	// Port is its TCP port (the socket uses the same number).
	Port int
	// Password is the superuser's password, for TCP connections (Vault's).
	Password string
	// SocketDir holds the server's Unix socket; connections there are trusted.
	SocketDir string
	// Dir holds the data directory, the socket directory and the server log
	// (postgres.log).
	Dir string

	cred   *syscall.Credential // nil when not running as root
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// Start initialises a fresh cluster in a new temporary directory and starts the
// server, waiting until it accepts connections. Stop removes everything.
func Start(ctx context.Context) (*Server, error) {
	bin := BinDir()
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		return nil, fmt.Errorf("real PostgreSQL %s not found in %s: run `make backends` (it installs Debian's postgresql package), or set OUTRIDER_PG_BIN", Version, bin)
	}
	if _, err := exec.LookPath(filepath.Join(bin, "psql")); err != nil {
		return nil, fmt.Errorf("psql not found in %s: run `make backends`", bin)
	}
	dir, err := os.MkdirTemp("", "outrider-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, SocketDir: filepath.Join(dir, "sock")}
	if err := s.start(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return err
		}
		s.cred = cred
	}
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	s.Password = hex.EncodeToString(pw)
	pwFile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Mkdir(s.SocketDir, 0o700); err != nil {
		return err
	}
	for _, p := range []string{s.Dir, s.SocketDir, pwFile} {
		if err := s.chown(p); err != nil {
			return err
		}
	}
	data := filepath.Join(s.Dir, "data")
	initdb := s.command(ctx, "initdb", "-D", data, "-U", Superuser, "--pwfile="+pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, tail(out))
	}
	port, err := backendtest.FreePort()
	if err != nil {
		return err
	}
	s.Port = port
	logPath := filepath.Join(s.Dir, "postgres.log")
	s.log, err = os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Not bound to ctx: the server lives until Stop.
	cmd := s.command(context.Background(), "postgres", "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-k", s.SocketDir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=50", "-c", "shared_buffers=16MB")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// The credential is switched before the parent-death signal is set, so the
	// signal survives the switch (Go sets it last).
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	return s.waitReady(ctx, 30*time.Second, logPath)
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration, logPath string) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited while starting; see %s", logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := s.Query(ctx, "SELECT 1"); err == nil {
			return nil
		}
	}
	return fmt.Errorf("postgres not ready after %s; see %s", timeout, logPath)
}

// command runs a PostgreSQL program as the postgres user when we are root.
func (s *Server) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), prog), args...)
	cmd.Dir = s.Dir
	cmd.Env = s.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// env is the programs' environment: ours without PG* variables (which would point
// psql elsewhere), with HOME in the server's directory.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+s.Dir, "PGCONNECT_TIMEOUT=5")
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no postgres user: run `make backends` (Debian's postgresql package creates it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// URL returns a connection URL template for Vault's database engine: it holds the
// literal {{username}} and {{password}} placeholders Vault fills in from its
// connection config (username Superuser, password Password).
func (s *Server) URL() string {
	return fmt.Sprintf("postgresql://{{username}}:{{password}}@%s:%d/postgres?sslmode=disable", s.Host, s.Port)
}

// Query runs sql as the superuser over the Unix socket and returns psql's unaligned,
// tuples-only output (one row per line, columns separated by '|'), trimmed.
func (s *Server) Query(ctx context.Context, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), "psql"),
		"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-U", Superuser, "-d", "postgres", "-c", sql)
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %w: %s", sql, err, tail(out))
	}
	return strings.TrimSpace(string(out)), nil
}

// Roles returns the names of the roles whose name starts with prefix.
func (s *Server) Roles(ctx context.Context, prefix string) ([]string, error) {
	out, err := s.Query(ctx, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, '"+strings.ReplaceAll(prefix, "'", "''")+"') ORDER BY rolname")
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// RoleExists reports whether the role name exists.
func (s *Server) RoleExists(ctx context.Context, name string) (bool, error) {
	out, err := s.Query(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = '"+strings.ReplaceAll(name, "'", "''")+"'")
	if err != nil {
		return false, err
	}
	return out == "1", nil
}

// Login connects over TCP as user with password (scram-sha-256) and runs a query,
// so it fails unless the credentials are valid right now. The password goes through
// the environment, never the command line, and is not in the error.
func (s *Server) Login(ctx context.Context, user, password string) error {
	conn := fmt.Sprintf("host=%s port=%d dbname=postgres user=%s", s.Host, s.Port, quoteConnValue(user))
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), "psql"), "-X", "-q", "-A", "-t", "-w", "-d", conn, "-c", "SELECT current_user")
	cmd.Env = append(s.env(), "PGPASSWORD="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("login as %s: %w: %s", user, err, strings.ReplaceAll(tail(out), password, "[password]"))
	}
	if got := strings.TrimSpace(string(out)); got != user {
		return fmt.Errorf("login as %s: connected as %q", user, got)
	}
	return nil
}

func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Stop stops the server (fast shutdown, then SIGKILL after 10 s) and removes its
// directory.
func (s *Server) Stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		s.cmd = nil
	}
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
	if s.Dir != "" {
		os.RemoveAll(s.Dir)
	}
}

func tail(b []byte) string {
	const n = 2048
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
