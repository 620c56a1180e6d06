// Package audit defines the events the secrets side records: every auth, fetch,
// renewal, rotation, revocation, reload and failure, without secret values, so that an
// SRE can see that an error spike followed a rotation.
package audit

import (
	"log/slog"
	"time"
)

// Kind says what happened.
type Kind string

// The kinds of audit events.
const (
	KindAuth    Kind = "auth"    // logged in to Vault (or failed to)
	KindToken   Kind = "token"   // the Vault token was renewed or expired
	KindFetch   Kind = "fetch"   // a secret was read (or issued)
	KindRenew   Kind = "renew"   // a lease was renewed
	KindRotate  Kind = "rotate"  // new credentials replaced old ones before expiry
	KindRevoke  Kind = "revoke"  // an old lease was revoked
	KindRender  Kind = "render"  // a file was written
	KindReload  Kind = "reload"  // the application was told to reload
	KindFailure Kind = "failure" // anything above that failed, when not reported with its own kind
)

// Event is one audit event. It never holds a secret value: paths, lease ids, versions
// and outcomes only.
type Event struct {
	Time     time.Time
	Kind     Kind
	Path     string        // the Vault path or the rendered file
	LeaseID  string        // the lease concerned, if any
	Version  int           // KV version, if any
	TTL      time.Duration // lease or token TTL after the event, if any
	Outcome  string        // "ok" or "error"
	Error    string        // what went wrong, with what to check
	Duration time.Duration // how long the operation took
	Detail   string        // short free text: method, role, signal, file count …
}

// Sink receives audit events. Implementations must not block for long: Record is
// called on the secrets hot path.
type Sink interface {
	Record(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Record calls f.
func (f SinkFunc) Record(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Attrs returns the event as slog attributes, leaving out empty fields.
func (e Event) Attrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("kind", string(e.Kind)), slog.String("outcome", e.Outcome)}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("path", e.Path)
	add("lease_id", e.LeaseID)
	add("detail", e.Detail)
	add("error", e.Error)
	if e.Version != 0 {
		attrs = append(attrs, slog.Int("version", e.Version))
	}
	if e.TTL != 0 {
		attrs = append(attrs, slog.Duration("ttl", e.TTL))
	}
	if e.Duration != 0 {
		attrs = append(attrs, slog.Duration("duration", e.Duration))
	}
	return attrs
}
