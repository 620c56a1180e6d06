package sentryexporter

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/secretfile"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

// target is where envelopes go, as one DSN gives it.
type target struct {
	raw      string // the DSN as read; compared, never logged
	ids      upstreamIDs
	url      string
	auth     string
	host     string // the DSN's host name, which the server's certificate must hold
	redacted string // the DSN without its key, for the agent's log
	client   *http.Client
}

// targets holds the DSN of the moment. With dsn_file (a mounted Secret) the file is
// checked before each envelope is sent — a stat, read again only when it changed —
// so a rotated DSN is used without a restart. While the file cannot be read or holds
// no valid DSN, the last good one stays in use and the problem is logged once.
type targets struct {
	file        *secretfile.File // nil: the DSN was given inline and never changes
	tls         tlsconfig.Config
	concurrency int
	onChange    func(old, cur *target)
	onProblem   func(err error)

	cur      atomic.Pointer[target]
	mu       sync.Mutex // serialises refreshes
	lastProb string     // the problem last reported, so each is logged once
}

func newTarget(raw string, d *dsn, client *http.Client) *target {
	return &target{
		raw:      raw,
		ids:      upstreamIDs{dsn: d.public(), key: d.publicKey},
		url:      d.envelopeURL(),
		auth:     d.authHeader(UserAgent),
		host:     d.hostname(),
		redacted: d.redacted(),
		client:   client,
	}
}

// get returns the target to send to now.
func (t *targets) get() *target {
	cur := t.cur.Load()
	if t.file == nil {
		return cur
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur = t.cur.Load()
	raw, err := t.file.Get()
	if err != nil {
		t.problem(err)
		return cur
	}
	if raw == cur.raw {
		t.lastProb = ""
		return cur
	}
	d, err := parseDSN(raw)
	if err != nil {
		t.problem(fieldError{"dsn_file", err})
		return cur
	}
	client := cur.client
	if d.hostname() != cur.host {
		tc, err := t.tls.LoadFor(d.hostname())
		if err != nil {
			t.problem(fieldError{"tls", err})
			return cur
		}
		client = exporterhelper.NewHTTPClient(tc, t.concurrency)
	}
	next := newTarget(raw, d, client)
	t.cur.Store(next)
	t.lastProb = ""
	if client != cur.client {
		cur.client.CloseIdleConnections()
	}
	if t.onChange != nil {
		t.onChange(cur, next)
	}
	return next
}

func (t *targets) problem(err error) {
	if msg := err.Error(); msg != t.lastProb {
		t.lastProb = msg
		if t.onProblem != nil {
			t.onProblem(err)
		}
	}
}

// fieldError is an error about one field of the exporter's configuration.
type fieldError struct {
	field string
	err   error
}

func (e fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e fieldError) Unwrap() error { return e.err }
