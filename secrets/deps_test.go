package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
)

func certPEM(t testing.TB, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestPlan(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	poll := 30 * time.Second
	const frac = 2.0 / 3.0
	cert := certPEM(t, now.Add(-30*time.Second), now.Add(90*time.Second))
	future := certPEM(t, now.Add(30*time.Second), now.Add(120*time.Second))
	expired := certPEM(t, now.Add(-time.Hour), now.Add(-time.Minute))
	shortCert := certPEM(t, now.Add(-time.Hour), now.Add(30*time.Second))
	for _, tc := range []struct {
		name          string
		sec           vault.Secret
		write         bool
		kind          depKind
		next, expires time.Duration // after now; -1 for zero
	}{
		{"renewable lease", vault.Secret{LeaseID: "db/creds/app/1", LeaseDuration: time.Hour, Renewable: true}, false, kindRenew, 40 * time.Minute, time.Hour},
		{"non-renewable lease", vault.Secret{LeaseID: "x/1", LeaseDuration: 90 * time.Second}, false, kindRefetch, time.Minute, 90 * time.Second},
		{"lease without TTL", vault.Secret{LeaseID: "x/1"}, false, kindRefetch, poll, -1},
		{"PKI lease ends with its certificate", vault.Secret{LeaseID: "pki/issue/x/1", LeaseDuration: time.Hour, Data: map[string]any{"certificate": shortCert}}, true, kindRefetch, 20 * time.Second, 30 * time.Second},
		{"certificate without lease", vault.Secret{Data: map[string]any{"certificate": cert}}, true, kindCert, time.Minute, 90 * time.Second},
		{"certificate valid from later", vault.Secret{Data: map[string]any{"certificate": future}}, true, kindCert, 90 * time.Second, 120 * time.Second},
		{"expired certificate", vault.Secret{Data: map[string]any{"certificate": expired}}, true, kindCert, poll, -time.Minute},
		{"write without lease or certificate", vault.Secret{Data: map[string]any{"ciphertext": "vault:v1:abc"}}, true, kindOnce, -1, -1},
		{"write with a garbled certificate", vault.Secret{Data: map[string]any{"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}, true, kindOnce, -1, -1},
		{"KV v2", vault.Secret{KV: &vault.KVInfo{Mount: "secret/", Version: 3}, Data: map[string]any{"data": map[string]any{}}}, false, kindKV2, poll, -1},
		{"KV v1 (ttl advice, no lease)", vault.Secret{LeaseDuration: 768 * time.Hour, Data: map[string]any{"a": "b"}}, false, kindReread, poll, -1},
		{"a read answered with a certificate is polled", vault.Secret{Data: map[string]any{"certificate": cert}}, false, kindReread, poll, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, next, expires := plan(&tc.sec, tc.write, now, poll, frac)
			at := func(d time.Duration) time.Time {
				if d == -1 {
					return time.Time{}
				}
				return now.Add(d)
			}
			if kind != tc.kind || !next.Equal(at(tc.next)) || !expires.Equal(at(tc.expires)) {
				t.Errorf("plan = %v, next %v, expires %v; want %v, %v, %v", kind, next.Sub(now), expires.Sub(now), tc.kind, tc.next, tc.expires)
			}
		})
	}
	for range 100 {
		if f := renewAt(); f > renewFraction || f < renewFraction-renewJitter {
			t.Fatalf("renewAt = %v, want within [%v, %v]", f, renewFraction-renewJitter, renewFraction)
		}
	}
}

func TestSecretValues(t *testing.T) {
	key := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZE6EbHvNxXPwI7SxFUm35G3oAoGCCqGSM49\nAwEHoUQDQgAE\n-----END EC PRIVATE KEY-----\n"
	kv2 := &vault.Secret{
		KV: &vault.KVInfo{Mount: "secret/", Version: 2},
		Data: map[string]any{
			"data":     map[string]any{"password": "hunter2-long", "short": "abc12", "n": json.Number("1234567"), "list": []any{"element-one", map[string]any{"deep": "deep-value"}}},
			"metadata": map[string]any{"created_time": "2030-01-01T00:00:00.123456Z", "version": json.Number("2")},
		},
	}
	if got, want := secretValues(kv2), []string{"1234567", "deep-value", "element-one", "hunter2-long"}; !slices.Equal(got, want) {
		t.Errorf("KV v2 values = %q, want %q (no metadata, nothing under 6 bytes, numbers as written)", got, want)
	}
	pki := &vault.Secret{Data: map[string]any{
		"certificate": certPEM(t, time.Now(), time.Now().Add(time.Hour)),
		"ca_chain":    []any{certPEM(t, time.Now(), time.Now().Add(time.Hour))},
		"private_key": key,
		"serial":      "1a:2b:3c:4d",
	}}
	got := secretValues(pki)
	// The key's last line (12 bytes) is below minLineLen.
	want := []string{strings.TrimSpace(key), "1a:2b:3c:4d", "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZE6EbHvNxXPwI7SxFUm35G3oAoGCCqGSM49"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("PKI values = %q, want %q (the key and its long lines, no certificates)", got, want)
	}
	// A certificate followed by its key in one value (haproxy/nginx bundles): the key
	// is still registered, the certificate is not.
	bundle := &vault.Secret{Data: map[string]any{"pem": certPEM(t, time.Now(), time.Now().Add(time.Hour)) + key}}
	if got := secretValues(bundle); !slices.Contains(got, strings.TrimSpace(key)) || slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, "CERTIFICATE") }) {
		t.Errorf("bundle values = %q, want the key and no certificate", got)
	}
	dup := &vault.Secret{Data: map[string]any{"a": "same-value", "b": "same-value"}}
	if got := secretValues(dup); len(got) != 1 {
		t.Errorf("duplicates kept: %q", got)
	}
}

// TestSetValuesKeepsPrevious: the Redactor gets the current and the previous
// values, and nothing when they did not change.
func TestSetValuesKeepsPrevious(t *testing.T) {
	red := &countingRedactor{}
	s := &Syncer{redact: red}
	d := &dep{key: "secret/app"}
	s.setValues(d, []string{"value-one"})
	s.setValues(d, []string{"value-one"})
	if red.sets != 1 || !slices.Equal(red.last, []string{"value-one"}) {
		t.Fatalf("after one value: %d sets, %q", red.sets, red.last)
	}
	s.setValues(d, []string{"value-two"})
	if !slices.Equal(red.last, []string{"value-one", "value-two"}) {
		t.Fatalf("after a change: %q, want the current and previous", red.last)
	}
	s.setValues(d, []string{"value-three"})
	if !slices.Equal(red.last, []string{"value-three", "value-two"}) || red.owner != "secret/app" {
		t.Fatalf("after a second change: %s %q, want the current and previous only", red.owner, red.last)
	}
}

type countingRedactor struct {
	sets  int
	owner string
	last  []string
}

func (r *countingRedactor) Set(owner string, v []string) {
	r.sets, r.owner, r.last = r.sets+1, owner, v
}
func (r *countingRedactor) Remove(string) {}

func TestDepKey(t *testing.T) {
	if k := depKey("secret/app", nil); k != "secret/app" {
		t.Errorf("read key = %q", k)
	}
	if k := depKey("pki/issue/web", []string{"common_name=a", "ttl=1h"}); k != "pki/issue/web common_name=a ttl=1h" {
		t.Errorf("write key = %q", k)
	}
}

func TestOnceError(t *testing.T) {
	inner := errors.Join(render.ErrMissingKey)
	e := &OnceError{Total: 3, Files: []FileError{
		{Path: "/s/a", Err: errors.New("render /s/a: template line 2: the secret has no key \"x\"")},
		{Path: "/s/b", Err: inner},
	}}
	msg := e.Error()
	for _, want := range []string{"2 of 3 files not rendered", "\n  render /s/a: template line 2", "\n  /s/b: missing key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not contain %q", msg, want)
		}
	}
	if !errors.Is(e, render.ErrMissingKey) {
		t.Error("OnceError does not wrap the files' errors")
	}
}

func TestNotFoundError(t *testing.T) {
	e := notFoundError{err: vault.ErrNotFound}
	if !errors.Is(e, render.ErrNotFound) || !errors.Is(e, vault.ErrNotFound) || e.Error() != vault.ErrNotFound.Error() {
		t.Errorf("notFoundError = %v", e)
	}
}
