package kube

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/kubetest"
	"github.com/outrider-dev/outrider/secrets/render"
)

// Namespaces and names of TestVaultK8sWebhook.
const (
	vk8sInjectorNamespace = "outrider-vk8s-injector"
	vk8sAppsNamespace     = "outrider-vk8s-apps"
	vk8sWebhookConfig     = "outrider-injector-vk8s"
)

// TestVaultK8sWebhook runs the real `outrider inject --vault-k8s-compat`, with
// deploy/base's arguments and configuration, behind a Service of the real API server,
// and creates the pods of the vault-k8s documentation through it: the pods the API
// server stores carry outrider's sidecar and a configuration rendering the same files
// as Vault Agent would, and the pods outrider cannot honour are refused with the
// reason.
func TestVaultK8sWebhook(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := build(t, "base")
	var dep appsv1.Deployment
	base.into(t, "Deployment", injectorName, &dep)

	ln, err := c.ServiceListener(ctx, vk8sInjectorNamespace, injectorName)
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	serviceDNS := injectorName + "." + vk8sInjectorNamespace + ".svc"
	dir := t.TempDir()
	writeServingCert(t, c, dir, serviceDNS)
	configPath := filepath.Join(dir, "config.yaml")
	writeInjectorConfig(t, base, configPath)
	args := injectorArgs(t, dep.Spec.Template.Spec.Containers[0].Args, map[string]string{
		"--config":   configPath,
		"--listen":   listen,
		"--tls-cert": filepath.Join(dir, "tls.crt"),
		"--tls-key":  filepath.Join(dir, "tls.key"),
	})
	startInjector(t, append(args, "--vault-k8s-compat"), listen, serviceDNS, c.CAPEM())

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: vk8sAppsNamespace, Labels: map[string]string{injectionLabel: "enabled"}}}); err != nil {
		t.Fatal(err)
	}
	registerVaultK8sWebhook(ctx, t, c, base, listen)

	uid := int64(1000)
	pod := func(name string, ann map[string]string) *corev1.Pod {
		a := map[string]string{
			"vault.hashicorp.com/agent-inject": "true",
			"vault.hashicorp.com/role":         "internal-app",
		}
		for k, v := range ann {
			a[k] = v
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: vk8sAppsNamespace, Labels: map[string]string{"app": name}, Annotations: a},
			Spec: corev1.PodSpec{
				ServiceAccountName: "default",
				Containers: []corev1.Container{{
					Name: name, Image: "jweissig/app:0.0.1", Command: []string{"/app/" + name},
					SecurityContext: &corev1.SecurityContext{RunAsUser: &uid},
				}},
			},
		}
	}
	eventually(t, 30*time.Second, "the webhook injects vault-k8s pods", func() error {
		var out corev1.Pod
		probe := pod("probe", map[string]string{"vault.hashicorp.com/agent-inject-secret-x": "secret/data/x"})
		if err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+vk8sAppsNamespace+"/pods?dryRun=All", probe, &out); err != nil {
			return err
		}
		if out.Annotations[inject.AnnotationStatus] != inject.StatusInjected {
			return errString("pod admitted without injection")
		}
		return nil
	})

	type file struct{ path, template, mode string }
	defaultTmpl := func(p string) string { return strings.Replace(inject.DefaultVaultK8sTemplate, "%s", p, 1) }
	connTmpl := "{{- with secret \"internal/data/database/config\" -}}\npostgresql://{{ .Data.data.username }}:{{ .Data.data.password }}@postgres:5432/wizard\n{{- end -}}\n"
	injected := []struct {
		name  string
		ann   map[string]string
		files []file
		check func(t *testing.T, p *corev1.Pod, cfg *config.Config)
	}{
		{
			// "Inject secrets into the pod", the first example of the vault-k8s tutorial.
			name:  "orgchart",
			ann:   map[string]string{"vault.hashicorp.com/agent-inject-secret-database-config.txt": "internal/data/database/config"},
			files: []file{{"/vault/secrets/database-config.txt", defaultTmpl("internal/data/database/config"), "0400"}},
		},
		{
			// "Apply a template to the injected secrets", with outrider's own
			// annotations adding telemetry.
			name: "orgchart-template",
			ann: map[string]string{
				"vault.hashicorp.com/agent-inject-secret-database-config.txt":   "internal/data/database/config",
				"vault.hashicorp.com/agent-inject-template-database-config.txt": connTmpl,
				inject.AnnotationLogs: "/var/log/app/*.log",
			},
			files: []file{{"/vault/secrets/database-config.txt", connTmpl, "0400"}},
			check: func(t *testing.T, p *corev1.Pod, cfg *config.Config) {
				if len(cfg.Logs.Sources) != 1 || cfg.Exporters.Loki == nil {
					t.Errorf("outrider.dev/logs did not add log shipping: %+v", cfg.Logs.Sources)
				}
			},
		},
		{
			// A template file from a Secret (agent-extra-secret), mounted where
			// vault-k8s mounts it.
			name: "template-file",
			ann: map[string]string{
				"vault.hashicorp.com/agent-extra-secret":                             "orgchart-templates",
				"vault.hashicorp.com/agent-inject-template-file-database-config.txt": "/vault/custom/database-config.ctmpl",
			},
			files: []file{{"/vault/secrets/database-config.txt", "", "0400"}},
			check: func(t *testing.T, p *corev1.Pod, cfg *config.Config) {
				if f := cfg.Secrets.Files[0].TemplateFile; f != "/vault/custom/database-config.ctmpl" {
					t.Errorf("template_file = %q", f)
				}
				if m, ok := mountAt(p.Spec.InitContainers[0], inject.VaultK8sExtraSecretDir); !ok || !m.ReadOnly {
					t.Errorf("the sidecar does not mount the agent-extra-secret at %s", inject.VaultK8sExtraSecretDir)
				}
			},
		},
		{
			name: "perms-and-command",
			ann: map[string]string{
				"vault.hashicorp.com/agent-inject-secret-config":    "internal/data/database/config",
				"vault.hashicorp.com/agent-inject-file-config":      "app.ini",
				"vault.hashicorp.com/agent-inject-perms-config":     "0440",
				"vault.hashicorp.com/agent-inject-command-config":   "kill -HUP $(pidof perms-and-command)",
				"vault.hashicorp.com/agent-inject-default-template": "json",
			},
			files: []file{{"/vault/secrets/app.ini", strings.Replace(inject.DefaultVaultK8sJSONTemplate, "%s", "internal/data/database/config", 1), "0440"}},
			check: func(t *testing.T, p *corev1.Pod, cfg *config.Config) {
				if p.Spec.ShareProcessNamespace == nil || !*p.Spec.ShareProcessNamespace {
					t.Error("shareProcessNamespace is not set: the sidecar could not signal the app")
				}
				r := cfg.Secrets.Files[0].Reload
				if r == nil || r.Method != "signal" || r.Signal != "HUP" || r.Process != "perms-and-command" {
					t.Errorf("reload = %+v, want SIGHUP to perms-and-command", r)
				}
			},
		},
	}
	for _, tt := range injected {
		t.Run(tt.name, func(t *testing.T) {
			p := create(ctx, t, c, pod(tt.name, tt.ann))
			if p.Annotations[inject.AnnotationStatus] != inject.StatusInjected || p.Annotations["vault.hashicorp.com/agent-inject-status"] != inject.StatusInjected {
				t.Fatalf("pod not marked injected: %v", p.Annotations)
			}
			sc := p.Spec.InitContainers[0]
			if sc.Name != inject.SidecarName || sc.RestartPolicy == nil {
				t.Fatalf("first init container %s is not outrider's native sidecar", sc.Name)
			}
			checkContainerSecurity(t, sc)
			if m, ok := mountAt(p.Spec.Containers[0], inject.DefaultSecretsDir); !ok || !m.ReadOnly {
				t.Errorf("the app does not mount the secrets at %s: %+v", inject.DefaultSecretsDir, p.Spec.Containers[0].VolumeMounts)
			}
			cfg, err := config.Parse("pod", []byte(p.Annotations[inject.AnnotationConfig]))
			if err != nil {
				t.Fatalf("the stored configuration does not load: %v", err)
			}
			if a := cfg.Secrets.Vault.Auth; a.Method != "kubernetes" || a.Role != "internal-app" {
				t.Errorf("auth = %+v", a)
			}
			if len(cfg.Secrets.Files) != len(tt.files) {
				t.Fatalf("%d files, want %d", len(cfg.Secrets.Files), len(tt.files))
			}
			for i, f := range tt.files {
				got := cfg.Secrets.Files[i]
				if got.Path != f.path || got.Template != f.template || got.TemplateEngine != render.EngineConsulTemplate || got.Mode != f.mode {
					t.Errorf("files[%d] = %s %s %s %q, want %s consul-template %s %q", i, got.Path, got.TemplateEngine, got.Mode, got.Template, f.path, f.mode, f.template)
				}
			}
			if tt.check != nil {
				tt.check(t, p, cfg)
			}
		})
	}

	denied := []struct {
		name string
		ann  map[string]string
		want string
	}{
		{"template-file-from-configmap", map[string]string{
			"vault.hashicorp.com/agent-configmap":                       "orgchart-agent",
			"vault.hashicorp.com/agent-inject-template-file-config.txt": "/vault/configs/config.ctmpl",
		}, `vault.hashicorp.com/agent-inject-template-file-config.txt: "/vault/configs/config.ctmpl": outrider's sidecar holds template files only from vault.hashicorp.com/agent-extra-secret`},
		{"world-readable", map[string]string{
			"vault.hashicorp.com/agent-inject-secret-db": "internal/data/database/config",
			"vault.hashicorp.com/agent-inject-perms-db":  "0644",
		}, `"0644" gives access to other users`},
		{"shell-command", map[string]string{
			"vault.hashicorp.com/agent-inject-secret-db":  "internal/data/database/config",
			"vault.hashicorp.com/agent-inject-command-db": "sh -c 'curl -X POST localhost:8080/reload'",
		}, "outrider's sidecar has no shell"},
		{"token", map[string]string{
			"vault.hashicorp.com/agent-inject-secret-db": "internal/data/database/config",
			"vault.hashicorp.com/agent-inject-token":     "true",
		}, "never writes its Vault token"},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Create(ctx, pod(tt.name, tt.ann))
			if err == nil {
				t.Fatalf("the API server admitted the pod; want a denial saying %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "admission webhook") {
				t.Fatalf("denied with %v; want %q", err, tt.want)
			}
		})
	}
	if err := c.Delete(context.Background(), "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"+vk8sWebhookConfig); err != nil {
		t.Errorf("delete the webhook configuration: %v", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// registerVaultK8sWebhook registers deploy/base's webhook configuration for
// TestVaultK8sWebhook's namespace only.
func registerVaultK8sWebhook(ctx context.Context, t *testing.T, c *kubetest.Cluster, base *manifests, listen string) {
	t.Helper()
	_, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	convert(t, base.confineWebhooks(t, vk8sAppsNamespace).one(t, "MutatingWebhookConfiguration"), &mwc)
	mwc.Name = vk8sWebhookConfig
	for i := range mwc.Webhooks {
		svc := mwc.Webhooks[i].ClientConfig.Service
		svc.Namespace, svc.Name, svc.Port = vk8sInjectorNamespace, injectorName, ptrTo(int32(port))
		mwc.Webhooks[i].ClientConfig.CABundle = c.CAPEM()
	}
	if err := c.Create(ctx, &mwc); err != nil {
		t.Fatalf("register the webhook: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"+vk8sWebhookConfig)
	})
}
