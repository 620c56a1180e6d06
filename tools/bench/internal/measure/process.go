package measure

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
)

// tailLines is how many lines of a failed process's output ShowFailure prints.
const tailLines = 30

// Process is a system under test running as a child process, its standard output
// and error going to a file. Done and Err may be used from any goroutine; the other
// methods from one goroutine at a time. Stop must be called once the process is no
// longer needed, also when it exited by itself: it releases the output file.
type Process struct {
	name    string
	logger  *slog.Logger
	cmd     *exec.Cmd
	output  *os.File
	started time.Time
	done    chan struct{}
	err     error // what Wait returned; set before done is closed
	stopped bool
}

// Start runs bin with args in dir, writing its output to dir/<name>.log. The
// kernel kills the process if this one dies first (on Linux), so no measured
// process outlives an interrupted benchmark. name labels log lines and messages.
func Start(logger *slog.Logger, name, bin string, args []string, dir string) (*Process, error) {
	return StartEnv(logger, name, bin, args, dir, nil)
}

// StartEnv is Start with the process's environment env (KEY=value) instead of this
// process's; nil inherits it, as Start does.
func StartEnv(logger *slog.Logger, name, bin string, args []string, dir string, env []string) (*Process, error) {
	path := filepath.Join(dir, name+".log")
	output, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s output file: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = output, output
	KillWithParent(cmd)
	logger.Info("starting", "system", name, "command", cmd.String())
	p := &Process{name: name, logger: logger, cmd: cmd, output: output, started: time.Now(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		output.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Started is when the process was started (taken right before it was).
func (p *Process) Started() time.Time { return p.started }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended (as exec.Cmd.Wait reports it), once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited (and been reaped).
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output is the path of the file holding the process's output.
func (p *Process) Output() string { return p.output.Name() }

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Usage reads the process's CPU time and peak RSS so far from /proc. It fails once
// the process has exited: read it before Stop.

func (p *Process) Usage() (procstat.Usage, error) {
	return procstat.Read(p.cmd.Process.Pid)
}

// ExitUsage returns the CPU time and peak RSS the kernel recorded for the process
// (its rusage), shutdown included. ok is false until the process has exited, and
// where the kernel's rusage is not available.
func (p *Process) ExitUsage() (cpu time.Duration, peakRSS int64, ok bool) {
	if !p.Exited() {
		return 0, 0, false
	}
	return exitUsage(p.cmd.ProcessState)
}

// Stop sends SIGTERM, waits up to grace for the process to exit, then kills it. It
// returns at once when the process has already exited; later calls do nothing.
func (p *Process) Stop(grace time.Duration) {
	if p.stopped {
		return
	}
	p.stopped = true
	defer p.output.Close()
	if p.Exited() {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.logger.Warn("cannot signal the process", "system", p.name, "error", err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		var ee *exec.ExitError
		if p.err != nil && !errors.As(p.err, &ee) {
			p.logger.Warn("waiting for the process failed", "system", p.name, "error", p.err)
		}
	case <-t.C:
		p.logger.Warn("process ignored SIGTERM; killing it", "system", p.name, "grace", grace)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// ShowFailure logs that the run went wrong and why (problem), and copies the last
// lines of the process's output to w.
func (p *Process) ShowFailure(w io.Writer, problem string) {
	p.logger.Error("run did not go as planned", "system", p.name, "problem", problem, "output", p.Output())
	PrintTail(w, p.name, p.Output(), tailLines)
}

// PrintTail copies the last n lines of the file at path, the output of the process
// called name, to w, to show why it failed. It prints nothing for an empty or
// unreadable file.
func PrintTail(w io.Writer, name, path string, n int) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte{'\n'})
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(w, "--- last %d lines of %s output (%s) ---\n", len(lines), name, path)
	for _, l := range lines {
		fmt.Fprintf(w, "%s\n", l)
	}
	fmt.Fprintf(w, "--- end of %s output ---\n", name)
}
