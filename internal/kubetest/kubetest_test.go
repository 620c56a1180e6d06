package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared(code == 0)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestMissingBinary(t *testing.T) {
	for _, env := range []string{EtcdBinaryEnv, APIServerBinaryEnv} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, filepath.Join(t.TempDir(), "missing"))
			_, err := StartIn(context.Background(), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), "run `make backends`") || !strings.Contains(err.Error(), env) {
				t.Fatalf("StartIn = %v, want the command that builds the binary and %s", err, env)
			}
		})
	}
}

func TestBinaryPaths(t *testing.T) {
	t.Setenv(EtcdBinaryEnv, "")
	t.Setenv(APIServerBinaryEnv, "")
	t.Setenv("OUTRIDER_CACHE", "/cache")
	if got, want := APIServerBinary(), "/cache/bin/kube-apiserver-"+KubeVersion; got != want {
		t.Errorf("APIServerBinary = %s, want %s", got, want)
	}
	if got, want := EtcdBinary(), "/cache/bin/etcd-"+EtcdVersion; got != want {
		t.Errorf("EtcdBinary = %s, want %s", got, want)
	}
	t.Setenv(EtcdBinaryEnv, "/opt/etcd")
	if got := EtcdBinary(); got != "/opt/etcd" {
		t.Errorf("EtcdBinary with %s = %s", EtcdBinaryEnv, got)
	}
}

func TestResourcePath(t *testing.T) {
	pods := metav1.APIResource{Name: "pods", Namespaced: true, Kind: "Pod"}
	crs := metav1.APIResource{Name: "clusterroles", Kind: "ClusterRole"}
	deps := metav1.APIResource{Name: "deployments", Namespaced: true, Kind: "Deployment"}
	rbac := schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
	apps := schema.GroupVersion{Group: "apps", Version: "v1"}
	for _, tc := range []struct {
		name      string
		gv        schema.GroupVersion
		res       metav1.APIResource
		ns, obj   string
		wantPath  string
		wantError bool
	}{
		{"core collection", schema.GroupVersion{Version: "v1"}, pods, "x", "", "/api/v1/namespaces/x/pods", false},
		{"core object", schema.GroupVersion{Version: "v1"}, pods, "x", "p", "/api/v1/namespaces/x/pods/p", false},
		{"default namespace", schema.GroupVersion{Version: "v1"}, pods, "", "p", "/api/v1/namespaces/default/pods/p", false},
		{"group object", apps, deps, "x", "web", "/apis/apps/v1/namespaces/x/deployments/web", false},
		{"cluster-scoped ignores namespace", rbac, crs, "x", "r", "/apis/rbac.authorization.k8s.io/v1/clusterroles/r", false},
		{"escaped name", rbac, crs, "", "system:auth-delegator", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:auth-delegator", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resourcePath(tc.gv, tc.res, tc.ns, tc.obj); got != tc.wantPath {
				t.Errorf("resourcePath = %s, want %s", got, tc.wantPath)
			}
		})
	}
}

func TestSplitYAML(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"one", "kind: A\n", []string{`{"kind":"A"}`}},
		{"leading separator and empty documents", "---\nkind: A\n---\n# only a comment\n---\n\n---\nkind: B\n", []string{`{"kind":"A"}`, `{"kind":"B"}`}},
		{"separator with comment", "kind: A\n--- # next\nkind: B\n", []string{`{"kind":"A"}`, `{"kind":"B"}`}},
		{"dashes inside a block scalar stay", "kind: A\ndata: |\n  x\n  ---x\n", []string{`{"data":"x\n---x\n","kind":"A"}`}},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := splitYAML([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				got = append(got, string(d))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("splitYAML = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := splitYAML([]byte("kind: [unclosed\n")); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("invalid YAML: err = %v, want one naming the document", err)
	}
}

func TestKindOf(t *testing.T) {
	gvk, err := kindOf(&corev1.Pod{})
	if err != nil || gvk != (schema.GroupVersionKind{Version: "v1", Kind: "Pod"}) {
		t.Errorf("kindOf(Pod) = %v, %v", gvk, err)
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("Widget")
	if gvk, err := kindOf(u); err != nil || gvk.Group != "example.com" || gvk.Kind != "Widget" {
		t.Errorf("kindOf(unstructured) = %v, %v", gvk, err)
	}
	if _, err := kindOf(&unstructured.Unstructured{}); err == nil || !strings.Contains(err.Error(), "TypeMeta") {
		t.Errorf("kindOf(empty unstructured) = %v, want an error that says to set TypeMeta", err)
	}
}

func TestServingCertChain(t *testing.T) {
	ca, err := newAuthority()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.issue([]string{"hook.ns.svc", "127.0.100.7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.certPEM)
	for _, name := range []string{"hook.ns.svc", "127.0.100.7"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.ns.svc"}); err == nil {
		t.Error("the certificate is valid for a name it was not issued for")
	}
	if _, _, err := ca.issue(nil); err == nil {
		t.Error("issue without hosts succeeded")
	}
}

// TestStartStop runs a cluster of its own and stops it: Stop ends both servers and
// a second Stop does nothing.
func TestStartStop(t *testing.T) {
	t.Parallel()
	c := Start(t)
	if !strings.HasPrefix(c.URL(), "https://127.0.0.1:") || !c.Running() {
		t.Fatalf("URL %s, running %v", c.URL(), c.Running())
	}
	host := strings.TrimPrefix(c.URL(), "https://")
	c.Stop()
	if c.Running() {
		t.Error("Running after Stop")
	}
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Stop", host)
	}
	c.Stop()
}

// TestStartedCluster checks what StartIn promises: the pinned version, the loopback
// service range, the default service accounts, and token authentication.
func TestStartedCluster(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var v version.Info
	if err := c.Get(ctx, "/version", &v); err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != KubeVersion {
		t.Errorf("/version = %s, want %s (tools/backends/build.sh stamps it)", v.GitVersion, KubeVersion)
	}
	var svc corev1.Service
	if err := c.Get(ctx, "/api/v1/namespaces/default/services/kubernetes", &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != KubernetesServiceIP {
		t.Errorf("default/kubernetes ClusterIP = %s, want %s in the loopback service range", svc.Spec.ClusterIP, KubernetesServiceIP)
	}
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		var sa corev1.ServiceAccount
		if err := c.Get(ctx, "/api/v1/namespaces/"+ns+"/serviceaccounts/default", &sa); err != nil {
			t.Errorf("%s/default service account: %v", ns, err)
		}
	}
	if err := c.As("not-a-token").Get(ctx, "/api/v1/namespaces", nil); StatusReason(err) != metav1.StatusReasonUnauthorized {
		t.Errorf("a request with a bad token: %v, want Unauthorized", err)
	}
	resp, err := c.HTTPClient().Get(c.URL() + "/readyz")
	if err != nil {
		t.Fatalf("HTTPClient: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HTTPClient GET /readyz: %s", resp.Status)
	}
	if pem, err := os.ReadFile(c.CAFile()); err != nil || string(pem) != string(c.CAPEM()) {
		t.Errorf("CAFile %s does not hold CAPEM: %v", c.CAFile(), err)
	}
}
