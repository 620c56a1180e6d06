package kubetest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestCreateNamespaceAndPodReadBack(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx := testContext(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubetest-create"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if ns.UID == "" || ns.Status.Phase != corev1.NamespaceActive {
		t.Errorf("Create did not return the stored namespace: uid %q phase %q", ns.UID, ns.Status.Phase)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "kubetest-create", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{
				Name: "sidecar", Image: "example.com/sidecar:1",
				RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways),
			}},
			Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}},
		},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := c.Get(ctx, "/api/v1/namespaces/kubetest-create/pods/web", &got); err != nil {
		t.Fatal(err)
	}
	if got.UID != pod.UID || got.Status.Phase != corev1.PodPending || got.Labels["app"] != "web" {
		t.Errorf("read back uid %q (created %q), phase %q, labels %v", got.UID, pod.UID, got.Status.Phase, got.Labels)
	}
	// The ServiceAccount admission plugin ran (it needs the namespace's default
	// service account, which Create made) and mounted the token.
	if got.Spec.ServiceAccountName != "default" || !hasVolumePrefix(got.Spec.Volumes, "kube-api-access-") {
		t.Errorf("service account %q, volumes %v: the ServiceAccount admission plugin did not run", got.Spec.ServiceAccountName, got.Spec.Volumes)
	}
	// A native sidecar (restartPolicy Always on an init container) is stored as such.
	if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].RestartPolicy == nil ||
		*got.Spec.InitContainers[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("init containers %+v: the native sidecar was not kept", got.Spec.InitContainers)
	}

	err := c.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "kubetest-create"}, Spec: pod.Spec})
	if StatusReason(err) != metav1.StatusReasonAlreadyExists {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "kubetest-create"}}
	err = c.Create(ctx, bad)
	if StatusReason(err) != metav1.StatusReasonInvalid || !strings.Contains(err.Error(), "spec.containers: Required value") {
		t.Errorf("pod without containers: %v, want the API server's validation error", err)
	}
	if bad.Name != "bad" {
		t.Errorf("a failed Create changed the object: %+v", bad.ObjectMeta)
	}
	if err := c.Get(ctx, "/api/v1/namespaces/kubetest-create/pods/nope", &got); StatusReason(err) != metav1.StatusReasonNotFound {
		t.Errorf("get a missing pod: %v, want NotFound", err)
	}
	if err := c.Delete(ctx, "/api/v1/namespaces/kubetest-create/pods/web"); err != nil {
		t.Errorf("delete: %v", err)
	}

	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "u", "namespace": "kubetest-create"},
		"data":     map[string]any{"k": "v"},
	}}
	if err := c.Create(ctx, u); err != nil {
		t.Fatalf("create unstructured: %v", err)
	}
	if u.GetUID() == "" {
		t.Errorf("unstructured create did not return the stored object: %v", u.Object)
	}
}

func hasVolumePrefix(vols []corev1.Volume, prefix string) bool {
	for _, v := range vols {
		if strings.HasPrefix(v.Name, prefix) {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// TestPathsOfDeployKinds maps every kind deploy/ uses to its REST path through the
// API server's discovery.
func TestPathsOfDeployKinds(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx := testContext(t)
	for _, tc := range []struct{ apiVersion, kind, want string }{
		{"v1", "Namespace", "/api/v1/namespaces/n"},
		{"v1", "ServiceAccount", "/api/v1/namespaces/x/serviceaccounts/n"},
		{"v1", "Service", "/api/v1/namespaces/x/services/n"},
		{"v1", "Secret", "/api/v1/namespaces/x/secrets/n"},
		{"v1", "ConfigMap", "/api/v1/namespaces/x/configmaps/n"},
		{"v1", "Pod", "/api/v1/namespaces/x/pods/n"},
		{"rbac.authorization.k8s.io/v1", "ClusterRole", "/apis/rbac.authorization.k8s.io/v1/clusterroles/n"},
		{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/n"},
		{"rbac.authorization.k8s.io/v1", "Role", "/apis/rbac.authorization.k8s.io/v1/namespaces/x/roles/n"},
		{"rbac.authorization.k8s.io/v1", "RoleBinding", "/apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings/n"},
		{"apps/v1", "Deployment", "/apis/apps/v1/namespaces/x/deployments/n"},
		{"batch/v1", "Job", "/apis/batch/v1/namespaces/x/jobs/n"},
		{"admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/n"},
		{"policy/v1", "PodDisruptionBudget", "/apis/policy/v1/namespaces/x/poddisruptionbudgets/n"},
		{"networking.k8s.io/v1", "NetworkPolicy", "/apis/networking.k8s.io/v1/namespaces/x/networkpolicies/n"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			got, err := c.Path(ctx, tc.apiVersion, tc.kind, "x", "n")
			if err != nil || got != tc.want {
				t.Errorf("Path = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ apiVersion, kind, want string }{
		{"example.com/v1", "Widget", "apiVersion example.com/v1 is not served"},
		{"apps/v1", "Widget", "kind Widget is not served by the API server in apps/v1"},
		{"a/b/c", "Pod", `apiVersion "a/b/c"`},
	} {
		if _, err := c.Path(ctx, tc.apiVersion, tc.kind, "", ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Path(%s, %s) = %v, want an error containing %q", tc.apiVersion, tc.kind, err, tc.want)
		}
	}
}

// applyDocs are the kinds deploy/ uses, with a webhook configuration that points at
// a Service. Its objectSelector matches no pod, so the API server never calls it.
const applyDocs = `# the kinds of deploy/
apiVersion: v1
kind: Namespace
metadata:
  name: kubetest-apply
  labels: {outrider.dev/test: apply}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: injector, namespace: kubetest-apply}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kubetest-apply-injector}
rules:
- apiGroups: [admissionregistration.k8s.io]
  resources: [mutatingwebhookconfigurations]
  resourceNames: [kubetest-apply]
  verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kubetest-apply-injector}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubetest-apply-injector}
subjects: [{kind: ServiceAccount, name: injector, namespace: kubetest-apply}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: injector, namespace: kubetest-apply}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: injector, namespace: kubetest-apply}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: injector}
subjects: [{kind: ServiceAccount, name: injector, namespace: kubetest-apply}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: injector, namespace: kubetest-apply}
data: {config.yaml: "log_level: info\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: injector-tls, namespace: kubetest-apply}
type: Opaque
stringData: {tls.crt: x}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: injector, namespace: kubetest-apply}
spec:
  replicas: 2
  selector: {matchLabels: {app: injector}}
  template:
    metadata: {labels: {app: injector}}
    spec:
      serviceAccountName: injector
      containers:
      - name: injector
        image: example.com/outrider:1
        args: [inject]
        ports: [{containerPort: 8443, name: https}]
        securityContext: {runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: injector, namespace: kubetest-apply}
spec:
  selector: {app: injector}
  ports: [{port: 443, targetPort: https}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: injector, namespace: kubetest-apply}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: injector}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: injector, namespace: kubetest-apply}
spec:
  podSelector: {matchLabels: {app: injector}}
  policyTypes: [Ingress]
  ingress: [{ports: [{port: 8443}]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: kubetest-apply}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: example.com/migrate:1}]
---
apiVersion: v1
kind: Pod
metadata: {generateName: probe-, namespace: kubetest-apply}
spec:
  containers: [{name: app, image: example.com/app:1}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: kubetest-apply}
webhooks:
- name: inject.kubetest.outrider.dev
  clientConfig:
    service: {namespace: kubetest-apply, name: injector, path: /mutate}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
  namespaceSelector: {matchLabels: {outrider.dev/test: apply}}
  objectSelector: {matchLabels: {outrider.dev/test-never: "true"}}
  failurePolicy: Ignore
  sideEffects: None
  timeoutSeconds: 5
  admissionReviewVersions: [v1]
`

func TestApply(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx := testContext(t)
	if err := c.Apply(ctx, []byte(applyDocs)); err != nil {
		t.Fatal(err)
	}
	const ns = "/namespaces/kubetest-apply"
	var (
		sa   corev1.ServiceAccount
		cr   rbacv1.ClusterRole
		crb  rbacv1.ClusterRoleBinding
		role rbacv1.Role
		rb   rbacv1.RoleBinding
		cm   corev1.ConfigMap
		sec  corev1.Secret
		dep  appsv1.Deployment
		svc  corev1.Service
		pdb  policyv1.PodDisruptionBudget
		np   networkingv1.NetworkPolicy
		job  batchv1.Job
		pods corev1.PodList
		mwc  admissionregistrationv1.MutatingWebhookConfiguration
		def  corev1.ServiceAccount
	)
	for _, tc := range []struct {
		path string
		into any
		ok   func() bool
	}{
		{"/api/v1" + ns + "/serviceaccounts/injector", &sa, func() bool { return sa.Name == "injector" }},
		{"/api/v1" + ns + "/serviceaccounts/default", &def, func() bool { return def.Name == "default" }},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles/kubetest-apply-injector", &cr, func() bool { return len(cr.Rules) == 1 && cr.Rules[0].ResourceNames[0] == "kubetest-apply" }},
		{"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubetest-apply-injector", &crb, func() bool { return crb.Subjects[0].Namespace == "kubetest-apply" }},
		{"/apis/rbac.authorization.k8s.io/v1" + ns + "/roles/injector", &role, func() bool { return role.Rules[0].Resources[0] == "secrets" }},
		{"/apis/rbac.authorization.k8s.io/v1" + ns + "/rolebindings/injector", &rb, func() bool { return rb.RoleRef.Name == "injector" }},
		{"/api/v1" + ns + "/configmaps/injector", &cm, func() bool { return cm.Data["config.yaml"] == "log_level: info\n" }},
		{"/api/v1" + ns + "/secrets/injector-tls", &sec, func() bool { return string(sec.Data["tls.crt"]) == "x" }},
		{"/apis/apps/v1" + ns + "/deployments/injector", &dep, func() bool {
			return *dep.Spec.Replicas == 2 && dep.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType
		}},
		{"/api/v1" + ns + "/services/injector", &svc, func() bool { return strings.HasPrefix(svc.Spec.ClusterIP, "127.0.100.") }},
		{"/apis/policy/v1" + ns + "/poddisruptionbudgets/injector", &pdb, func() bool { return pdb.Spec.MinAvailable.IntValue() == 1 }},
		{"/apis/networking.k8s.io/v1" + ns + "/networkpolicies/injector", &np, func() bool { return np.Spec.Ingress[0].Ports[0].Port.IntValue() == 8443 }},
		{"/apis/batch/v1" + ns + "/jobs/migrate", &job, func() bool { return job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyNever }},
		{"/api/v1" + ns + "/pods", &pods, func() bool { return len(pods.Items) == 1 && strings.HasPrefix(pods.Items[0].Name, "probe-") }},
		{"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kubetest-apply", &mwc, func() bool {
			w := mwc.Webhooks[0]
			return w.ClientConfig.Service != nil && w.ClientConfig.Service.Name == "injector" && *w.ClientConfig.Service.Port == 443
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if err := c.Get(ctx, tc.path, tc.into); err != nil {
				t.Fatal(err)
			}
			if !tc.ok() {
				t.Errorf("stored object not as applied: %+v", tc.into)
			}
		})
	}

	// Applying again updates what changed and keeps the rest: apply semantics.
	again := strings.Replace(applyDocs, "replicas: 2", "replicas: 3", 1)
	again = strings.Replace(again, "kind: Pod\nmetadata: {generateName: probe-,", "kind: Pod\nmetadata: {name: probe-named,", 1)
	if err := c.Apply(ctx, []byte(again)); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if err := c.Get(ctx, "/apis/apps/v1"+ns+"/deployments/injector", &dep); err != nil || *dep.Spec.Replicas != 3 {
		t.Errorf("after the second apply: replicas %d, %v; want 3", *dep.Spec.Replicas, err)
	}
}

func TestApplyRejects(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx := testContext(t)
	if err := c.Apply(ctx, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: kubetest-reject}\n")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
		reason     metav1.StatusReason
	}{
		{
			name: "invalid deployment",
			yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, namespace: kubetest-reject}\n---\n" +
				"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nosel, namespace: kubetest-reject}\n" +
				"spec:\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i}]\n",
			want:   []string{"document 2", "Deployment kubetest-reject/nosel", "spec.selector: Required value"},
			reason: metav1.StatusReasonInvalid,
		},
		{
			name: "unknown field",
			yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo, namespace: kubetest-reject}\ndatta: {k: v}\n",
			// Server-side apply answers a schema error as 500 with this text.
			want: []string{"document 1", "ConfigMap kubetest-reject/typo", ".datta: field not declared in schema"},
		},
		{
			name: "namespace missing",
			yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kubetest-nowhere}\n",
			want: []string{"document 1", `namespaces "kubetest-nowhere" not found`},
		},
		{
			name: "kind not served",
			yaml: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nmetadata: {name: k}\n",
			want: []string{"document 1", "Kustomization k", "not served by the API server"},
		},
		{
			name: "no name",
			yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: kubetest-reject}\n",
			want: []string{"document 1", "metadata.name"},
		},
		{
			name: "not an object",
			yaml: "- a\n- b\n",
			want: []string{"document 1", "not a Kubernetes object"},
		},
		{
			name: "List item",
			yaml: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: l1, namespace: kubetest-reject}}\n" +
				"- {apiVersion: v1, kind: ConfigMap, metadata: {name: l2, namespace: kubetest-reject}, data: {k: [not, a, string]}}\n",
			want: []string{"document 1", "item 2 of the List", "ConfigMap kubetest-reject/l2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Apply(ctx, []byte(tc.yaml))
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.reason != "" && StatusReason(err) != tc.reason {
				t.Errorf("reason %q, want %q", StatusReason(err), tc.reason)
			}
		})
	}
	// The documents before the rejected one were applied.
	var cm corev1.ConfigMap
	if err := c.Get(ctx, "/api/v1/namespaces/kubetest-reject/configmaps/ok", &cm); err != nil {
		t.Errorf("document 1 before the rejected document 2: %v", err)
	}
	if err := c.Get(ctx, "/api/v1/namespaces/kubetest-reject/configmaps/l1", &cm); err != nil {
		t.Errorf("item 1 of the List before the rejected item 2: %v", err)
	}
}

// TestWebhookThroughServiceClusterIP registers a mutating webhook by Service
// reference, as deploy/ does, and checks that the API server calls it on the
// Service's loopback ClusterIP: pods are mutated, and a denial reaches the client
// with the webhook's message.
func TestWebhookThroughServiceClusterIP(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx := testContext(t)
	const ns, svcName = "kubetest-webhook", "hook"
	ln, err := c.ServiceListener(ctx, ns, svcName)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if !strings.HasPrefix(addr.IP.String(), "127.0.100.") {
		t.Fatalf("listener on %s, want an address in %s", addr, ServiceCIDR)
	}
	var svc corev1.Service
	if err := c.Get(ctx, "/api/v1/namespaces/"+ns+"/services/"+svcName, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != addr.IP.String() || svc.Spec.Ports[0].Port != int32(addr.Port) {
		t.Fatalf("service %s:%d, listener %s", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port, addr)
	}

	certPEM, keyPEM, err := c.ServingCert(svcName + "." + ns + ".svc")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hook := &testWebhook{}
	srv := &http.Server{Handler: hook, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("webhook server: %v", err)
		}
	})

	mwc := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: kubetest-webhook}
webhooks:
- name: mutate.kubetest.outrider.dev
  clientConfig:
    service: {namespace: %s, name: %s, path: /mutate, port: %d}
    caBundle: %s
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}
  failurePolicy: Fail
  sideEffects: None
  timeoutSeconds: 10
  admissionReviewVersions: [v1]
`, ns, svcName, addr.Port, base64.StdEncoding.EncodeToString(c.CAPEM()), ns)
	if err := c.Apply(ctx, []byte(mwc)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kubetest-webhook")
	})

	// The API server picks the configuration up through an informer: dry-run
	// creates until the webhook mutates one.
	probe := func(name string, labels map[string]string) (*corev1.Pod, error) {
		p := &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
		}
		var out corev1.Pod
		err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+ns+"/pods?dryRun=All", p, &out)
		return &out, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := probe("probe", map[string]string{"app": "x"})
		if err != nil {
			t.Fatalf("dry-run pod: %v", err)
		}
		if p.Labels["kubetest/mutated"] == "true" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook was not called within 30 s (calls: %d)", hook.count())
		}
		time.Sleep(100 * time.Millisecond)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var stored corev1.Pod
	if err := c.Get(ctx, "/api/v1/namespaces/"+ns+"/pods/app", &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Labels["kubetest/mutated"] != "true" {
		t.Errorf("stored pod labels %v, want the webhook's", stored.Labels)
	}
	if pod.Labels["kubetest/mutated"] != "true" {
		t.Errorf("Create returned labels %v, want the stored object's", pod.Labels)
	}

	_, err = probe("denied", map[string]string{"deny": "yes"})
	if err == nil || !strings.Contains(err.Error(), "denied the request: outrider.dev/inject: bad value") {
		t.Errorf("denied pod: %v, want the webhook's message", err)
	}
}

// testWebhook adds the label kubetest/mutated=true to every pod, except that it
// denies pods labelled deny=yes.
type testWebhook struct {
	mu    sync.Mutex
	calls int
}

func (h *testWebhook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

func (h *testWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	var review admissionv1.AdmissionReview
	if r.URL.Path != "/mutate" || json.NewDecoder(r.Body).Decode(&review) != nil || review.Request == nil {
		http.Error(w, "want an AdmissionReview at /mutate", http.StatusBadRequest)
		return
	}
	var pod corev1.Pod
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	switch {
	case json.Unmarshal(review.Request.Object.Raw, &pod) != nil:
		resp.Allowed = false
		resp.Result = &metav1.Status{Message: "not a pod"}
	case pod.Labels["deny"] == "yes":
		resp.Allowed = false
		resp.Result = &metav1.Status{Message: "outrider.dev/inject: bad value", Code: http.StatusForbidden}
	default:
		pt := admissionv1.PatchTypeJSONPatch
		resp.PatchType = &pt
		resp.Patch = []byte(`[{"op":"add","path":"/metadata/labels/kubetest~1mutated","value":"true"}]`)
	}
	review.Request, review.Response = nil, resp
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}

// TestServiceAccountTokenReview gets a real service-account token from the
// TokenRequest API and verifies it with a TokenReview, as the admin and as the
// token-reviewer identity Vault uses; a plain service account may not review.
func TestServiceAccountTokenReview(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx := testContext(t)
	tok, err := c.ServiceAccountToken(ctx, "kubetest-tokens", "app")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.TokenReview(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Authenticated || st.User.Username != "system:serviceaccount:kubetest-tokens:app" {
		t.Fatalf("token review: %+v", st)
	}
	if len(st.Audiences) != 1 || st.Audiences[0] != Issuer {
		t.Errorf("audiences %v, want [%s]", st.Audiences, Issuer)
	}

	reviewer, err := c.TokenReviewerJWT(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.TokenReviewerJWT(ctx); err != nil || again == "" {
		t.Fatalf("second TokenReviewerJWT: %v", err)
	}
	st, err = c.As(reviewer).TokenReview(ctx, tok)
	if err != nil || !st.Authenticated {
		t.Fatalf("review as the token reviewer: %+v, %v", st, err)
	}
	if st, err := c.As(reviewer).TokenReview(ctx, tok+"x"); err != nil || st.Authenticated {
		t.Errorf("a tampered token: %+v, %v; want not authenticated", st, err)
	}
	if _, err := c.As(tok).TokenReview(ctx, reviewer); StatusReason(err) != metav1.StatusReasonForbidden {
		t.Errorf("review as a service account without system:auth-delegator: %v, want Forbidden", err)
	}

	aud, err := c.ServiceAccountToken(ctx, "kubetest-tokens", "app", "vault")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.TokenReview(ctx, aud, "vault"); err != nil || !st.Authenticated {
		t.Errorf("token for audience vault reviewed for vault: %+v, %v", st, err)
	}
	if st, err := c.TokenReview(ctx, aud); err != nil || st.Authenticated {
		t.Errorf("token for audience vault reviewed for the API server: %+v, %v; want not authenticated", st, err)
	}
}
