// Package reload tells the application to reload when its secret files change: a
// signal to a process found by name or pid file, an HTTP request to the app, or a
// command run with a timeout. Changes that come close together are coalesced into
// one reload, and every attempt is recorded (audit event, metric, log line).
//
// # Lifecycle
//
// New validates the configuration and starts nothing. Run(ctx) performs the
// coalesced reloads until ctx is done and returns nil; it is the only goroutine a
// Reloader needs, it may be called once, and a reload in progress when ctx is done
// is cancelled (a command is killed with its process group, an HTTP request is
// aborted). ReloadNow makes one immediate attempt without Run (render --once hooks).
//
// # Coalescing
//
// Notify(reason) never blocks. A reload happens min_wait after the last change, but
// at most max_wait after the first change not yet reloaded, so a burst of changes
// costs one reload and a continuous stream of changes still reloads every max_wait.
// Reloads never overlap: a change that arrives while a reload runs is reloaded by a
// following one.
//
// # Failures and retries
//
// A failed reload is retried up to retries times (default 3) with full-jitter
// exponential backoff: the first retry after max_wait, then a random delay up to
// 2×, 4× … 8× max_wait. Every attempt, failed or not, is recorded; the last failure
// is reported as final. A new change arriving while a retry is pending joins it and
// gives it a full set of retries again.
//
// # Tickets: learning that a reload succeeded
//
// Notify returns a Ticket. Wait(ctx, t) blocks until the changes of t are reloaded
// for good and returns that reload's Outcome: a successful reload that started
// after Notify returned t (so it saw every file written before Notify), or the
// failed reload that gave up on t after its retries, with its error. Once a
// success covers t, Wait(t) reports success for ever. The secrets Syncer relies on
// this for rotation: render the new credentials, t := Notify(path), and revoke the
// old lease only after Wait(ctx, t) returns an OK outcome. Wait returns ErrStopped
// when Run returned before t was settled, and ctx.Err() when ctx is done first.
// With method none, every ticket is complete as soon as it is issued.
//
// # Signals and process lookup
//
// With process, every live process whose /proc/PID/comm (at most 15 characters,
// as the kernel keeps it) or whose argv[0] base name equals the name is signalled,
// and Outcome.Targets says how many were. Zombies are skipped; a process that exits
// between the scan and the signal is skipped; the process is pinned (pidfd) and its
// name checked again before the signal, so a recycled pid is never signalled. When
// no process is left to signal, the reload fails. outrider never signals itself,
// and signals PID 1 of its own process namespace only with allow_pid1: true (PID 1
// is usually the pause process or an init; it is the application only when
// outrider joined the application's namespace, as with docker compose's
// pid: "service:app").
//
// Seeing the application's processes needs a shared process namespace: in
// Kubernetes, shareProcessNamespace: true on the pod; with docker compose, pid:
// "service:app" on outrider. Signalling needs the same user as the application or
// the CAP_KILL capability. A pid_file is read again at every reload, and must hold
// a pid of the shared namespace; set process as well to have the pid's name
// checked before the signal.
//
// # HTTP and commands
//
// An HTTP reload succeeds on a 2xx answer; redirects are not followed, no proxy is
// used, and the URL must be on a loopback address unless allow_remote is set.
// Header values are secrets and never logged; the URL is shown without credentials
// or query. A command runs without a shell in its own process group, with
// outrider's environment minus VAULT_* plus OUTRIDER_RELOAD_NAME and
// OUTRIDER_RELOAD_REASONS; a non-zero exit fails the reload with the last 1 KiB of
// its stderr in the error, and whatever it leaves running in its group is killed.
// An HTTP error body (first 256 bytes) and a command's stderr tail are quoted in
// errors and audit events: they come from the application, which must not print
// secret values there.
package reload
