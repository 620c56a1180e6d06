package secrets

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
)

// depKind says how a dependency is kept fresh.
type depKind int

const (
	kindOnce    depKind = iota // a write without a lease or certificate: issued once
	kindKV2                    // KV v2: poll the metadata, read a new version
	kindReread                 // KV v1 and other lease-less reads: re-read and compare
	kindRenew                  // a renewable lease: renew at ~2/3 of its TTL, rotate at its max TTL
	kindRefetch                // a lease Vault does not renew: rotate at ~2/3 of its TTL
	kindCert                   // a certificate without a lease: re-issue at ~2/3 of its validity
)

func (k depKind) String() string {
	switch k {
	case kindKV2:
		return "kv2"
	case kindReread:
		return "reread"
	case kindRenew:
		return "renewable lease"
	case kindRefetch:
		return "non-renewable lease"
	case kindCert:
		return "certificate"
	default:
		return "once"
	}
}

// Scheduling fractions: leases are renewed (or replaced) at renewFraction of their
// TTL, less up to renewJitter of it, so that many pods started together spread their
// renewals out.
const (
	renewFraction = 2.0 / 3.0
	renewJitter   = 0.05
)

// Scrubbing thresholds: a value is registered from minValueLen bytes; each line of a
// multi-line value (a PEM key) from minLineLen bytes, since a log line can hold a
// line of it but never the whole.
const (
	minValueLen = 6
	minLineLen  = 16
)

// dep is one distinct Vault request templates make (a path and its arguments), its
// latest answer and how it is kept fresh.
type dep struct {
	key, path string
	args      []string
	kind      depKind

	sec  *vault.Secret
	view *render.Secret // what templates see of sec

	version   int           // KV v2 version read
	leaseID   string        // the current lease, if any
	increment time.Duration // the lease's original duration, asked for at each renewal
	expires   time.Time     // when the lease or certificate ends (zero: never)
	next      time.Time     // when to act next (zero: never)

	values, prev []string // registered with the Redactor: current and previous

	tokenGen uint64 // the Vault client's Generation when sec was fetched (see rotateStale)

	failures int // consecutive failures of the current operation
	bo       backoff.Backoff
	ttlGauge bool // a lease TTL gauge exists for path
}

// depKey identifies a dependency: the path, then its arguments.
func depKey(path string, args []string) string {
	if len(args) == 0 {
		return path
	}
	return path + " " + strings.Join(args, " ")
}

// fetcher is the render.Fetcher of a Syncer: it answers from the dependency cache,
// and fetches (and starts tracking) what is not in it yet. It runs on the Syncer's
// loop goroutine (or RenderOnce's).
type fetcher struct{ s *Syncer }

// Secret implements render.Fetcher.
func (f fetcher) Secret(ctx context.Context, path string, args []string) (*render.Secret, error) {
	s := f.s
	key := depKey(path, args)
	if d, ok := s.deps[key]; ok {
		return d.view, nil
	}
	d := &dep{key: key, path: path, args: slices.Clone(args), bo: s.backoff()}
	sec, err := s.fetch(ctx, d, "first use")
	if err != nil {
		if errors.Is(err, vault.ErrNotFound) {
			return nil, notFoundError{err}
		}
		return nil, err
	}
	s.deps[key] = d
	s.install(d, sec, time.Now())
	return d.view, nil
}

// notFoundError marks a Vault "not found" as render.ErrNotFound too.
type notFoundError struct{ err error }

func (e notFoundError) Error() string   { return e.err.Error() }
func (e notFoundError) Unwrap() []error { return []error{render.ErrNotFound, e.err} }

// fetch makes d's request — a read, or a write of its arguments — and audits its
// success; callers report failures.
func (s *Syncer) fetch(ctx context.Context, d *dep, reason string) (*vault.Secret, error) {
	start := time.Now()
	gen := s.client.Generation()
	var sec *vault.Secret
	var err error
	detail := reason
	if len(d.args) == 0 {
		sec, err = s.client.Read(ctx, d.path, nil)
	} else {
		data := make(map[string]any, len(d.args))
		keys := make([]string, 0, len(d.args))
		for _, a := range d.args {
			k, v, _ := strings.Cut(a, "=")
			data[k] = v
			keys = append(keys, k)
		}
		// Argument values may be sensitive: only their names are reported.
		detail += "; write with " + strings.Join(keys, ", ")
		sec, err = s.client.Write(ctx, d.path, data)
	}
	if err != nil {
		return nil, err
	}
	d.tokenGen = fetchedUnder(gen, s.client.Generation())
	ev := audit.Event{Time: start, Kind: audit.KindFetch, Path: d.path, Outcome: ResultOK, Duration: time.Since(start), Detail: detail, LeaseID: sec.LeaseID}
	if sec.LeaseID != "" {
		ev.TTL = sec.LeaseDuration
	}
	if sec.KV != nil {
		ev.Version = sec.KV.Version
	}
	s.audit.Record(ev)
	s.log.Debug("secret fetched", "path", d.path, "reason", reason, "secret", sec)
	return sec, nil
}

// install makes sec d's current answer: what templates see, how d is kept fresh,
// and the values registered for scrubbing.
func (s *Syncer) install(d *dep, sec *vault.Secret, now time.Time) {
	d.sec = sec
	d.view = &render.Secret{Data: sec.Data, LeaseID: sec.LeaseID, LeaseDuration: int(sec.LeaseDuration / time.Second), Renewable: sec.Renewable}
	d.leaseID = sec.LeaseID
	d.increment = sec.LeaseDuration
	if sec.KV != nil {
		d.version = sec.KV.Version
	}
	d.kind, d.next, d.expires = plan(sec, len(d.args) > 0, now, s.cfg.PollInterval, renewAt())
	if !d.expires.IsZero() {
		d.ttlGauge = true
		s.met.leaseTTL.WithLabelValues(d.path).Set(d.expires.Sub(now).Seconds())
	}
	s.setValues(d, secretValues(sec))
}

// renewAt returns the fraction of a TTL after which to renew: about two thirds.
func renewAt() float64 { return renewFraction - renewJitter*rand.Float64() }

// plan decides how a dependency answered with sec is kept fresh, and when to act
// next: at frac of a lease's TTL (renew, or rotate when Vault will not renew it); at
// frac of a certificate's validity (from now, or NotBefore if later, to NotAfter)
// for a write answered with a certificate and no lease; every poll for reads without
// a lease; never for other writes. expires is when the lease or certificate ends.
func plan(sec *vault.Secret, write bool, now time.Time, poll time.Duration, frac float64) (kind depKind, next, expires time.Time) {
	switch {
	case sec.LeaseID != "":
		if sec.LeaseDuration <= 0 {
			return kindRefetch, now.Add(poll), time.Time{}
		}
		expires = now.Add(sec.LeaseDuration)
		if write {
			// A certificate with a lease (PKI generate_lease) may end before it.
			if _, notAfter, ok := certValidity(sec.Data); ok && notAfter.Before(expires) {
				expires = notAfter
			}
		}
		next = now.Add(time.Duration(float64(max(expires.Sub(now), 0)) * frac))
		if sec.Renewable {
			return kindRenew, next, expires
		}
		return kindRefetch, next, expires
	case write:
		notBefore, notAfter, ok := certValidity(sec.Data)
		if !ok {
			return kindOnce, time.Time{}, time.Time{}
		}
		start := now
		if notBefore.After(start) {
			start = notBefore
		}
		if !notAfter.After(start) {
			// Issued already expired: try again in a while rather than in a loop.
			return kindCert, now.Add(poll), notAfter
		}
		return kindCert, start.Add(time.Duration(float64(notAfter.Sub(start)) * frac)), notAfter
	case sec.KV != nil:
		return kindKV2, now.Add(poll), time.Time{}
	default:
		return kindReread, now.Add(poll), time.Time{}
	}
}

// certValidity returns the validity of the PEM certificate in data["certificate"]
// (a PKI issue or sign answer).
func certValidity(data map[string]any) (notBefore, notAfter time.Time, ok bool) {
	s, _ := data["certificate"].(string)
	if s == "" {
		return time.Time{}, time.Time{}, false
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return time.Time{}, time.Time{}, false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	return c.NotBefore, c.NotAfter, true
}

// secretValues returns the values of sec to scrub, sorted and distinct: every string
// of its data (of a KV v2 answer, of the secret's own data, not its metadata) of at
// least minValueLen bytes but PEM certificates (public), and each line of at least
// minLineLen bytes of a multi-line value.
func secretValues(sec *vault.Secret) []string {
	var src any = sec.Data
	if sec.KV != nil {
		src = sec.Data["data"]
	}
	out := collectValues(nil, src)
	slices.Sort(out)
	return slices.Compact(out)
}

func collectValues(dst []string, v any) []string {
	switch t := v.(type) {
	case json.Number:
		// Rendered as written (a PIN, an account number): scrub it as text.
		return collectValues(dst, string(t))
	case string:
		if len(t) < minValueLen {
			return dst
		}
		if strings.Contains(t, "-----BEGIN ") {
			if out, ok := collectPEM(dst, t); ok {
				return out
			}
		}
		dst = append(dst, t)
		if strings.ContainsAny(t, "\r\n") {
			for _, line := range strings.FieldsFunc(t, func(r rune) bool { return r == '\n' || r == '\r' }) {
				line = strings.TrimSpace(line)
				if len(line) >= minLineLen && !strings.HasPrefix(line, "-----") {
					dst = append(dst, line)
				}
			}
		}
	case map[string]any:
		for _, e := range t {
			dst = collectValues(dst, e)
		}
	case []any:
		for _, e := range t {
			dst = collectValues(dst, e)
		}
	case []string:
		for _, e := range t {
			dst = collectValues(dst, e)
		}
	}
	return dst
}

// collectPEM adds the private parts of PEM text: every block but certificates
// (public), as the block's text and each of its body lines, cut from t as written
// (logs carry the original line breaks). A certificate followed by its key (haproxy,
// nginx bundles) still has its key scrubbed. It reports false when t holds no
// complete PEM block.
func collectPEM(dst []string, t string) ([]string, bool) {
	found := false
	for {
		i := strings.Index(t, "-----BEGIN ")
		if i < 0 {
			return dst, found
		}
		rest := t[i+len("-----BEGIN "):]
		typ, _, ok := strings.Cut(rest, "-----")
		end := "-----END " + typ + "-----"
		j := strings.Index(rest, end)
		if !ok || j < 0 {
			return dst, found
		}
		found = true
		block := t[i : i+len("-----BEGIN ")+j+len(end)]
		t = t[i+len(block):]
		if typ == "CERTIFICATE" {
			continue
		}
		dst = append(dst, block)
		for _, line := range strings.FieldsFunc(block, func(r rune) bool { return r == '\n' || r == '\r' }) {
			line = strings.TrimSpace(line)
			if len(line) >= minLineLen && !strings.HasPrefix(line, "-----") {
				dst = append(dst, line)
			}
		}
	}
}

// setValues registers d's current values, with the previous ones, when they change.
func (s *Syncer) setValues(d *dep, values []string) {
	if slices.Equal(values, d.values) {
		return
	}
	d.prev, d.values = d.values, values
	all := make([]string, 0, len(d.values)+len(d.prev))
	all = append(all, d.values...)
	all = append(all, d.prev...)
	slices.Sort(all)
	s.redact.Set(d.key, slices.Compact(all))
}
