package secrets

import (
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
)

// TestPKIReissue: certificates are issued with a write (pkiCert) and replaced before
// they expire: with generate_lease, the lease is not renewable, so the certificate is
// re-issued at about 2/3 of the lease's TTL and the old lease revoked after the
// reload; without a lease, at about 2/3 of the certificate's validity (NotAfter).
func TestPKIReissue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		lease bool
	}{{"generate_lease", true}, {"no lease", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := sharedVault(t)
			c := v.Client
			mnt := unique("pki")
			mount(t, c, "pki", mnt, nil)
			write(t, c, mnt+"/root/generate/internal", map[string]any{"common_name": "outrider test CA", "ttl": "2h"})
			write(t, c, mnt+"/roles/app", map[string]any{"allow_any_name": true, "generate_lease": tc.lease, "max_ttl": "1h", "key_type": "ec", "key_bits": 256})

			dir := t.TempDir()
			out := filepath.Join(dir, "tls.pem")
			cfg := Config{
				Vault:        tokenVault(v),
				PollInterval: time.Second,
				RevokeGrace:  100 * time.Millisecond,
				// The application is told (and reloads fine), so the old lease can go.
				Reload: reload.Config{Method: reload.MethodExec, Command: []string{"/bin/true"}, MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond},
				Files: []File{fileCfg(out,
					`{{ with pkiCert "`+mnt+`/issue/app" "common_name=app.test" "ttl=3s" }}{{ .Cert }}`+"\n"+`{{ .Key }}`+"\n"+`{{ end }}`)},
			}
			h := newHarness(t, cfg)
			h.run(t)
			eventually(t, 10*time.Second, "the first render", h.s.Ready)
			first := readFile(t, out)
			firstCert := parseCert(t, first)
			key := mnt + "/issue/app common_name=app.test ttl=3s"
			registered := h.red.values(key)
			if len(registered) == 0 {
				t.Fatal("nothing registered for scrubbing")
			}
			for _, v := range registered {
				if strings.Contains(v, "BEGIN CERTIFICATE") {
					t.Error("a public certificate was registered for scrubbing")
				}
			}
			wholeKey := false
			for _, v := range registered {
				wholeKey = wholeKey || strings.HasPrefix(v, "-----BEGIN EC PRIVATE KEY-----")
			}
			if !wholeKey || len(registered) < 2 || !containsAny(first, registered[1:]) {
				t.Errorf("registered %d values; want the private key and each of its lines", len(registered))
			}

			eventually(t, 10*time.Second, "a re-issued certificate", func() bool {
				c := readFile(t, out)
				return c != first && strings.Contains(c, "END EC PRIVATE KEY")
			})
			eventually(t, 5*time.Second, "the rotation event", func() bool {
				return len(h.rec.find(audit.KindRotate, "ok", mnt+"/issue/app")) > 0
			})
			second := parseCert(t, readFile(t, out))
			if second.SerialNumber.Cmp(firstCert.SerialNumber) == 0 {
				t.Fatal("the file changed but holds the same certificate")
			}
			fetched := h.rec.find(audit.KindFetch, "ok", mnt+"/issue/app")
			rotations := h.rec.find(audit.KindRotate, "ok", mnt+"/issue/app")
			if len(fetched) < 2 || len(rotations) < 1 {
				t.Fatalf("fetches %d, rotations %d; want a re-issue", len(fetched), len(rotations))
			}
			// Vault truncates NotAfter and the lease's TTL to the second, so the
			// validity seen is 2-3s; the certificate is replaced before the earlier of
			// the two.
			after := rotations[0].Time.Sub(fetched[0].Time)
			validity := firstCert.NotAfter.Sub(fetched[0].Time)
			if tc.lease {
				validity = min(validity, fetched[0].TTL)
			}
			t.Logf("3s certificate re-issued %v after the first, %.0f%% of its validity (NotAfter %v after issue)", after.Round(time.Millisecond), 100*after.Seconds()/validity.Seconds(), validity.Round(time.Millisecond))
			if after < validity/2 || after > validity-validity/5 {
				t.Errorf("re-issued %v after the first, with NotAfter %v after it; want at about 2/3 of the validity", after, validity)
			}
			if !strings.Contains(fetched[0].Detail, "write with common_name, ttl") {
				t.Errorf("fetch detail %q; want the argument names (never their values)", fetched[0].Detail)
			}
			if tc.lease {
				if fetched[0].LeaseID == "" {
					t.Fatal("generate_lease gave no lease")
				}
				eventually(t, 5*time.Second, "the old lease revoked", func() bool {
					return len(h.rec.find(audit.KindRevoke, "ok", mnt+"/issue/app")) > 0
				})
				if rev := h.rec.find(audit.KindRevoke, "ok", mnt+"/issue/app"); rev[0].LeaseID != fetched[0].LeaseID {
					t.Errorf("revoked %s, want the first lease %s", rev[0].LeaseID, fetched[0].LeaseID)
				}
				if _, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": fetched[0].LeaseID}); err == nil {
					t.Error("the old certificate's lease still exists")
				}
			} else if rev := h.rec.find(audit.KindRevoke, "", ""); len(rev) != 0 {
				t.Errorf("revocations %+v for a certificate without a lease", rev)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func parseCert(t *testing.T, text string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatal("the file does not start with a PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRotationKeepsOldLeaseWhenReloadFails: when the application does not reload
// after a rotation, the old lease is not revoked (the application may still use the
// old credentials): an audit event says why, and the lease stays valid.
func TestRotationKeepsOldLeaseWhenReloadFails(t *testing.T) {
	t.Parallel()
	v := sharedVault(t)
	c := v.Client
	mnt := unique("pki")
	mount(t, c, "pki", mnt, nil)
	write(t, c, mnt+"/root/generate/internal", map[string]any{"common_name": "outrider test CA", "ttl": "2h"})
	write(t, c, mnt+"/roles/app", map[string]any{"allow_any_name": true, "generate_lease": true, "max_ttl": "1h", "key_type": "ec", "key_bits": 256})
	retries := 0
	dir := t.TempDir()
	cfg := Config{
		Vault:        tokenVault(v),
		PollInterval: time.Second,
		RevokeGrace:  50 * time.Millisecond,
		Reload:       reload.Config{Method: reload.MethodExec, Command: []string{"/bin/sh", "-c", "echo cannot reload >&2; exit 3"}, MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, Retries: &retries},
		Files:        []File{fileCfg(filepath.Join(dir, "cert.pem"), `{{ with pkiCert "`+mnt+`/issue/app" "common_name=app.test" "ttl=3s" }}{{ .Cert }}{{ end }}`)},
	}
	h := newHarness(t, cfg)
	h.run(t)
	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	eventually(t, 10*time.Second, "the revocation decision", func() bool {
		return len(h.rec.find(audit.KindRevoke, "", mnt+"/issue/app")) > 0
	})
	first := h.rec.find(audit.KindFetch, "ok", mnt+"/issue/app")[0]
	rev := h.rec.find(audit.KindRevoke, "", mnt+"/issue/app")[0]
	if rev.Outcome != "error" || rev.LeaseID != first.LeaseID || !strings.Contains(rev.Error, "not revoked: the application did not reload") || !strings.Contains(rev.Error, "exit status 3") {
		t.Fatalf("revoke event = %+v; want the old lease kept because the reload failed", rev)
	}
	if _, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": first.LeaseID}); err != nil {
		t.Errorf("the old lease was revoked although the reload failed: %v", err)
	}
	if !strings.Contains(h.rec.text(), "rotated lease not revoked: the reload failed") {
		t.Error("no log line says the old lease was kept")
	}
}

// TestRotationWithoutReloadKeepsOldLease: with reload method none nobody tells the
// application about new credentials, so the old lease is left to run out instead of
// being revoked under it.
func TestRotationWithoutReloadKeepsOldLease(t *testing.T) {
	t.Parallel()
	v := sharedVault(t)
	c := v.Client
	mnt := unique("pki")
	mount(t, c, "pki", mnt, nil)
	write(t, c, mnt+"/root/generate/internal", map[string]any{"common_name": "outrider test CA", "ttl": "2h"})
	write(t, c, mnt+"/roles/app", map[string]any{"allow_any_name": true, "generate_lease": true, "max_ttl": "1h", "key_type": "ec", "key_bits": 256})
	dir := t.TempDir()
	cfg := Config{
		Vault:        tokenVault(v),
		PollInterval: time.Second,
		RevokeGrace:  50 * time.Millisecond,
		Reload:       reload.Config{Method: reload.MethodNone},
		Files:        []File{fileCfg(filepath.Join(dir, "cert.pem"), `{{ with pkiCert "`+mnt+`/issue/app" "common_name=app.test" "ttl=3s" }}{{ .Cert }}{{ end }}`)},
	}
	h := newHarness(t, cfg)
	h.run(t)
	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	eventually(t, 10*time.Second, "the revocation decision", func() bool {
		return len(h.rec.find(audit.KindRevoke, "", mnt+"/issue/app")) > 0
	})
	first := h.rec.find(audit.KindFetch, "ok", mnt+"/issue/app")[0]
	rev := h.rec.find(audit.KindRevoke, "", mnt+"/issue/app")[0]
	if rev.LeaseID != first.LeaseID || !strings.Contains(rev.Detail, "reload method is none") {
		t.Fatalf("revoke event = %+v; want the old lease left to expire", rev)
	}
	if _, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": first.LeaseID}); err != nil {
		t.Errorf("the old lease was revoked although the application was never told: %v", err)
	}
}
