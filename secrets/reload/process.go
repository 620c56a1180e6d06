package reload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// commLen is the longest name the kernel keeps in /proc/PID/comm (TASK_COMM_LEN-1).
const commLen = 15

// maxPIDFileBytes bounds how much of a pid file is read.
const maxPIDFileBytes = 4096

// procInfo is what the reloader reads about a process from /proc/PID/stat.
type procInfo struct {
	comm  string
	state byte // R, S, D, Z, X, …
}

// dead reports whether the process has exited (zombie or dead) and would ignore a
// signal.
func (p procInfo) dead() bool { return p.state == 'Z' || p.state == 'X' || p.state == 'x' }

// parseStat parses the beginning of /proc/PID/stat: "PID (COMM) STATE …". COMM may
// hold spaces and parentheses, so it ends at the last ')'.
func parseStat(b []byte) (procInfo, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 >= len(b) || b[end+1] != ' ' {
		return procInfo{}, errors.New("malformed /proc stat line")
	}
	return procInfo{comm: string(b[open+1 : end]), state: b[end+2]}, nil
}

// parsePID parses the content of a pid file: a positive decimal number on the first
// line, surrounded by optional white space.
func parsePID(b []byte) (int, error) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	s := strings.TrimSpace(string(line))
	if s == "" {
		return 0, errors.New("the pid file is empty")
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n <= 0 {
		if len(s) > 20 {
			s = s[:20] + "…"
		}
		return 0, fmt.Errorf("the pid file holds %q, not a process id", s)
	}
	return int(n), nil
}

// procFS reads process information from a procfs mount.
type procFS struct {
	dir  string // "/proc"
	self int    // outrider's own pid, never signalled
}

func (fs procFS) stat(pid int) (procInfo, error) {
	b, err := os.ReadFile(filepath.Join(fs.dir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procInfo{}, err
	}
	return parseStat(b)
}

// argv0Base returns the base name of the process's argv[0], or "" (kernel threads,
// processes that exited, cmdlines that cannot be read).
func (fs procFS) argv0Base(pid int) string {
	f, err := os.Open(filepath.Join(fs.dir, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	defer f.Close()
	var buf [512]byte
	n, _ := io.ReadFull(f, buf[:])
	arg, _, _ := bytes.Cut(buf[:n], []byte{0})
	if len(arg) == 0 {
		return ""
	}
	return filepath.Base(string(arg))
}

// matches reports whether the live process pid is named name, and its stat.
func (fs procFS) matches(pid int, name string) (bool, procInfo, error) {
	info, err := fs.stat(pid)
	if err != nil {
		return false, info, err
	}
	if len(name) <= commLen && info.comm == name {
		return true, info, nil
	}
	return fs.argv0Base(pid) == name, info, nil
}

// scanResult is what a scan of /proc found for a name.
type scanResult struct {
	pids    []int // live matches that may be signalled
	zombies int   // matches that have exited but not been reaped
	self    bool  // outrider itself matched (and was left out)
	pid1    bool  // PID 1 matched and was left out (allow_pid1 is off)
}

// find lists the processes named name.
func (fs procFS) find(name string, allowPID1 bool) (scanResult, error) {
	var res scanResult
	d, err := os.Open(fs.dir)
	if err != nil {
		return res, fmt.Errorf("cannot list processes: %w; finding a process by name needs /proc (Linux)", err)
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			pid, perr := strconv.Atoi(n)
			if perr != nil || pid <= 0 {
				continue
			}
			ok, info, merr := fs.matches(pid, name)
			if merr != nil || !ok { // a process that exited during the scan is no match
				continue
			}
			switch {
			case info.dead():
				res.zombies++
			case pid == fs.self:
				res.self = true
			case pid == 1 && !allowPID1:
				res.pid1 = true
			default:
				res.pids = append(res.pids, pid)
			}
		}
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("cannot list processes in %s: %w", fs.dir, err)
		}
	}
}

// errGone says that a process exited (or was replaced) between the scan and the
// signal.
var errGone = errors.New("process has exited")

// signal sends sig to pid after checking, with the process pinned (a pidfd on
// Linux), that it is still alive and, when name is set, still named name: a pid
// recycled by another program after the scan is never signalled.
func (fs procFS) signal(pid int, sig syscall.Signal, name string) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	if name != "" {
		ok, info, err := fs.matches(pid, name)
		if err != nil || !ok || info.dead() {
			return errGone
		}
	} else if info, err := fs.stat(pid); err == nil && info.dead() {
		return errGone
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	err = p.Signal(sig)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrProcessDone):
		return errGone
	case errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w; run outrider as the application's user or give it the CAP_KILL capability", syscall.EPERM)
	default:
		return err
	}
}

// signalNotifier signals a process found by name or through a pid file.
type signalNotifier struct {
	fs        procFS
	sig       syscall.Signal
	process   string
	pidFile   string
	allowPID1 bool
}

func (s *signalNotifier) method() string { return MethodSignal }

func (s *signalNotifier) target() string {
	t := signalName(s.sig)
	if s.pidFile != "" {
		t += " to pid_file " + s.pidFile
		if s.process != "" {
			t += " (process " + s.process + ")"
		}
		return t
	}
	return t + " to process " + s.process
}

func (s *signalNotifier) reload(ctx context.Context, _ []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.pidFile != "" {
		return s.signalPIDFile()
	}
	return s.signalByName()
}

func (s *signalNotifier) signalByName() (int, error) {
	res, err := s.fs.find(s.process, s.allowPID1)
	if err != nil {
		return 0, err
	}
	var sent int
	var errs []error
	for _, pid := range res.pids {
		switch err := s.fs.signal(pid, s.sig, s.process); {
		case err == nil:
			sent++
		case errors.Is(err, errGone):
		default:
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
		}
	}
	if len(errs) > 0 {
		return sent, fmt.Errorf("sending %s to %d of %d processes named %q failed: %w",
			signalName(s.sig), len(errs), len(errs)+sent, s.process, errors.Join(errs...))
	}
	if sent == 0 {
		var why []string
		if res.zombies > 0 {
			why = append(why, fmt.Sprintf("%d exited (zombie) process(es) skipped", res.zombies))
		}
		if res.self {
			why = append(why, "outrider's own process is never signalled")
		}
		if res.pid1 {
			why = append(why, "PID 1 is signalled only with allow_pid1: true")
		}
		if len(why) > 0 {
			return 0, fmt.Errorf("no process named %q to signal (%s)", s.process, strings.Join(why, "; "))
		}
		return 0, fmt.Errorf("no running process named %q in %s; check the name (the program's base name) and, in Kubernetes, that the pod sets shareProcessNamespace: true (docker compose: pid: \"service:APP\")", s.process, s.fs.dir)
	}
	return sent, nil
}

func (s *signalNotifier) signalPIDFile() (int, error) {
	f, err := os.Open(s.pidFile)
	if err != nil {
		return 0, fmt.Errorf("cannot read pid_file: %w; check that the application writes it and that outrider mounts its directory", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPIDFileBytes))
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("cannot read pid_file %s: %w", s.pidFile, err)
	}
	pid, err := parsePID(b)
	if err != nil {
		return 0, fmt.Errorf("pid_file %s: %w", s.pidFile, err)
	}
	switch {
	case pid == s.fs.self:
		return 0, fmt.Errorf("pid_file %s names outrider's own process (%d), which is never signalled; point it at the application's pid file", s.pidFile, pid)
	case pid == 1 && !s.allowPID1:
		return 0, fmt.Errorf("pid_file %s names PID 1, which is signalled only with allow_pid1: true (set it when the application is PID 1 of the shared process namespace)", s.pidFile)
	}
	switch err := s.fs.signal(pid, s.sig, s.process); {
	case errors.Is(err, errGone) && s.process != "":
		return 0, fmt.Errorf("process %d from pid_file %s is not running or not named %q (a stale pid file?)", pid, s.pidFile, s.process)
	case errors.Is(err, errGone):
		return 0, fmt.Errorf("process %d from pid_file %s is not running (a stale pid file?)", pid, s.pidFile)
	case err != nil:
		return 0, fmt.Errorf("sending %s to pid %d from pid_file %s: %w", signalName(s.sig), pid, s.pidFile, err)
	}
	return 1, nil
}
