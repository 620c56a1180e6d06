package secrets

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/vault"
)

// FuzzPlanAndValues feeds what Vault answers — a certificate field and values of any
// shape — to the scheduling and scrubbing code: it must never panic, never schedule
// into the past, and register only sorted, distinct values long enough to scrub,
// never a public certificate.
func FuzzPlanAndValues(f *testing.F) {
	now := time.Now()
	f.Add(certPEM(f, now.Add(-time.Minute), now.Add(time.Hour)), "hunter2-long\r\nsecond line of the value")
	f.Add(certPEM(f, now.Add(time.Hour), now.Add(2*time.Hour)), "short")
	f.Add(certPEM(f, now.Add(-2*time.Hour), now.Add(-time.Hour)), "")
	f.Add("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nnot really")
	f.Add("not pem", "\n\n\r\r      \n")
	f.Fuzz(func(t *testing.T, cert, value string) {
		sec := &vault.Secret{Data: map[string]any{"certificate": cert, "v": value, "l": []any{value, map[string]any{"x": value}}}}
		at := time.Now()
		for _, write := range []bool{true, false} {
			kind, next, expires := plan(sec, write, at, time.Second, renewFraction)
			switch kind {
			case kindCert:
				if next.Before(at) || expires.IsZero() {
					t.Fatalf("certificate planned at %v, expiring %v (now %v)", next, expires, at)
				}
			case kindOnce:
				if !next.IsZero() {
					t.Fatal("a write issued once has a next time")
				}
			case kindReread:
				if write {
					t.Fatal("a write is re-read")
				}
			default:
				t.Fatalf("kind %v for a lease-less answer", kind)
			}
		}
		vals := secretValues(sec)
		if !slices.IsSorted(vals) || len(slices.Compact(slices.Clone(vals))) != len(vals) {
			t.Fatalf("values not sorted and distinct: %q", vals)
		}
		for _, v := range vals {
			// Certificates are public; text that only starts like one may be a secret.
			_, afterBegin, begun := strings.Cut(v, "-----BEGIN CERTIFICATE-----")
			if len(v) < minValueLen || begun && strings.Contains(afterBegin, "-----END CERTIFICATE-----") {
				t.Fatalf("registered %q", v)
			}
		}
	})
}
