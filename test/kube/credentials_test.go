package kube

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/kubetest"
)

const credentialsPod = `apiVersion: v1
kind: Pod
metadata:
  name: shop-web
  namespace: outrider-creds-apps
  annotations:
    outrider.dev/inject: "true"
    outrider.dev/loki-url: https://loki.monitoring.svc:3100
    outrider.dev/loki-tenant: team-a
    outrider.dev/loki-basic-auth-secret: loki-auth
    outrider.dev/loki-client-cert-secret: loki-client
    outrider.dev/loki-ca-secret: backend-ca/ca.crt
    outrider.dev/tempo-endpoint: https://tempo.monitoring.svc:4317
    outrider.dev/tempo-headers-secret: Authorization=tempo-auth/authorization,X-Scope-OrgID=tempo-auth/tenant
    outrider.dev/config-overlay: web-outrider
spec:
  containers:
    - name: web
      image: web:1
`

// TestCredentialsAndOverlays injects a pod naming credential Secrets and an overlay
// ConfigMap (plus the injector's namespace overlay and default Tempo CA, from its
// configuration file) with the real ` + "`outrider inject -f`" + `, creates the Secrets, the
// ConfigMaps and the pod through the real API server, and checks the stored pod: each
// Secret and ConfigMap is mounted by name in the sidecar, with only the keys read; no
// credential value appears anywhere in the pod; and the generated configuration, with
// the overlays and the files as the kubelet would mount them from the stored
// Secrets and ConfigMaps, loads.
func TestCredentialsAndOverlays(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "outrider-creds-apps"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	const password, token, tenant = "pw-9f3b1c-never-in-pod", "Basic dG9rZW4tN2UyYS1uZXZlcg==", "tenant-5d1e-never"
	secrets := []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "loki-auth"}, Type: corev1.SecretTypeBasicAuth,
			StringData: map[string]string{"username": "team-a", "password": password}},
		{ObjectMeta: metav1.ObjectMeta{Name: "tempo-auth"}, StringData: map[string]string{"authorization": token, "tenant": tenant, "unused": "x"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "backend-ca"}, StringData: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\n"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "loki-client"}, StringData: map[string]string{"tls.crt": "cert", "tls.key": "key-3a7c-never-in-pod"}},
	}
	for _, s := range secrets {
		s.Namespace = ns
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	overlays := map[string]string{
		"ns-outrider":  "exporters:\n  loki:\n    labels: {cluster: eu1}\n",
		"web-outrider": "exporters:\n  loki:\n    labels: {team: shop}\n",
	}
	for name, data := range overlays {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string]string{inject.DefaultOverlayKey: data}}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	injectorCfg := filepath.Join(t.TempDir(), "injector.yaml")
	if err := os.WriteFile(injectorCfg, []byte("image: "+sidecarImage+"\ntempo_ca_secret: backend-ca/ca.crt\nnamespace_overlays: "+ns+"=ns-outrider\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := injectedByBinary(ctx, t, []byte(credentialsPod), "--config", injectorCfg, "--tempo-endpoint", "https://tempo.monitoring.svc:4317")
	stored := createIn(ctx, t, c, ns, pod)

	raw, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{password, token, tenant, "key-3a7c-never-in-pod"} {
		if strings.Contains(string(raw), v) {
			t.Errorf("the stored pod holds the credential %q", v)
		}
	}

	var sidecar *corev1.Container
	for i := range stored.Spec.InitContainers {
		if stored.Spec.InitContainers[i].Name == inject.SidecarName {
			sidecar = &stored.Spec.InitContainers[i]
		}
	}
	if sidecar == nil {
		t.Fatal("no sidecar in the stored pod")
	}
	mounted := map[string]string{}
	for _, m := range sidecar.VolumeMounts {
		if !m.ReadOnly && (strings.HasPrefix(m.MountPath, inject.CredentialsDir) || strings.HasPrefix(m.MountPath, inject.OverlayDir)) {
			t.Errorf("mount %s is writable", m.MountPath)
		}
		mounted[m.Name] = m.MountPath
	}
	// Mirror what the kubelet would mount from the stored objects into a directory,
	// and load the configuration with its overlays from there.
	root := t.TempDir()
	rewrite := map[string]string{}
	var overlayFiles []config.OverlayFile
	wantSecrets := map[string]string{"loki-auth": "password,username", "tempo-auth": "authorization,tenant", "backend-ca": "ca.crt", "loki-client": "tls.crt,tls.key"}
	for _, v := range stored.Spec.Volumes {
		dir, ok := mounted[v.Name]
		if !ok {
			continue
		}
		switch {
		case v.Secret != nil && strings.HasPrefix(dir, inject.CredentialsDir):
			var s corev1.Secret
			if err := c.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+ns+"/secrets/"+v.Secret.SecretName, nil, &s); err != nil {
				t.Fatalf("volume %s names Secret %s, which the API server does not have: %v", v.Name, v.Secret.SecretName, err)
			}
			var keys []string
			for _, it := range v.Secret.Items {
				keys = append(keys, it.Key)
				data, ok := s.Data[it.Key]
				if !ok {
					t.Errorf("Secret %s has no key %s", s.Name, it.Key)
				}
				file := filepath.Join(root, v.Name+"-"+it.Path)
				if err := os.WriteFile(file, data, 0o600); err != nil {
					t.Fatal(err)
				}
				rewrite[filepath.Join(dir, it.Path)] = file
			}
			if got := strings.Join(keys, ","); got != wantSecrets[v.Secret.SecretName] {
				t.Errorf("Secret %s mounted with keys %s, want %s", v.Secret.SecretName, got, wantSecrets[v.Secret.SecretName])
			}
			delete(wantSecrets, v.Secret.SecretName)
		case v.ConfigMap != nil:
			var cm corev1.ConfigMap
			if err := c.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+ns+"/configmaps/"+v.ConfigMap.Name, nil, &cm); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(root, v.Name+".yaml")
			if err := os.WriteFile(file, []byte(cm.Data[v.ConfigMap.Items[0].Key]), 0o600); err != nil {
				t.Fatal(err)
			}
			overlayFiles = append(overlayFiles, config.OverlayFile{Path: file, Optional: v.ConfigMap.Optional != nil && *v.ConfigMap.Optional})
			rewrite[filepath.Join(dir, v.ConfigMap.Items[0].Path)] = file
		}
	}
	if len(wantSecrets) > 0 {
		t.Errorf("Secrets not mounted in the sidecar: %v", wantSecrets)
	}
	// The overlays go in the order of the sidecar's flags: the namespace's, then the pod's.
	args := strings.Join(sidecar.Args, " ")
	for _, want := range []string{"--optional-overlay " + inject.OverlayDir + "/namespace/overlay.yaml", "--overlay " + inject.OverlayDir + "/pod/overlay.yaml"} {
		if !strings.Contains(args, want) {
			t.Errorf("sidecar args %q lack %q", args, want)
		}
	}
	if strings.Index(args, "/namespace/") > strings.Index(args, "/pod/") || len(overlayFiles) != 2 {
		t.Fatalf("overlays %v, args %q; want the namespace's before the pod's", overlayFiles, args)
	}
	cfgText := stored.Annotations[inject.AnnotationConfig]
	for from, to := range rewrite {
		cfgText = strings.ReplaceAll(cfgText, from, to)
	}
	base := filepath.Join(root, "config.yaml")
	if err := os.WriteFile(base, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadLayers(base, overlayFiles)
	if err != nil {
		t.Fatalf("the generated configuration with its overlays does not load: %v", err)
	}
	l := cfg.Exporters.Loki
	if l.TenantID != "team-a" || l.Labels["cluster"] != "eu1" || l.Labels["team"] != "shop" || l.BasicAuth.PasswordFile == "" || l.TLS.CertFile == "" {
		t.Errorf("loki exporter = tenant %q labels %v basic_auth %+v tls %+v", l.TenantID, l.Labels, l.BasicAuth, l.TLS)
	}
	if o := cfg.Exporters.OTLP; o.TLS.CAFile == "" || len(o.HeadersFromFiles) != 2 || !strings.Contains(o.CredentialSources[o.HeadersFromFiles["Authorization"]], `Secret "tempo-auth" key "authorization"`) {
		t.Errorf("otlp exporter = tls %+v headers %v sources %v", o.TLS, o.HeadersFromFiles, o.CredentialSources)
	}
}
