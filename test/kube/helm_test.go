package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	release "helm.sh/helm/v4/pkg/release/v1"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/kubetest"
)

// chartDir is the Helm chart, from this package's directory.
const chartDir = deployDir + "/helm/outrider"

// helmReleaseName is the release whose objects are named as deploy/ names them
// (outrider-injector): the chart's README installs it under this name.
const helmReleaseName = "outrider"

// helmPriorityClass is the PriorityClass TestHelmChart creates for the injector's
// pods.
const helmPriorityClass = "outrider-helm-test"

// helmAppsNamespace is the only namespace the webhook configurations applied by
// TestHelmChart select.
const helmAppsNamespace = "outrider-helm-apps"

// helmLabels are the labels the chart adds to deploy/'s on every object; nothing
// else may differ.
var helmLabels = []string{"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "helm.sh/chart"}

// renderChart renders the chart as `helm install --dry-run=client` does (the Helm
// SDK's install action, client only: values merged over values.yaml and checked
// against values.schema.json, templates rendered, objects sorted in install order),
// for release name and namespace, against the API server's Kubernetes version. It
// returns Helm's error for values the chart refuses.
func renderChart(t testing.TB, name, namespace string, values map[string]any) (*manifests, string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart %s: %v", chartDir, err)
	}
	kv, err := common.ParseKubeVersion(kubetest.KubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = name
	install.Namespace = namespace
	install.KubeVersion = kv
	install.Replace = true // each render is a new in-memory release store anyway
	// Helm merges the chart's defaults into the map it is given: give it a copy, as
	// the helm command gives it what it read from --values and --set.
	js, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := json.Unmarshal(js, &vals); err != nil {
		t.Fatal(err)
	}
	rel, err := install.RunWithContext(context.Background(), chrt, vals)
	if err != nil {
		return nil, "", err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("the install action returned a %T, want a *release.Release", rel)
	}
	if len(r.Hooks) > 0 {
		t.Errorf("the chart has %d hooks; it should have none (hooks are not applied with the manifests)", len(r.Hooks))
	}
	objs, err := parseObjects([]byte(r.Manifest))
	if err != nil {
		t.Fatalf("the chart's manifest: %v\n%s", err, r.Manifest)
	}
	return &manifests{yaml: []byte(r.Manifest), objects: objs}, r.Info.Notes, nil
}

// mustRenderChart is renderChart for values the chart must accept.
func mustRenderChart(t testing.TB, name, namespace string, values map[string]any) (*manifests, string) {
	t.Helper()
	m, notes, err := renderChart(t, name, namespace, values)
	if err != nil {
		t.Fatalf("helm install %s (client dry run) with %v: %v", name, values, err)
	}
	return m, notes
}

// helmCase is one set of values, the kustomization the chart must then equal, and
// how that kustomization's output must be changed to match (what a user would patch).
type helmCase struct {
	name    string
	values  map[string]any
	overlay string
	certs   bool // needs cert-manager's CRDs
	// run: run the self-signed init container and the injector as the chart
	// configures them (checkChartRun).
	run       bool
	patch     func(t *testing.T, m *manifests)
	wantNotes []string
}

// chartInjectorDefaults are injector defaults other than config.yaml's, which the
// real injector must accept as the chart writes them.
var chartInjectorDefaults = map[string]any{
	"sidecar_mode":      "classic",
	"vault_addr":        "https://vault.vault.svc:8200",
	"loki_url":          "https://loki.monitoring.svc:3100",
	"tempo_endpoint":    "https://tempo.monitoring.svc:4317",
	"sentry_dsn_secret": "sentry/dsn",
	"memory_limit":      "none",
	"cpu_limit":         "200m",
	"queue_size_limit":  "512Mi",
	"agent_port":        9686,
	"metrics_endpoint":  "http://mimir.monitoring.svc:8080/otlp",
	// Backend credentials, by Secret.
	"loki_basic_auth_secret":    "loki-auth",
	"tempo_headers_secret":      "X-Scope-OrgID=tempo-auth/tenant, Authorization=tempo-auth/authorization",
	"loki_ca_secret":            "backend-ca/ca.crt",
	"tempo_ca_secret":           "backend-ca/ca.crt",
	"sentry_ca_secret":          "backend-ca/ca.crt",
	"tempo_client_cert_secret":  "tempo-client",
	"sentry_client_cert_secret": "sentry-client",
	"namespace_overlays":        map[string]any{"*": "outrider-overlay", helmAppsNamespace: "apps-overlay/outrider.yaml"},
}

var helmCases = []helmCase{
	{
		name:      "default",
		overlay:   "overlays/self-signed",
		wantNotes: []string{"rollout status deployment/outrider-injector", "outrider.dev/injection=enabled", "pod-security.kubernetes.io/enforce=restricted"},
	},
	{
		name:      "cert-manager",
		values:    map[string]any{"tls": map[string]any{"mode": "cert-manager"}},
		overlay:   "overlays/cert-manager",
		certs:     true,
		wantNotes: []string{"cert-manager must be installed"},
	},
	{
		name:    "failurePolicy Ignore",
		values:  map[string]any{"webhook": map[string]any{"failurePolicy": "Ignore", "timeoutSeconds": 10}},
		overlay: "overlays/self-signed",
		patch: func(t *testing.T, m *manifests) {
			setField(t, m, "MutatingWebhookConfiguration", injectorName, "Ignore", "webhooks", "0", "failurePolicy")
			setField(t, m, "MutatingWebhookConfiguration", injectorName, int64(10), "webhooks", "0", "timeoutSeconds")
		},
	},
	{
		name: "selectors",
		values: map[string]any{"webhook": map[string]any{
			"namespaceSelector": map[string]any{"matchExpressions": []any{
				map[string]any{"key": "team", "operator": "In", "values": []any{"shop", "search"}},
			}},
			"objectSelector": map[string]any{
				"matchLabels":      map[string]any{"tier": "web"},
				"matchExpressions": []any{map[string]any{"key": "sidecar.example.com/skip", "operator": "DoesNotExist"}},
			},
		}},
		overlay: "overlays/self-signed",
		patch: func(t *testing.T, m *manifests) {
			setField(t, m, "MutatingWebhookConfiguration", injectorName, map[string]any{"matchExpressions": []any{
				map[string]any{"key": "team", "operator": "In", "values": []any{"shop", "search"}},
			}}, "webhooks", "0", "namespaceSelector")
			setField(t, m, "MutatingWebhookConfiguration", injectorName, map[string]any{
				"matchLabels": map[string]any{"tier": "web"},
				"matchExpressions": []any{
					map[string]any{"key": "sidecar.example.com/skip", "operator": "DoesNotExist"},
					map[string]any{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": []any{injectorName}},
				},
			}, "webhooks", "0", "objectSelector")
		},
		wantNotes: []string{"must match webhook.namespaceSelector"},
	},
	{
		name: "resources and replicas",
		values: map[string]any{
			"replicas": 3,
			"resources": map[string]any{
				"requests": map[string]any{"cpu": "50m", "memory": "64Mi"},
				"limits":   map[string]any{"cpu": "1", "memory": "256Mi"},
			},
			"goMemLimit":          "200MiB",
			"podDisruptionBudget": map[string]any{"minAvailable": 2},
			"logLevel":            "debug",
			"image":               map[string]any{"repository": "registry.example.com/mirror/outrider", "tag": "v0.1.1", "pullPolicy": "Always"},
		},
		overlay: "overlays/self-signed",
		patch: func(t *testing.T, m *manifests) {
			setField(t, m, "Deployment", injectorName, int64(3), "spec", "replicas")
			setField(t, m, "Deployment", injectorName, map[string]any{
				"requests": map[string]any{"cpu": "50m", "memory": "64Mi"},
				"limits":   map[string]any{"cpu": "1", "memory": "256Mi"},
			}, "spec", "template", "spec", "containers", "0", "resources")
			setField(t, m, "Deployment", injectorName, "200MiB", "spec", "template", "spec", "containers", "0", "env", "1", "value")
			setField(t, m, "PodDisruptionBudget", injectorName, int64(2), "spec", "minAvailable")
			const image = "registry.example.com/mirror/outrider:v0.1.1"
			for _, ctr := range []string{"containers", "initContainers"} {
				setField(t, m, "Deployment", injectorName, image, "spec", "template", "spec", ctr, "0", "image")
				setField(t, m, "Deployment", injectorName, "Always", "spec", "template", "spec", ctr, "0", "imagePullPolicy")
			}
			replaceArg(t, m, "--log-level=info", "--log-level=debug")
			setConfig(t, m, map[string]any{"image": image})
		},
	},
	{
		name:    "injector defaults",
		run:     true,
		values:  map[string]any{"injectorDefaults": chartInjectorDefaults},
		overlay: "overlays/self-signed",
		patch: func(t *testing.T, m *manifests) {
			setConfig(t, m, chartInjectorDefaults)
			// The map, as the injector reads it.
			setConfig(t, m, map[string]any{"namespace_overlays": "*=outrider-overlay," + helmAppsNamespace + "=apps-overlay/outrider.yaml"})
		},
	},
	{
		name: "pod placement",
		values: map[string]any{
			"podLabels":         map[string]any{"team": "platform"},
			"podAnnotations":    map[string]any{"example.com/owner": "platform"},
			"priorityClassName": helmPriorityClass,
			"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}},
			"imagePullSecrets":  []any{map[string]any{"name": "regcred"}},
		},
		overlay: "overlays/self-signed",
		patch: func(t *testing.T, m *manifests) {
			setField(t, m, "Deployment", injectorName, "platform", "spec", "template", "metadata", "labels", "team")
			setField(t, m, "Deployment", injectorName, map[string]any{"example.com/owner": "platform"}, "spec", "template", "metadata", "annotations")
			for k, v := range map[string]any{
				"priorityClassName": helmPriorityClass,
				"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
				"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}},
				"imagePullSecrets":  []any{map[string]any{"name": "regcred"}},
			} {
				setField(t, m, "Deployment", injectorName, v, "spec", "template", "spec", k)
			}
		},
	},
	{
		name: "no PodDisruptionBudget or NetworkPolicy",
		values: map[string]any{
			"podDisruptionBudget": map[string]any{"enabled": false},
			"networkPolicy":       map[string]any{"enabled": false},
		},
		overlay: "overlays/self-signed",
		patch: func(t *testing.T, m *manifests) {
			m.remove(t, "PodDisruptionBudget", injectorName)
			m.remove(t, "NetworkPolicy", injectorName)
			m.remove(t, "NetworkPolicy", injectorName+"-apiserver")
		},
	},
}

// TestHelmChart renders deploy/helm/outrider with the Helm SDK for the default
// values and several others, checks that each rendering holds the same objects as the
// matching kustomization of deploy/ (changed the way the values say: every difference
// is listed), and applies it to the real API server (server-side apply, strict field
// validation), reads every object back and creates a pod of the Deployment's template
// (dry run) under the restricted Pod Security Standard. Each case is applied under
// its own release name and namespace, since the API server is shared with
// TestDeploy.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: helmAppsNamespace, Labels: map[string]string{injectionLabel: "enabled"},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &schedulingv1.PriorityClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "scheduling.k8s.io/v1", Kind: "PriorityClass"},
		ObjectMeta: metav1.ObjectMeta{Name: helmPriorityClass}, Value: 1000000,
	}); err != nil {
		t.Fatal(err)
	}
	for i, tc := range helmCases {
		t.Run(tc.name, func(t *testing.T) {
			// Equivalence, under the names deploy/ uses.
			chart, notes := mustRenderChart(t, helmReleaseName, injectorNamespace, tc.values)
			want := build(t, tc.overlay)
			if tc.patch != nil {
				tc.patch(t, want)
			}
			if diffs := chartDiff(t, want, chart); len(diffs) > 0 {
				t.Errorf("the chart with values %v differs from deploy/%s (patched as the values say) in %d places:\n  %s",
					tc.values, tc.overlay, len(diffs), strings.Join(diffs, "\n  "))
			}
			for _, w := range tc.wantNotes {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES.txt lacks %q:\n%s", w, notes)
				}
			}

			// The API server accepts it, under another release name and namespace.
			ns := fmt.Sprintf("outrider-helm-%d", i)
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
				"pod-security.kubernetes.io/enforce":         "restricted",
				"pod-security.kubernetes.io/enforce-version": "latest",
			}}}); err != nil {
				t.Fatal(err)
			}
			m, _ := mustRenderChart(t, ns, ns, tc.values)
			if tc.certs {
				installCertManagerCRDs(ctx, t, c)
			}
			applyAndReadBack(ctx, t, c, m.confineWebhooks(t, helmAppsNamespace))
			im := &injectorManifests{}
			m.into(t, "Deployment", ns+"-injector", &im.dep)
			admitTemplate(ctx, t, c, im)
			if tc.run {
				bundle := checkChartRun(ctx, t, c, m, ns)
				// An upgrade applies the manifests again, which have no caBundle:
				// the init container's must stay.
				applyAndReadBack(ctx, t, c, m.confineWebhooks(t, helmAppsNamespace))
				if got := caBundle(ctx, t, c, ns+"-injector"); string(got) != string(bundle) {
					t.Errorf("applying the chart again changed the caBundle:\n%s\nwas:\n%s", got, bundle)
				}
			}
		})
	}
}

// checkChartRun runs, for a release of tls.mode self-signed applied in namespace ns
// (named ns too), the init container's exact arguments as the release's
// ServiceAccount against the API server: it must create the CA Secret and put that CA
// into the release's webhook configuration, which only the chart's RBAC allows. Then
// the real injector starts with the container's arguments and the chart's
// config.yaml, serving the certificate the init container wrote, and a webhook call
// trusting only the caBundle, for the Service's name, must come back with the pod
// injected. It returns the caBundle.
func checkChartRun(ctx context.Context, t *testing.T, c *kubetest.Cluster, m *manifests, ns string) []byte {
	t.Helper()
	name := ns + "-injector"
	var dep appsv1.Deployment
	m.into(t, "Deployment", name, &dep)
	spec := dep.Spec.Template.Spec
	if len(spec.InitContainers) != 1 {
		t.Fatalf("the chart's pod has %d init containers, want the certificates one", len(spec.InitContainers))
	}
	token, err := c.ServiceAccountToken(ctx, ns, spec.ServiceAccountName)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	var args []string
	for _, a := range spec.InitContainers[0].Args {
		a = strings.ReplaceAll(a, "$(POD_NAMESPACE)", ns)
		if strings.HasPrefix(a, "--out-dir=") {
			a = "--out-dir=" + outDir
		}
		args = append(args, a)
	}
	args = append(args, "--kube-server="+c.URL(), "--kube-token-file="+tokenFile, "--kube-ca-file="+c.CAFile())
	var stderr string
	eventually(t, 20*time.Second, "the init container as the chart's ServiceAccount", func() error {
		// The authorizer sees new bindings a little late.
		_, stderr, err = runOutrider(ctx, args...)
		return err
	})
	var secret corev1.Secret
	if err := c.Get(ctx, "/api/v1/namespaces/"+ns+"/secrets/"+name+"-selfsigned-ca", &secret); err != nil {
		t.Fatalf("the CA Secret of the release: %v (init container: %s)", err, stderr)
	}
	bundle := caBundle(ctx, t, c, name)
	if ca := secret.Data[inject.SecretCACertKey]; len(ca) == 0 || string(bundle) != string(ca) {
		t.Fatalf("the caBundle of %s is not the CA of the Secret:\n%s", name, bundle)
	}

	var cm corev1.ConfigMap
	m.into(t, "ConfigMap", name+"-config", &cm)
	configPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(configPath, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeLoopbackAddr(t)
	inj := startInjector(t, injectorArgs(t, spec.Containers[0].Args, map[string]string{
		"--config":   configPath,
		"--listen":   listen,
		"--tls-cert": filepath.Join(outDir, inject.CertFileName),
		"--tls-key":  filepath.Join(outDir, inject.KeyFileName),
	}), listen, name+"."+ns+".svc", bundle)
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "helm-chart",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: helmAppsNamespace,
			Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: []byte(mustJSON(t, corev1.Pod{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: helmAppsNamespace,
					Annotations: map[string]string{inject.AnnotationInject: "true"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
			}))},
		},
	}
	resp, err := inj.client.Post(inj.base+"/mutate", "application/json", strings.NewReader(mustJSON(t, review)))
	if err != nil {
		t.Fatalf("webhook call trusting the caBundle: %v", err)
	}
	var out admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || out.Response == nil || out.Response.UID != review.Request.UID ||
		!out.Response.Allowed || len(out.Response.Patch) == 0 {
		t.Errorf("the injector with the chart's configuration answered %d %+v (%v), want the pod injected", resp.StatusCode, out.Response, err)
	} else {
		// The defaults took effect: the Secrets and the namespace's overlay are
		// mounted.
		for _, want := range []string{"loki-auth", "tempo-auth", "backend-ca", "tempo-client", "sentry-client", "apps-overlay"} {
			if !strings.Contains(string(out.Response.Patch), want) {
				t.Errorf("the injected pod does not mount %s, which the chart's injectorDefaults name:\n%s", want, out.Response.Patch)
			}
		}
	}
	if err := inj.stop(15 * time.Second); err != nil {
		t.Error(err)
	}
	return bundle
}

// chartDiff lists where the chart's objects differ from want, a kustomize build: an
// object only in one of them, or a field (by path) that differs. Differences that
// come from Helm and not from the values are taken out first:
//   - the Namespace: Helm keeps its release in the namespace, which must exist before
//     the install, so the chart does not create it (NOTES.txt says to label it);
//   - the ConfigMap's name: kustomize appends a hash of its content, the chart puts
//     that hash (it must) in the pod template's checksum/config annotation instead;
//   - Helm's labels (helmLabels), on objects and pods;
//   - config.yaml: compared as YAML, where the chart always names the sidecar image,
//     which the injector otherwise defaults to its own, the Deployment's image.
func chartDiff(t *testing.T, want, chart *manifests) []string {
	t.Helper()
	want, chart = want.clone(t), chart.clone(t)
	var diffs []string
	if ns := want.lookup("Namespace", injectorNamespace); ns != nil {
		want.remove(t, "Namespace", injectorNamespace)
	}
	// ConfigMap name.
	for _, o := range want.objects {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), injectorName+"-config-") {
			hashed := o.GetName()
			o.SetName(injectorName + "-config")
			if dep := want.lookup("Deployment", injectorName); dep != nil {
				vols, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
				for _, v := range vols {
					if cm, ok := v.(map[string]any)["configMap"].(map[string]any); ok && cm["name"] == hashed {
						cm["name"] = injectorName + "-config"
					}
				}
				_ = unstructured.SetNestedSlice(dep.Object, vols, "spec", "template", "spec", "volumes")
			}
		}
	}
	// config.yaml, parsed; the image default made explicit.
	var image string
	if dep := want.lookup("Deployment", injectorName); dep != nil {
		ctrs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
		if len(ctrs) > 0 {
			image, _ = ctrs[0].(map[string]any)["image"].(string)
		}
	}
	var chartConfig string
	if cm := chart.lookup("ConfigMap", injectorName+"-config"); cm != nil {
		chartConfig, _, _ = unstructured.NestedString(cm.Object, "data", "config.yaml")
	}
	for _, m := range []*manifests{want, chart} {
		if cm := m.lookup("ConfigMap", injectorName+"-config"); cm != nil {
			data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
			cfg := map[string]any{}
			if err := yaml.Unmarshal([]byte(data["config.yaml"]), &cfg); err != nil {
				diffs = append(diffs, fmt.Sprintf("ConfigMap/%s: config.yaml is not YAML: %v", cm.GetName(), err))
			}
			if _, ok := cfg["image"]; !ok && m == want {
				cfg["image"] = image
			}
			_ = unstructured.SetNestedField(cm.Object, cfg, "data", "config.yaml")
		}
	}
	// Helm's labels, and the checksum of the configuration.
	for _, o := range chart.objects {
		lbls := o.GetLabels()
		for _, l := range helmLabels {
			delete(lbls, l)
		}
		o.SetLabels(lbls)
		if o.GetKind() != "Deployment" {
			continue
		}
		tmpl, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "metadata")
		if lbls, ok := tmpl["labels"].(map[string]any); ok {
			for _, l := range helmLabels {
				delete(lbls, l)
			}
		}
		ann, _ := tmpl["annotations"].(map[string]any)
		cm := chart.lookup("ConfigMap", o.GetName()+"-config")
		if cm == nil {
			diffs = append(diffs, "the chart has no ConfigMap "+o.GetName()+"-config")
		} else if sum, ok := ann["checksum/config"].(string); !ok {
			diffs = append(diffs, "Deployment/"+o.GetName()+": no checksum/config annotation on the pod template: a change of the configuration would not roll the pods")
		} else {
			delete(ann, "checksum/config")
			if len(ann) == 0 {
				delete(tmpl, "annotations")
			}
			// The checksum is of config.yaml as rendered (a YAML block scalar adds the
			// final newline).
			if got := sha256.Sum256([]byte(strings.TrimSuffix(chartConfig, "\n"))); hex.EncodeToString(got[:]) != sum {
				diffs = append(diffs, fmt.Sprintf("Deployment/%s: checksum/config %s is not the sha256 of the ConfigMap's config.yaml", o.GetName(), sum))
			}
		}
		_ = unstructured.SetNestedMap(o.Object, tmpl, "spec", "template", "metadata")
	}

	key := func(o *unstructured.Unstructured) string {
		if o.GetNamespace() == "" {
			return o.GetKind() + "/" + o.GetName()
		}
		return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
	}
	wantBy, chartBy := map[string]*unstructured.Unstructured{}, map[string]*unstructured.Unstructured{}
	for _, o := range want.objects {
		wantBy[key(o)] = o
	}
	for _, o := range chart.objects {
		if _, dup := chartBy[key(o)]; dup {
			diffs = append(diffs, key(o)+": twice in the chart")
		}
		chartBy[key(o)] = o
	}
	for _, k := range unionKeys(wantBy, chartBy) {
		w, c := wantBy[k], chartBy[k]
		switch {
		case c == nil:
			diffs = append(diffs, k+": in kustomize's output, not in the chart's")
		case w == nil:
			diffs = append(diffs, k+": in the chart's output, not in kustomize's")
		default:
			diffs = append(diffs, diffValues(k, w.Object, c.Object)...)
		}
	}
	return diffs
}

// diffValues lists every path where want and got differ, both ways.
func diffValues(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: kustomize has an object, the chart %s", path, describe(got))}
		}
		var diffs []string
		for _, k := range unionKeys(w, g) {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: kustomize has %s, the chart nothing", path, k, short(wv)))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: the chart has %s, kustomize nothing", path, k, short(gv)))
			default:
				diffs = append(diffs, diffValues(path+"."+k, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: kustomize has %s, the chart %s", path, short(want), short(got))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, diffValues(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(normalize(want), normalize(got)) {
			return []string{fmt.Sprintf("%s: kustomize has %s, the chart %s", path, short(want), short(got))}
		}
		return nil
	}
}

// unionKeys returns the keys of a and b, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// short renders a value for a difference, as compact JSON.
func short(v any) string {
	js, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	s := strings.TrimSpace(string(js))
	if j, err := yaml.YAMLToJSON(js); err == nil {
		s = string(j)
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// clone returns a deep copy of the manifests.
func (m *manifests) clone(t testing.TB) *manifests {
	t.Helper()
	out := &manifests{yaml: slices.Clone(m.yaml)}
	for _, o := range m.objects {
		out.objects = append(out.objects, o.DeepCopy())
	}
	return out
}

// lookup returns the object of kind and name, or nil.
func (m *manifests) lookup(kind, name string) *unstructured.Unstructured {
	for _, o := range m.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// remove takes the object of kind and name out, or fails the test.
func (m *manifests) remove(t testing.TB, kind, name string) {
	t.Helper()
	for i, o := range m.objects {
		if o.GetKind() == kind && o.GetName() == name {
			m.objects = slices.Delete(m.objects, i, i+1)
			return
		}
	}
	t.Fatalf("the manifests have no %s %s to remove; they have %s", kind, name, strings.Join(m.names(), ", "))
}

// setField sets the field at path (map keys, and list indexes as decimal strings) of
// the object of kind and name; the field's parent must exist.
func setField(t testing.TB, m *manifests, kind, name string, value any, path ...string) {
	t.Helper()
	var cur any = m.find(t, kind, name).Object
	for i, p := range path {
		last := i == len(path)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = value
				return
			}
			cur = c[p]
		case []any:
			var n int
			if _, err := fmt.Sscan(p, &n); err != nil || n < 0 || n >= len(c) {
				t.Fatalf("%s %s: no element %s at %s", kind, name, p, strings.Join(path[:i], "."))
			}
			if last {
				c[n] = value
				return
			}
			cur = c[n]
		default:
			t.Fatalf("%s %s: nothing at %s", kind, name, strings.Join(path[:i+1], "."))
		}
	}
}

// replaceArg replaces an argument of the injector's container.
func replaceArg(t testing.TB, m *manifests, old, new string) {
	t.Helper()
	args, _, _ := unstructured.NestedSlice(m.find(t, "Deployment", injectorName).Object, "spec", "template", "spec", "containers")
	ctr, _ := args[0].(map[string]any)
	list, _ := ctr["args"].([]any)
	i := slices.Index(list, any(old))
	if i < 0 {
		t.Fatalf("the injector's args %v have no %s", list, old)
	}
	setField(t, m, "Deployment", injectorName, new, "spec", "template", "spec", "containers", "0", "args", fmt.Sprint(i))
}

// setConfig sets keys of config.yaml in the injector's ConfigMap.
func setConfig(t testing.TB, m *manifests, kv map[string]any) {
	t.Helper()
	for _, o := range m.objects {
		if o.GetKind() != "ConfigMap" || !strings.HasPrefix(o.GetName(), injectorName+"-config") {
			continue
		}
		data, _, _ := unstructured.NestedString(o.Object, "data", "config.yaml")
		cfg := map[string]any{}
		if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
			t.Fatal(err)
		}
		for k, v := range kv {
			cfg[k] = v
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(o.Object, string(out), "data", "config.yaml"); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no ConfigMap %s-config", injectorName)
}

// TestHelmChartRejects installs the chart (client dry run) with values it must refuse,
// and checks that Helm's error names the value and says what to write. A credential
// given by value must not be echoed.
func TestHelmChartRejects(t *testing.T) {
	t.Parallel()
	const dsn = "https://0123456789abcdef@sentry.example.com/42"
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"failurePolicy", map[string]any{"webhook": map[string]any{"failurePolicy": "Sometimes"}},
			[]string{"/webhook/failurePolicy", "'Fail', 'Ignore'"}},
		{"tls mode", map[string]any{"tls": map[string]any{"mode": "vault"}},
			[]string{"/tls/mode", "'self-signed', 'cert-manager'"}},
		{"zero replicas", map[string]any{"replicas": 0},
			[]string{"/replicas", "minimum"}},
		{"replicas not a number", map[string]any{"replicas": "two"},
			[]string{"/replicas", "want integer"}},
		{"memory not a quantity", map[string]any{"resources": map[string]any{"requests": map[string]any{"memory": "lots"}}},
			[]string{"/resources/requests/memory", "lots"}},
		{"unknown top-level key", map[string]any{"replica": 3},
			[]string{"replica"}},
		{"unknown injector default", map[string]any{"injectorDefaults": map[string]any{"loki_ur": "http://loki:3100"}},
			[]string{"loki_ur"}},
		{"injector default not a URL", map[string]any{"injectorDefaults": map[string]any{"vault_addr": "vault:8200"}},
			[]string{"/injectorDefaults/vault_addr"}},
		{"sidecar mode", map[string]any{"injectorDefaults": map[string]any{"sidecar_mode": "sidecar"}},
			[]string{"/injectorDefaults/sidecar_mode", "'native', 'classic'"}},
		{"Sentry DSN by value", map[string]any{"injectorDefaults": map[string]any{"sentry_dsn": dsn}},
			[]string{"injectorDefaults.sentry_dsn", "sentry_dsn_secret: <secret>/<key>"}},
		{"bearer token by value", map[string]any{"injectorDefaults": map[string]any{"loki_bearer_token_secret": "0123456789abcdef"}},
			[]string{"injectorDefaults.loki_bearer_token_secret must be <secret>/<key>"}},
		{"header without a Secret", map[string]any{"injectorDefaults": map[string]any{"tempo_headers_secret": "X-Scope-OrgID=tenant1"}},
			[]string{"injectorDefaults.tempo_headers_secret must list <Header>=<secret>/<key>"}},
		{"overlay of a bad namespace", map[string]any{"injectorDefaults": map[string]any{"namespace_overlays": map[string]any{"Shop_1": "overlay"}}},
			[]string{`injectorDefaults.namespace_overlays: "Shop_1" is not a namespace name`}},
		{"overlays without a ConfigMap", map[string]any{"injectorDefaults": map[string]any{"namespace_overlays": "shop=overlay,search"}},
			[]string{`injectorDefaults.namespace_overlays: the overlay of search, "", must be <configmap>`}},
		{"overlays listed twice", map[string]any{"injectorDefaults": map[string]any{"namespace_overlays": "shop=overlay, shop=other"}},
			[]string{`injectorDefaults.namespace_overlays: namespace shop is listed twice`}},
		{"Sentry DSN Secret reference", map[string]any{"injectorDefaults": map[string]any{"sentry_dsn_secret": dsn}},
			[]string{"injectorDefaults.sentry_dsn_secret must be <secret>/<key>"}},
		{"PodDisruptionBudget blocks drains", map[string]any{"replicas": 2, "podDisruptionBudget": map[string]any{"minAvailable": 2}},
			[]string{"podDisruptionBudget.minAvailable (2) must be below replicas (2)"}},
		{"podLabels on a selector label", map[string]any{"podLabels": map[string]any{"app.kubernetes.io/name": "web"}},
			[]string{"podLabels: app.kubernetes.io/name is set by the chart"}},
		{"objectSelector on the reserved label", map[string]any{"webhook": map[string]any{"objectSelector": map[string]any{
			"matchLabels": map[string]any{"app.kubernetes.io/name": "web"}}}},
			[]string{"webhook.objectSelector: app.kubernetes.io/name is reserved"}},
		{"selector operator", map[string]any{"webhook": map[string]any{"namespaceSelector": map[string]any{
			"matchExpressions": []any{map[string]any{"key": "team", "operator": "Equals", "values": []any{"a"}}}}}},
			[]string{"/webhook/namespaceSelector/matchExpressions/0/operator"}},
		{"cert-manager duration", map[string]any{"tls": map[string]any{"certManager": map[string]any{"duration": "90 days"}}},
			[]string{"/tls/certManager/duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := renderChart(t, helmReleaseName, injectorNamespace, tc.values)
			if err == nil {
				t.Fatalf("the chart accepted %v", tc.values)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("the error echoes the credential: %v", err)
			}
		})
	}
}

// TestHelmLint runs Helm's linter (`helm lint --strict`) on the chart, with the
// default values and with tls.mode cert-manager: no warning and no error.
func TestHelmLint(t *testing.T) {
	t.Parallel()
	for _, values := range []map[string]any{nil, {"tls": map[string]any{"mode": "cert-manager"}}} {
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = injectorNamespace
		res := lint.Run([]string{chartDir}, values)
		if res.TotalChartsLinted != 1 {
			t.Errorf("values %v: linted %d charts, want 1: %v", values, res.TotalChartsLinted, res.Errors)
		}
		for _, msg := range res.Messages {
			if msg.Severity > support.InfoSev {
				t.Errorf("values %v: %s", values, msg)
			} else {
				t.Logf("values %v: %s", values, msg)
			}
		}
		for _, err := range res.Errors {
			t.Errorf("values %v: %v", values, err)
		}
	}
}

// TestHelmSchemaCoversInjectorDefaults checks that values.schema.json's
// injectorDefaults lists exactly the keys `outrider inject --config` reads (the yaml
// tags of inject.Defaults, nested structs included): a key the injector gains must be
// settable through the chart, and a key it loses must not be accepted by it.
func TestHelmSchemaCoversInjectorDefaults(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	props, _, _ := unstructured.NestedMap(schema, "properties", "injectorDefaults")
	if props == nil {
		t.Fatal("values.schema.json has no properties.injectorDefaults")
	}
	for _, d := range schemaDiff("injectorDefaults", reflect.TypeFor[inject.Defaults](), props) {
		t.Error(d)
	}
}

// schemaDiff lists the yaml keys of the struct type typ that the JSON schema object
// does not list, and the other way round.
func schemaDiff(path string, typ reflect.Type, schema map[string]any) []string {
	props, _ := schema["properties"].(map[string]any)
	var diffs []string
	if add, ok := schema["additionalProperties"].(bool); !ok || add {
		diffs = append(diffs, path+": the schema allows keys it does not list; set additionalProperties: false")
	}
	keys := map[string]reflect.StructField{}
	yamlKeys(typ, keys)
	for name, f := range keys {
		p, ok := props[name].(map[string]any)
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s.%s: outrider inject --config reads it (inject.Defaults %s), values.schema.json does not list it: add it there, to values.yaml and to deploy/README.md", path, name, f.Name))
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			diffs = append(diffs, schemaDiff(path+"."+name, ft, p)...)
		}
	}
	for name := range props {
		if _, ok := keys[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s.%s: values.schema.json accepts it, outrider inject --config does not read it", path, name))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// yamlKeys adds the yaml keys of the struct type typ to keys, those of inline
// structs included.
func yamlKeys(typ reflect.Type, keys map[string]reflect.StructField) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case slices.Contains(strings.Split(opts, ","), "inline"):
			yamlKeys(f.Type, keys)
		case name == "-" || !f.IsExported():
		case name == "":
			keys[strings.ToLower(f.Name)] = f // yaml.v3's default key
		default:
			keys[name] = f
		}
	}
}
