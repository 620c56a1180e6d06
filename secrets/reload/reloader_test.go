package reload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCoalesceBurst(t *testing.T) {
	c := startChild(t, uniqueName("rlb"), "")
	h := newHarness()
	cfg := signalConfig("", writePIDFile(t, c.pid))
	cfg.MinWait, cfg.MaxWait = 500*time.Millisecond, 10*time.Second
	r := h.newReloader(t, cfg)
	runReloader(t, r)

	var last Ticket
	for i := range 20 {
		last = r.Notify("/vault/secrets/f" + string(rune('a'+i%3)))
	}
	out, err := r.Wait(waitCtx(t), last)
	if err != nil || !out.OK {
		t.Fatalf("Wait = %+v, %v", out, err)
	}
	if got := strings.Join(out.Reasons, ","); got != "/vault/secrets/fa,/vault/secrets/fb,/vault/secrets/fc" {
		t.Errorf("reasons %q", got)
	}
	if n := c.hups(t); n != 1 {
		t.Errorf("a burst of 20 changes within min_wait gave %d SIGHUPs, want 1", n)
	}
	if n := h.reloads(t, MethodSignal, ResultOK); n != 1 {
		t.Errorf("%d reloads counted, want 1", n)
	}
	ev := h.audit.list()
	if len(ev) != 1 || ev[0].Kind != "reload" || ev[0].Outcome != "ok" || ev[0].Path != "/vault/secrets/app.env" {
		t.Fatalf("audit %+v", ev)
	}
	mustContain(t, "audit detail", ev[0].Detail, "signal: SIGHUP to pid_file", "1 target(s)")
	mustContain(t, "log", h.logs.String(), `"msg":"application reloaded"`, `"method":"signal"`)
}

func TestCoalesceBurstLongerThanMaxWait(t *testing.T) {
	c := startChild(t, uniqueName("rlm"), "")
	h := newHarness()
	cfg := signalConfig("", writePIDFile(t, c.pid))
	// Changes every 50ms never leave min_wait quiet; max_wait forces a reload in
	// the middle of the burst, and the rest of the burst gets one more.
	cfg.MinWait, cfg.MaxWait = time.Second, 1500*time.Millisecond
	r := h.newReloader(t, cfg)
	runReloader(t, r)

	start := time.Now()
	first := r.Notify("/vault/secrets/a")
	last := first
	for time.Since(start) < cfg.MaxWait+300*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
		last = r.Notify("/vault/secrets/a")
	}
	o1, err := r.Wait(waitCtx(t), first)
	if err != nil || !o1.OK {
		t.Fatalf("Wait(first) = %+v, %v", o1, err)
	}
	o2, err := r.Wait(waitCtx(t), last)
	if err != nil || !o2.OK {
		t.Fatalf("Wait(last) = %+v, %v", o2, err)
	}
	if !o2.Time.After(o1.Time) {
		t.Errorf("the end of the burst was reloaded by the first reload (%s), want a second one", o1.Time)
	}
	if n := c.hups(t); n != 2 {
		t.Errorf("a burst spanning more than max_wait gave %d SIGHUPs, want 2", n)
	}
}

// gatedCommand returns a command that logs "start" to a file and then waits until a
// gate file exists.
func gatedCommand(dir string) (cfg Config, log, gate string) {
	log, gate = filepath.Join(dir, "log"), filepath.Join(dir, "gate")
	cfg = execConfig(20*time.Second, `echo start >> `+log+`; while [ ! -e `+gate+` ]; do sleep 0.01; done`)
	return cfg, log, gate
}

func lineCount(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

func TestWaitReportsReloadStartedAfterTicket(t *testing.T) {
	dir := t.TempDir()
	cfg, log, gate := gatedCommand(dir)
	h := newHarness()
	r := h.newReloader(t, cfg)
	runReloader(t, r)

	t1 := r.Notify("/vault/secrets/a")
	eventually(t, 10*time.Second, "the first reload to start", func() bool { return lineCount(log) == 1 })
	t2 := r.Notify("/vault/secrets/b") // during the first reload
	notified := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := r.Wait(ctx, t2)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(t2) during a reload that started before t2 = %v, want it to block", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = r.ReloadNow(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReloadNow during a reload = %v, want it to wait for its context", err)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o1, err := r.Wait(waitCtx(t), t1)
	if err != nil || !o1.OK || strings.Join(o1.Reasons, ",") != "/vault/secrets/a" {
		t.Fatalf("Wait(t1) = %+v, %v", o1, err)
	}
	o2, err := r.Wait(waitCtx(t), t2)
	if err != nil || !o2.OK || strings.Join(o2.Reasons, ",") != "/vault/secrets/b" {
		t.Fatalf("Wait(t2) = %+v, %v", o2, err)
	}
	if o2.Time.Before(notified) {
		t.Errorf("Wait(t2) reported a reload that started at %s, before t2 was issued at %s", o2.Time, notified)
	}
	if n := lineCount(log); n != 2 {
		t.Errorf("%d reloads ran, want 2", n)
	}
	// Settled tickets stay settled.
	if again, err := r.Wait(waitCtx(t), t1); err != nil || !again.OK {
		t.Errorf("Wait(t1) again = %+v, %v", again, err)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "failed-once")
	h := newHarness()
	r := h.newReloader(t, execConfig(5*time.Second, `[ -e `+marker+` ] || { touch `+marker+`; echo not yet >&2; exit 1; }`))
	runReloader(t, r)
	out, err := r.Wait(waitCtx(t), r.Notify("/vault/secrets/a"))
	if err != nil || !out.OK || out.Attempt != 2 {
		t.Fatalf("Wait = %+v, %v; want success at attempt 2", out, err)
	}
	if h.reloads(t, MethodExec, ResultError) != 1 || h.reloads(t, MethodExec, ResultOK) != 1 {
		t.Errorf("counted %d failures and %d successes", h.reloads(t, MethodExec, ResultError), h.reloads(t, MethodExec, ResultOK))
	}
	ev := h.audit.list()
	if len(ev) != 2 || ev[0].Outcome != "error" || ev[1].Outcome != "ok" {
		t.Fatalf("audit %+v", ev)
	}
	mustContain(t, "audit detail", ev[0].Detail, "retry 1 of 3 in 50ms")
	mustContain(t, "audit error", ev[0].Error, "not yet")
}

func TestRetriesExhausted(t *testing.T) {
	h := newHarness()
	cfg := execConfig(5*time.Second, `echo broken >&2; exit 1`)
	cfg.Retries = intp(2)
	r := h.newReloader(t, cfg)
	runReloader(t, r)
	ticket := r.Notify("/vault/secrets/a")
	out, err := r.Wait(waitCtx(t), ticket)
	if err == nil || out.OK || out.Attempt != 3 || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Wait = %+v, %v; want the failure of attempt 3", out, err)
	}
	if n := h.reloads(t, MethodExec, ResultError); n != 3 {
		t.Errorf("%d failures counted, want 3", n)
	}
	ev := h.audit.list()
	if len(ev) != 3 {
		t.Fatalf("%d audit events, want 3", len(ev))
	}
	mustContain(t, "last audit detail", ev[2].Detail, "given up after 3 attempts")
	mustContain(t, "log", h.logs.String(), `"msg":"application reload failed"`, `"level":"WARN"`)
	// No more attempts once given up.
	time.Sleep(300 * time.Millisecond)
	if n := h.reloads(t, MethodExec, ResultError); n != 3 {
		t.Errorf("%d failures counted after giving up, want 3", n)
	}
}

func TestNewChangeDuringRetryJoinsIt(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	h := newHarness()
	cfg := execConfig(5*time.Second, `[ -e `+ok+` ]`)
	cfg.MaxWait = 2 * time.Second // the first retry is due only after the test's new change
	cfg.Retries = intp(1)
	r := h.newReloader(t, cfg)
	runReloader(t, r)
	t1 := r.Notify("/vault/secrets/a")
	eventually(t, 10*time.Second, "the first attempt to fail", func() bool { return h.reloads(t, MethodExec, ResultError) == 1 })
	if err := os.WriteFile(ok, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t2 := r.Notify("/vault/secrets/b")
	out, err := r.Wait(waitCtx(t), t1)
	if err != nil || !out.OK {
		t.Fatalf("Wait(t1) = %+v, %v", out, err)
	}
	if got := strings.Join(out.Reasons, ","); got != "/vault/secrets/a,/vault/secrets/b" {
		t.Errorf("reasons %q, want both changes in one reload", got)
	}
	if o2, err := r.Wait(waitCtx(t), t2); err != nil || o2.Time != out.Time {
		t.Errorf("Wait(t2) = %+v, %v; want the same reload", o2, err)
	}
}

func TestReloadNowSettlesEarlierTickets(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	r := newHarness().newReloader(t, execConfig(5*time.Second, `echo x >> `+log))
	ticket := r.Notify("/vault/secrets/a")
	if _, err := r.ReloadNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, err := r.Wait(waitCtx(t), ticket) // no Run: only ReloadNow can have settled it
	if err != nil || !out.OK || strings.Join(out.Reasons, ",") != "/vault/secrets/a" {
		t.Fatalf("Wait = %+v, %v", out, err)
	}
	// Run finds nothing left to do.
	runReloader(t, r)
	r.Notify("") // wakes Run; an empty reason is not recorded
	out, err = r.Wait(waitCtx(t), r.Notify("/vault/secrets/b"))
	if err != nil || strings.Join(out.Reasons, ",") != "/vault/secrets/b" {
		t.Fatalf("Wait = %+v, %v", out, err)
	}
	if n := lineCount(log); n != 2 {
		t.Errorf("%d reloads ran, want 2", n)
	}
}

func TestWaitErrors(t *testing.T) {
	r := newHarness().newReloader(t, execConfig(5*time.Second, `true`))
	if _, err := r.Wait(context.Background(), 0); err == nil {
		t.Error("Wait(0) accepted")
	}
	if _, err := r.Wait(context.Background(), 5); err == nil {
		t.Error("Wait of a ticket never issued accepted")
	}
	ticket := r.Notify("/vault/secrets/a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Wait(ctx, ticket); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context = %v", err)
	}

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Run may have reloaded the ticket before it saw the cancellation; a second
	// ticket is certainly not settled.
	if _, err := r.Wait(waitCtx(t), r.Notify("/vault/secrets/b")); !errors.Is(err, ErrStopped) {
		t.Errorf("Wait after Run returned = %v, want ErrStopped", err)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

func TestMethodNone(t *testing.T) {
	h := newHarness()
	r := h.newReloader(t, Config{})
	ticket := r.Notify("/vault/secrets/a")
	out, err := r.Wait(context.Background(), ticket)
	if err != nil || !out.OK || out.Method != MethodNone {
		t.Fatalf("Wait = %+v, %v", out, err)
	}
	if out, err := r.ReloadNow(context.Background()); err != nil || !out.OK {
		t.Fatalf("ReloadNow = %+v, %v", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.audit.list()) != 0 {
		t.Error("method none recorded audit events")
	}
}

func TestRunCancelKillsLongCommand(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	h := newHarness()
	r := h.newReloader(t, execConfig(time.Minute, `sleep 30 & echo $! > `+pidFile+`; wait`))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	ticket := r.Notify("/vault/secrets/a")
	sleeper := readPID(t, pidFile)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel during a long command")
	}
	eventually(t, 10*time.Second, "the command's child to be killed", func() bool { return processDead(sleeper) })
	if _, err := r.Wait(context.Background(), ticket); !errors.Is(err, ErrStopped) {
		t.Errorf("Wait after an interrupted reload = %v, want ErrStopped", err)
	}
	ev := h.audit.list()
	if len(ev) != 1 || ev[0].Outcome != "error" || !strings.Contains(ev[0].Detail, "outrider is stopping") {
		t.Errorf("audit %+v", ev)
	}
}
