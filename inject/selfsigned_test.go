package inject

import (
	"context"
	"crypto/x509"
	"encoding/base64"
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

func TestGenerateCertificates(t *testing.T) {
	now := time.Now()
	names := append(ServiceDNSNames("outrider-injector", "outrider"), "127.0.0.1")
	c, err := GenerateCertificates(names, 365*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if !c.usable(names, now) {
		t.Fatal("a fresh pair is not usable for its own names")
	}
	block, _ := pem.Decode(c.Cert)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 1 || !strings.Contains(strings.Join(leaf.DNSNames, ","), "outrider-injector.outrider.svc") {
		t.Errorf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if c.usable([]string{"other.svc"}, now) {
		t.Error("usable for a name it does not cover")
	}
	if c.usable(names, now.Add(340*24*time.Hour)) {
		t.Error("usable within 30 days of expiry")
	}
	if _, err := GenerateCertificates(nil, time.Hour, now); err == nil {
		t.Error("generated a certificate without names")
	}
}

// TestLoadOrGenerate checks that a restart keeps usable certificates and replaces
// ones that no longer fit.
func TestLoadOrGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Now()
	names := ServiceDNSNames("inj", "ns")
	first, reused, err := LoadOrGenerateCertificates(dir, names, 365*24*time.Hour, now)
	if err != nil || reused {
		t.Fatalf("first: reused=%v err=%v", reused, err)
	}
	if st, err := os.Stat(filepath.Join(dir, KeyFileName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want mode 0600", st, err)
	}
	again, reused, err := LoadOrGenerateCertificates(dir, names, 365*24*time.Hour, now)
	if err != nil || !reused || string(again.CA) != string(first.CA) {
		t.Errorf("second: reused=%v err=%v, want the same CA", reused, err)
	}
	other, reused, err := LoadOrGenerateCertificates(dir, ServiceDNSNames("inj", "other-ns"), 365*24*time.Hour, now)
	if err != nil || reused || string(other.CA) == string(first.CA) {
		t.Errorf("new names: reused=%v err=%v, want new certificates", reused, err)
	}
}

func TestMergeCABundle(t *testing.T) {
	now := time.Now()
	gen := func(at time.Time, validity time.Duration) []byte {
		c, err := GenerateCertificates([]string{"x"}, validity, at)
		if err != nil {
			t.Fatal(err)
		}
		return c.CA
	}
	mine := gen(now, 24*time.Hour)
	expired := gen(now.Add(-48*time.Hour), 2*time.Hour)
	var older [][]byte
	for i := 1; i <= 6; i++ {
		older = append(older, gen(now.Add(-time.Duration(i)*time.Hour), 24*time.Hour))
	}
	count := func(b []byte) int { return len(parseCerts(b)) }

	got, err := MergeCABundle(nil, mine, now)
	if err != nil || count(got) != 1 {
		t.Fatalf("empty bundle: %d certificates, %v", count(got), err)
	}
	got, _ = MergeCABundle(append(append([]byte{}, mine...), expired...), mine, now)
	if count(got) != 1 {
		t.Errorf("with a duplicate and an expired CA: %d certificates, want 1", count(got))
	}
	bundle := []byte("-----BEGIN GARBAGE-----\nAAAA\n-----END GARBAGE-----\n")
	for _, o := range older {
		bundle = append(bundle, o...)
	}
	got, _ = MergeCABundle(bundle, mine, now)
	certs := parseCerts(got)
	if len(certs) != maxBundleCAs {
		t.Fatalf("%d certificates, want %d", len(certs), maxBundleCAs)
	}
	if string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw})) != string(mine) {
		t.Error("the new CA is not first")
	}
	if !certs[1].Equal(parseCerts(older[0])[0]) || !certs[4].Equal(parseCerts(older[3])[0]) {
		t.Error("the newest older CAs were not the ones kept")
	}
	if _, err := MergeCABundle(nil, []byte("nope"), now); err == nil {
		t.Error("merged a CA that is not a certificate")
	}
}

// fakeAPIServer serves one MutatingWebhookConfiguration and answers the first
// update with a conflict, as the API server does when another replica wrote first.
type fakeAPIServer struct {
	mu        sync.Mutex
	obj       map[string]any
	conflicts int
	puts      int
	tokens    []string
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, r.Header.Get("Authorization"))
	if r.URL.Path != "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/outrider" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind":"Status","message":"mutatingwebhookconfigurations.admissionregistration.k8s.io \"x\" not found"}`))
		return
	}
	switch r.Method {
	case http.MethodGet:
		_ = json.NewEncoder(w).Encode(f.obj)
	case http.MethodPut:
		f.puts++
		if f.conflicts > 0 {
			f.conflicts--
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"kind":"Status","message":"the object has been modified"}`))
			return
		}
		body, _ := io.ReadAll(r.Body)
		f.obj = nil
		_ = json.Unmarshal(body, &f.obj)
		_, _ = w.Write(body)
	}
}

func TestPatchCABundle(t *testing.T) {
	now := time.Now()
	old, err := GenerateCertificates([]string{"x"}, 24*time.Hour, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mine, err := GenerateCertificates([]string{"x"}, 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	api := &fakeAPIServer{conflicts: 1, obj: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "MutatingWebhookConfiguration",
		"metadata":   map[string]any{"name": "outrider", "resourceVersion": "41", "labels": map[string]any{"keep": "me"}},
		"webhooks": []any{
			map[string]any{"name": "pods.outrider.dev", "clientConfig": map[string]any{"caBundle": base64.StdEncoding.EncodeToString(old.CA), "service": map[string]any{"name": "outrider-injector"}}},
			map[string]any{"name": "other.outrider.dev", "clientConfig": map[string]any{"url": "https://127.0.0.1:1/x"}},
		},
	}}
	srv := httptest.NewTLSServer(api)
	defer srv.Close()
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
	defer client.HTTP.CloseIdleConnections()
	n, err := client.PatchCABundle(context.Background(), "outrider", mine.CA, now)
	if err != nil || n != 2 {
		t.Fatalf("PatchCABundle = %d, %v; want 2 webhooks", n, err)
	}
	if _, err := client.PatchCABundle(context.Background(), "missing", mine.CA, now); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing configuration: %v", err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.puts != 2 {
		t.Errorf("%d updates, want 2 (a conflict, then success)", api.puts)
	}
	for _, tok := range api.tokens {
		if tok != "Bearer s3cr3t" {
			t.Errorf("Authorization %q", tok)
		}
	}
	if labels := api.obj["metadata"].(map[string]any)["labels"]; labels == nil {
		t.Error("the update dropped fields it does not know")
	}
	hooks := api.obj["webhooks"].([]any)
	first, _ := base64.StdEncoding.DecodeString(hooks[0].(map[string]any)["clientConfig"].(map[string]any)["caBundle"].(string))
	if certs := parseCerts(first); len(certs) != 2 {
		t.Errorf("first webhook's bundle has %d CAs, want 2 (new and old)", len(certs))
	}
	second, _ := base64.StdEncoding.DecodeString(hooks[1].(map[string]any)["clientConfig"].(map[string]any)["caBundle"].(string))
	if certs := parseCerts(second); len(certs) != 1 {
		t.Errorf("second webhook's bundle has %d CAs, want 1", len(certs))
	}
}

func TestParseCAAndIssue(t *testing.T) {
	now := time.Now()
	ca, err := GenerateCA(48*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateCertificates([]string{"x"}, 48*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]byte{
		"mismatched key": {ca.Cert, other.Key},
		"not a CA":       {other.Cert, other.Key},
		"empty":          {nil, nil},
	} {
		if _, err := ParseCA(pair[0], pair[1]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseCA(ca.Cert, ca.Key); err != nil {
		t.Errorf("its own pair: %v", err)
	}
	c, err := ca.Issue([]string{"inj.ns.svc"}, 365*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := parseCerts(c.Cert)[0]; !leaf.NotAfter.Equal(ca.NotAfter()) {
		t.Errorf("serving certificate expires %s, want capped at the CA's %s", leaf.NotAfter, ca.NotAfter())
	}
	if _, err := ca.Issue([]string{"x"}, time.Hour, now.Add(49*time.Hour)); err == nil {
		t.Error("issued with an expired CA")
	}
	dir := t.TempDir()
	_, reused, err := LoadOrIssueCertificates(dir, ca, []string{"inj.ns.svc"}, 24*time.Hour, now.Add(-40*24*time.Hour))
	if err != nil || reused {
		t.Fatalf("first: %v %v", reused, err)
	}
	// Another CA than the one in dir: a new certificate, even though the old one is valid.
	ca2, err := GenerateCA(365*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	got, reused, err := LoadOrIssueCertificates(dir, ca2, []string{"inj.ns.svc"}, 90*24*time.Hour, now)
	if err != nil || reused || string(got.CA) != string(ca2.Cert) {
		t.Errorf("another CA: reused=%v err=%v", reused, err)
	}
	if _, reused, err := LoadOrIssueCertificates(dir, ca2, []string{"inj.ns.svc"}, 90*24*time.Hour, now); err != nil || !reused {
		t.Errorf("same CA again: reused=%v err=%v, want kept", reused, err)
	}
}
