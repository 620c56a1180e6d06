package inject

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSecrets serves Secrets of namespace ns at /api/v1/namespaces/ns/secrets, with
// resourceVersion checks on update, and lets a test inject faults: beforeWrite runs
// (under the lock) before a create or update is applied, and may answer instead.
type fakeSecrets struct {
	mu          sync.Mutex
	objs        map[string]*secretObject
	rv          int
	requests    []string // METHOD path?query
	beforeWrite func(f *fakeSecrets, w http.ResponseWriter, r *http.Request) bool
}

func (f *fakeSecrets) put(name string, data map[string][]byte) {
	f.rv++
	f.objs[name] = &secretObject{APIVersion: "v1", Kind: "Secret", Metadata: secretMeta{Name: name, Namespace: "ns", ResourceVersion: itoa(f.rv)}, Data: data}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func status(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "code": code, "message": msg})
}

func (f *fakeSecrets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	const prefix = "/api/v1/namespaces/ns/secrets"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		status(w, http.StatusForbidden, "forbidden")
		return
	}
	name := strings.TrimPrefix(rest, "/")
	if r.Method != http.MethodGet && f.beforeWrite != nil && f.beforeWrite(f, w, r) {
		return
	}
	switch {
	case r.Method == http.MethodGet && name != "":
		obj, ok := f.objs[name]
		if !ok {
			status(w, http.StatusNotFound, `secrets "`+name+`" not found`)
			return
		}
		_ = json.NewEncoder(w).Encode(obj)
	case r.Method == http.MethodPost && name == "":
		var obj secretObject
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &obj); err != nil {
			status(w, http.StatusBadRequest, err.Error())
			return
		}
		if _, ok := f.objs[obj.Metadata.Name]; ok {
			status(w, http.StatusConflict, `secrets "`+obj.Metadata.Name+`" already exists`)
			return
		}
		f.put(obj.Metadata.Name, obj.Data)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(f.objs[obj.Metadata.Name])
	case r.Method == http.MethodPut && name != "":
		var obj secretObject
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &obj); err != nil {
			status(w, http.StatusBadRequest, err.Error())
			return
		}
		cur, ok := f.objs[name]
		if !ok {
			status(w, http.StatusNotFound, "not found")
			return
		}
		if obj.Metadata.ResourceVersion != cur.Metadata.ResourceVersion {
			status(w, http.StatusConflict, "the object has been modified; please apply your changes to the latest version and try again")
			return
		}
		f.put(name, obj.Data)
		_ = json.NewEncoder(w).Encode(f.objs[name])
	default:
		status(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// newFakeClient serves h over TLS and returns a KubeClient for it.
func newFakeClient(t *testing.T, h http.Handler) *KubeClient {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	tokenFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(tokenFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := NewKubeClient(srv.URL, tokenFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.HTTP.CloseIdleConnections)
	return client
}

func TestLoadOrCreateCA(t *testing.T) {
	const (
		day         = 24 * time.Hour
		validity    = 5 * 365 * day
		renewBefore = 365 * day
	)
	now := time.Now()
	mustCA := func(at time.Time, validity time.Duration) *CA {
		ca, err := GenerateCA(validity, at)
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	fresh := mustCA(now.Add(-day), validity)
	expiring := mustCA(now.Add(-4*365*day-300*day), validity) // 65 days left
	winner := mustCA(now, validity)
	secretOf := func(ca *CA) map[string][]byte {
		return map[string][]byte{SecretCACertKey: ca.Cert, SecretCAKeyKey: ca.Key}
	}
	// storeWinner makes another replica write the Secret just before this one writes.
	storeWinner := func(f *fakeSecrets, _ http.ResponseWriter, _ *http.Request) bool {
		f.put("ca", secretOf(winner))
		f.beforeWrite = nil
		return false
	}

	tests := []struct {
		name        string
		existing    *CA
		garbage     bool
		beforeWrite func(f *fakeSecrets, w http.ResponseWriter, r *http.Request) bool
		outcome     CAOutcome
		same        *CA // the CA that must be returned, when known
		different   *CA // a CA that must not be returned
		err         string
		writes      int
	}{
		{name: "no Secret: generate and create", outcome: CACreated, writes: 1},
		{name: "valid CA: reuse", existing: fresh, outcome: CAReused, same: fresh},
		{name: "create race: use the winner's CA", beforeWrite: storeWinner, outcome: CAJoined, same: winner, writes: 1},
		{name: "within renewBefore: renew", existing: expiring, outcome: CARenewed, different: expiring, writes: 1},
		{name: "renew race: use the winner's CA", existing: expiring, beforeWrite: storeWinner, outcome: CAJoined, same: winner, writes: 1},
		{name: "garbage: replace", garbage: true, outcome: CARenewed, writes: 1},
		{name: "create forbidden", beforeWrite: func(_ *fakeSecrets, w http.ResponseWriter, _ *http.Request) bool {
			status(w, http.StatusForbidden, `secrets is forbidden: User "system:serviceaccount:ns:inj" cannot create resource "secrets"`)
			return true
		}, err: "cannot create resource", writes: 1},
		{name: "create race with a broken winner", beforeWrite: func(f *fakeSecrets, _ http.ResponseWriter, _ *http.Request) bool {
			f.put("ca", map[string][]byte{SecretCACertKey: []byte("nope")})
			f.beforeWrite = nil
			return false
		}, err: "written by another replica", writes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeSecrets{objs: map[string]*secretObject{}, beforeWrite: tt.beforeWrite}
			switch {
			case tt.existing != nil:
				api.put("ca", secretOf(tt.existing))
			case tt.garbage:
				api.put("ca", map[string][]byte{SecretCACertKey: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "other": []byte("kept")})
			}
			client := newFakeClient(t, api)
			ca, outcome, err := client.LoadOrCreateCA(context.Background(), "ns", "ca", validity, renewBefore, now)
			api.mu.Lock()
			requests, stored := api.requests, api.objs["ca"]
			api.mu.Unlock()
			writes := 0
			for _, r := range requests {
				if !strings.HasPrefix(r, "GET ") {
					writes++
					if !strings.Contains(r, "fieldManager=outrider-inject") {
						t.Errorf("%s without fieldManager=outrider-inject", r)
					}
				}
			}
			if writes != tt.writes {
				t.Errorf("%d writes (%v), want %d", writes, requests, tt.writes)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if outcome != tt.outcome {
				t.Errorf("outcome %s, want %s", outcome, tt.outcome)
			}
			if tt.same != nil && string(ca.Cert) != string(tt.same.Cert) {
				t.Error("returned another CA than the expected one")
			}
			if tt.different != nil && string(ca.Cert) == string(tt.different.Cert) {
				t.Error("kept the CA it should have replaced")
			}
			if stored == nil || string(stored.Data[SecretCACertKey]) != string(ca.Cert) || string(stored.Data[SecretCAKeyKey]) != string(ca.Key) {
				t.Fatal("the Secret does not hold the returned CA")
			}
			if tt.garbage && string(stored.Data["other"]) != "kept" {
				t.Error("the renewal dropped another key of the Secret")
			}
			if !now.Add(renewBefore).Before(ca.NotAfter()) {
				t.Errorf("the CA expires at %s, within the renewal window", ca.NotAfter())
			}
			// A second replica then reuses it.
			again, outcome, err := client.LoadOrCreateCA(context.Background(), "ns", "ca", validity, renewBefore, now)
			if err != nil || outcome != CAReused || string(again.Cert) != string(ca.Cert) {
				t.Errorf("second call: %s, %v; want the same CA reused", outcome, err)
			}
		})
	}
	client := newFakeClient(t, &fakeSecrets{objs: map[string]*secretObject{}})
	if _, _, err := client.LoadOrCreateCA(context.Background(), "ns", "ca", day, 2*day, now); err == nil {
		t.Error("accepted a renewal window longer than the validity")
	}
	if _, _, err := client.LoadOrCreateCA(context.Background(), "other-ns", "ca", validity, renewBefore, now); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("a forbidden read: %v", err)
	}
}

// TestSharedCAReplicas checks what the shared CA is for: replicas that start, restart
// and renew the CA all serve certificates the caBundle trusts, and the bundle holds
// one CA, two only across a renewal, until the old one expires.
func TestSharedCAReplicas(t *testing.T) {
	const day = 24 * time.Hour
	now := time.Now()
	api := &fakeSecrets{objs: map[string]*secretObject{}}
	client := newFakeClient(t, api)
	names := ServiceDNSNames("inj", "ns")
	var bundle []byte
	start := func(at time.Time) *Certificates {
		t.Helper()
		ca, _, err := client.LoadOrCreateCA(context.Background(), "ns", "ca", 400*day, 100*day, at)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := LoadOrIssueCertificates(t.TempDir(), ca, names, 2*365*day, at)
		if err != nil {
			t.Fatal(err)
		}
		if bundle, err = MergeCABundle(bundle, c.CA, at); err != nil {
			t.Fatal(err)
		}
		return c
	}
	trusted := func(c *Certificates, at time.Time) error {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(bundle)
		block, _ := pem.Decode(c.Cert)
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: names[2], Roots: pool, CurrentTime: at})
		return err
	}
	a, b := start(now), start(now)
	for i := 0; i < 2*maxBundleCAs; i++ {
		a = start(now.Add(time.Duration(i) * time.Minute)) // replica a restarts again and again
	}
	if n := len(parseCerts(bundle)); n != 1 {
		t.Errorf("after restarts the caBundle holds %d CAs, want 1", n)
	}
	if err := trusted(b, now); err != nil {
		t.Errorf("the replica that kept running is no longer trusted: %v", err)
	}
	if err := trusted(a, now.Add(2*maxBundleCAs*time.Minute)); err != nil {
		t.Errorf("the restarted replica is not trusted: %v", err)
	}
	// 310 days later the CA is within 100 days of expiry: a restart renews it.
	later := now.Add(310 * day)
	a = start(later)
	if n := len(parseCerts(bundle)); n != 2 {
		t.Errorf("across a renewal the caBundle holds %d CAs, want 2", n)
	}
	for name, c := range map[string]*Certificates{"renewed": a, "still running": b} {
		if err := trusted(c, later); err != nil {
			t.Errorf("%s replica not trusted: %v", name, err)
		}
	}
	if got := parseCerts(b.Cert)[0].NotAfter; got.After(parseCerts(b.CA)[0].NotAfter) {
		t.Errorf("serving certificate outlives its CA: %s", got)
	}
	// Once the old CA expired, a start drops it.
	start(now.Add(401 * day))
	if n := len(parseCerts(bundle)); n != 1 {
		t.Errorf("after the old CA expired the caBundle holds %d CAs, want 1", n)
	}
}
