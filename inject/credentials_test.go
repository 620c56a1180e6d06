package inject

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/outrider-dev/outrider/config"
)

// sidecarOf returns the injected sidecar container.
func sidecarOf(t *testing.T, pod *corev1.Pod) *corev1.Container {
	t.Helper()
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == SidecarName {
				return &list[i]
			}
		}
	}
	t.Fatal("no sidecar in the patched pod")
	return nil
}

// loadMounted loads the delivered configuration with the credential files as they
// would be mounted: each mounted path is rewritten into dir, holding a dummy value.
func loadMounted(t *testing.T, pod *corev1.Pod) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := pod.Annotations[AnnotationConfig]
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil || !strings.HasPrefix(v.Name, volumeCredentialPrefix) {
			continue
		}
		for _, item := range v.Secret.Items {
			mounted := filepath.Join(CredentialsDir, v.Secret.SecretName, item.Path)
			file := filepath.Join(dir, v.Secret.SecretName+"-"+item.Path)
			if err := os.WriteFile(file, []byte("value\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg = strings.ReplaceAll(cfg, mounted, file)
		}
	}
	cfg = withSentryDSNFile(t, dir, cfg)
	c, err := config.Parse("delivered", []byte(cfg))
	if err != nil {
		t.Fatalf("the delivered configuration does not load with its files mounted: %v\n%s", err, cfg)
	}
	return c
}

func TestCredentialsInjected(t *testing.T) {
	d := testDefaults()
	d.SentryDSNSecret = "sentry/dsn"
	in := newTestInjector(t, d)
	pod := basePod()
	pod.Annotations[AnnotationLokiURL] = "https://loki.monitoring.svc:3100"
	pod.Annotations[AnnotationTempoEndpoint] = "https://tempo.monitoring.svc:4317"
	pod.Annotations[AnnotationLokiBasicAuthSecret] = "loki-auth"
	pod.Annotations[AnnotationLokiCASecret] = "backend-ca/ca.crt"
	pod.Annotations[AnnotationLokiClientCertSecret] = "loki-client"
	pod.Annotations[AnnotationTempoHeadersSecret] = "Authorization=tempo-auth/authorization, X-Scope-OrgID=tempo-auth/tenant"
	pod.Annotations[AnnotationTempoCASecret] = "backend-ca/ca.crt"
	pod.Annotations[AnnotationSentryCASecret] = "backend-ca/ca.crt"
	req := requestFor(t, pod)
	got, _ := applyPatch(t, in, req, in.Mutate(req))

	// One volume per Secret, with only the keys read, mounted read-only in the sidecar.
	wantItems := map[string]string{
		"backend-ca":  "ca.crt",
		"loki-auth":   "password,username",
		"loki-client": "tls.crt,tls.key",
		"tempo-auth":  "authorization,tenant",
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range sidecarOf(t, got).VolumeMounts {
		mounts[m.Name] = m
	}
	seen := 0
	for _, v := range got.Spec.Volumes {
		if !strings.HasPrefix(v.Name, volumeCredentialPrefix) {
			continue
		}
		seen++
		var keys []string
		for _, it := range v.Secret.Items {
			keys = append(keys, it.Key)
		}
		if want := wantItems[v.Secret.SecretName]; strings.Join(keys, ",") != want {
			t.Errorf("volume of Secret %s has keys %v, want %s", v.Secret.SecretName, keys, want)
		}
		m, ok := mounts[v.Name]
		if !ok || !m.ReadOnly || m.MountPath != filepath.Join(CredentialsDir, v.Secret.SecretName) {
			t.Errorf("sidecar mount of %s = %+v", v.Name, m)
		}
	}
	if seen != len(wantItems) {
		t.Errorf("%d credential volumes, want %d", seen, len(wantItems))
	}

	cfg := loadMounted(t, got)
	raw := got.Annotations[AnnotationConfig]
	for _, want := range []string{
		"username_file: /etc/outrider-creds/loki-auth/username",
		"password_file: /etc/outrider-creds/loki-auth/password",
		"ca_file: /etc/outrider-creds/backend-ca/ca.crt",
		"cert_file: /etc/outrider-creds/loki-client/tls.crt",
		"Authorization: /etc/outrider-creds/tempo-auth/authorization",
		`Secret "tempo-auth" key "tenant"`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("delivered configuration lacks %q:\n%s", want, raw)
		}
	}
	if cfg.Exporters.Sentry == nil || cfg.Exporters.Sentry.TLS.CAFile == "" {
		t.Error("exporters.sentry.tls.ca_file not set")
	}
	if len(cfg.Exporters.OTLP.HeadersFromFiles) != 2 {
		t.Errorf("headers_from_files = %v", cfg.Exporters.OTLP.HeadersFromFiles)
	}
}

func TestCredentialDefaultsAndNone(t *testing.T) {
	d := testDefaults()
	d.LokiBearerTokenSecret = "loki-token/token"
	in := newTestInjector(t, d)

	pod := basePod()
	req := requestFor(t, pod)
	got, _ := applyPatch(t, in, req, in.Mutate(req))
	if !strings.Contains(got.Annotations[AnnotationConfig], "bearer_token_file: /etc/outrider-creds/loki-token/token") {
		t.Errorf("the default bearer token Secret is not used:\n%s", got.Annotations[AnnotationConfig])
	}

	pod = basePod()
	pod.Annotations[AnnotationLokiBearerTokenSecret] = "none"
	req = requestFor(t, pod)
	got, _ = applyPatch(t, in, req, in.Mutate(req))
	if strings.Contains(got.Annotations[AnnotationConfig], "bearer_token_file") {
		t.Errorf("\"none\" did not turn the default off:\n%s", got.Annotations[AnnotationConfig])
	}
}

func TestCredentialsDenied(t *testing.T) {
	noTempo := testDefaults()
	noTempo.TempoEndpoint = ""
	cases := []struct {
		name        string
		defaults    Defaults
		annotations map[string]string
		want        string
	}{
		{"secret with a key", testDefaults(), map[string]string{AnnotationLokiBasicAuthSecret: "loki-auth/password"}, AnnotationLokiBasicAuthSecret + `: "loki-auth/password" must be the name of a Secret`},
		{"no key", testDefaults(), map[string]string{AnnotationLokiCASecret: "ca"}, AnnotationLokiCASecret + `: "ca" must be <secret>/<key>`},
		{"header without secret", testDefaults(), map[string]string{AnnotationTempoHeadersSecret: "Authorization"}, AnnotationTempoHeadersSecret + `: "Authorization" must be <Header>=<secret>/<key>`},
		{"reserved header", testDefaults(), map[string]string{AnnotationTempoHeadersSecret: "Content-Type=t/k"}, AnnotationTempoHeadersSecret + ": the sidecar's configuration would be invalid: exporters.otlp.headers_from_files"},
		{"header twice", testDefaults(), map[string]string{AnnotationTempoHeadersSecret: "A=t/a,a=t/b"}, "listed twice"},
		{"tls on plaintext", testDefaults(), map[string]string{AnnotationTempoCASecret: "ca/ca.crt"}, AnnotationTempoCASecret + ": the sidecar's configuration would be invalid: exporters.otlp.tls: is set but endpoint http://tempo.monitoring.svc:4317 is plaintext"},
		{"traces go nowhere", noTempo, map[string]string{AnnotationTempoCASecret: "ca/ca.crt"}, AnnotationTempoCASecret + ": is set but traces go nowhere"},
		{"overlay name", testDefaults(), map[string]string{AnnotationConfigOverlay: "Bad_Name"}, AnnotationConfigOverlay + `: "Bad_Name" must be <configmap>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := newTestInjector(t, tc.defaults)
			pod := basePod()
			for k, v := range tc.annotations {
				pod.Annotations[k] = v
			}
			resp := in.Mutate(requestFor(t, pod))
			if resp.Allowed {
				t.Fatal("allowed")
			}
			if !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("denial %q does not contain %q", resp.Result.Message, tc.want)
			}
		})
	}
}

func TestBadCredentialDefaults(t *testing.T) {
	d := testDefaults()
	d.LokiCASecret = "no-key"
	d.NamespaceOverlays = "Shop=x,web=Bad/,shop"
	_, err := NewInjector(d)
	for _, want := range []string{"loki_ca_secret:", `namespace_overlays: "Shop" is not a namespace name`, `namespace_overlays: web: "Bad/" must be`, `namespace_overlays: "shop" must be <namespace>=<configmap>`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewInjector error %v does not contain %q", err, want)
		}
	}
}

func TestCredentialDefaultOnPlaintextEndpoint(t *testing.T) {
	d := testDefaults()
	d.TempoCASecret = "ca/ca.crt"
	_, err := NewInjector(d)
	if err == nil || !strings.Contains(err.Error(), "tempo_ca_secret: the sidecar's configuration would be invalid: exporters.otlp.tls: is set but endpoint http://tempo.monitoring.svc:4317 is plaintext") {
		t.Fatalf("NewInjector = %v; want the default named with the reason", err)
	}
}

func TestOverlaysInjected(t *testing.T) {
	d := testDefaults()
	d.NamespaceOverlays = "shop=shop-outrider, *=all-outrider/base.yaml"
	in := newTestInjector(t, d)
	pod := basePod()
	pod.Annotations[AnnotationConfigOverlay] = "web-outrider"
	req := requestFor(t, pod)
	got, _ := applyPatch(t, in, req, in.Mutate(req))
	side := sidecarOf(t, got)
	args := strings.Join(side.Args, " ")
	want := "--optional-overlay /etc/outrider-overlay/namespace/overlay.yaml --overlay /etc/outrider-overlay/pod/overlay.yaml"
	if !strings.HasSuffix(args, want) {
		t.Errorf("sidecar args %q do not end with %q", args, want)
	}
	vols := map[string]*corev1.ConfigMapVolumeSource{}
	for _, v := range got.Spec.Volumes {
		if v.ConfigMap != nil {
			vols[v.Name] = v.ConfigMap
		}
	}
	if ns := vols[volumeOverlayNamespace]; ns == nil || ns.Name != "shop-outrider" || !*ns.Optional || ns.Items[0].Key != DefaultOverlayKey {
		t.Errorf("namespace overlay volume = %+v", ns)
	}
	if p := vols[volumeOverlayPod]; p == nil || p.Name != "web-outrider" || *p.Optional {
		t.Errorf("pod overlay volume = %+v", p)
	}

	// Another namespace gets the "*" default, and no pod overlay.
	pod = basePod()
	pod.Namespace = "other"
	req = requestFor(t, pod)
	got, _ = applyPatch(t, in, req, in.Mutate(req))
	for _, v := range got.Spec.Volumes {
		if v.Name == volumeOverlayPod {
			t.Error("a pod overlay volume without the annotation")
		}
		if v.Name == volumeOverlayNamespace && (v.ConfigMap.Name != "all-outrider" || v.ConfigMap.Items[0].Key != "base.yaml") {
			t.Errorf("namespace overlay of another namespace = %+v", v.ConfigMap)
		}
	}
}

// FuzzCredentialAnnotations feeds any value to the credential and overlay
// annotations: the injector always answers, allowing the pod or denying it with a
// reason, and never panics.
func FuzzCredentialAnnotations(f *testing.F) {
	f.Add(AnnotationTempoHeadersSecret, "Authorization=tempo-auth/authorization,X-Scope-OrgID=t/k")
	f.Add(AnnotationLokiBasicAuthSecret, "loki-auth")
	f.Add(AnnotationLokiCASecret, "ca/ca.crt")
	f.Add(AnnotationConfigOverlay, "web-outrider/overlay.yaml")
	f.Add(AnnotationTempoHeadersSecret, "=,==,a=b/c/d")
	in, err := NewInjector(testDefaults())
	if err != nil {
		f.Fatal(err)
	}
	keys := []string{AnnotationTempoHeadersSecret, AnnotationLokiBasicAuthSecret, AnnotationLokiBearerTokenSecret,
		AnnotationLokiCASecret, AnnotationTempoClientCertSecret, AnnotationConfigOverlay}
	f.Fuzz(func(t *testing.T, key, value string) {
		known := false
		for _, k := range keys {
			known = known || k == key
		}
		if !known {
			key = keys[len(value)%len(keys)]
		}
		pod := basePod()
		pod.Annotations[key] = value
		resp := in.Mutate(requestFor(t, pod))
		if resp == nil {
			t.Fatal("no response")
		}
		if !resp.Allowed && (resp.Result == nil || !strings.Contains(resp.Result.Message, "outrider")) {
			t.Fatalf("denied without a reason: %+v", resp.Result)
		}
	})
}

func FuzzNamespaceOverlays(f *testing.F) {
	f.Add("payments=payments-outrider,*=all/overlay.yaml")
	f.Add("=,a=,=b")
	f.Fuzz(func(t *testing.T, s string) {
		m, probs := parseNamespaceOverlays(s)
		for ns, ref := range m {
			if ns == "" || ref.configMap == "" || ref.key == "" {
				t.Fatalf("accepted an empty part: %q=%+v from %q (problems %v)", ns, ref, s, probs)
			}
		}
	})
}
