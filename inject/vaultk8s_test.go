package inject

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/inject/internal/jsonpatch"
	"github.com/outrider-dev/outrider/secrets/render"
)

func vaultK8sDefaults() Defaults {
	d := testDefaults()
	d.VaultK8sCompat = true
	return d
}

// vaultK8sPod is the pod of the vault-k8s documentation's first example.
func vaultK8sPod(ann map[string]string) *corev1.Pod {
	a := map[string]string{
		VaultK8sInject:                                "true",
		VaultK8sPrefix + "role":                       "internal-app",
		VaultK8sSecretPrefix + "database-config.txt":  "internal/data/database/config",
		"app.kubernetes.io/managed-by-something-else": "x",
	}
	for k, v := range ann {
		if v == "-" {
			delete(a, k)
			continue
		}
		a[k] = v
	}
	uid := int64(1000)
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "orgchart", Namespace: "default", Annotations: a},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "orgchart", Image: "jweissig/app:0.0.1", Command: []string{"/app/orgchart"},
			SecurityContext: &corev1.SecurityContext{RunAsUser: &uid},
		}}},
	}
}

// injectVaultK8s injects pod and returns the patched pod and the configuration it
// carries, as the agent loads it.
func injectVaultK8s(t *testing.T, in *Injector, pod *corev1.Pod) (*corev1.Pod, *config.Config) {
	t.Helper()
	req := requestFor(t, pod)
	out, _ := applyPatch(t, in, req, in.Mutate(req))
	cfg, err := config.Parse(AnnotationConfig, []byte(out.Annotations[AnnotationConfig]))
	if err != nil {
		t.Fatalf("the configuration does not load: %v", err)
	}
	return out, cfg
}

func TestVaultK8sTranslation(t *testing.T) {
	mapTmpl := func(p string) string { return strings.Replace(DefaultVaultK8sTemplate, "%s", p, 1) }
	type file struct {
		path, template, mode string
		templateFile         string
		missingKeyError      bool
		reload               string // method:signal:process
	}
	tests := []struct {
		name  string
		ann   map[string]string
		pod   func(*corev1.Pod)
		files []file
		check func(t *testing.T, pod *corev1.Pod, cfg *config.Config)
	}{
		{
			name:  "secret with the default template",
			files: []file{{path: "/vault/secrets/database-config.txt", template: mapTmpl("internal/data/database/config")}},
			check: func(t *testing.T, pod *corev1.Pod, cfg *config.Config) {
				v := cfg.Secrets.Vault
				if v.Auth.Role != "internal-app" || v.Auth.Method != "kubernetes" || v.Address != "https://vault.vault.svc:8200" {
					t.Errorf("vault = %+v", v)
				}
				if pod.Annotations[VaultK8sStatus] != StatusInjected {
					t.Errorf("%s = %q, want injected (so that vault-k8s leaves the pod alone)", VaultK8sStatus, pod.Annotations[VaultK8sStatus])
				}
				var mounted bool
				for _, m := range pod.Spec.Containers[0].VolumeMounts {
					mounted = mounted || (m.Name == VolumeSecrets && m.MountPath == DefaultSecretsDir)
				}
				if !mounted {
					t.Errorf("the app does not mount the secrets at %s: %+v", DefaultSecretsDir, pod.Spec.Containers[0].VolumeMounts)
				}
			},
		},
		{
			name:  "json default template",
			ann:   map[string]string{VaultK8sDefaultTemplate: "json"},
			files: []file{{path: "/vault/secrets/database-config.txt", template: strings.Replace(DefaultVaultK8sJSONTemplate, "%s", "internal/data/database/config", 1)}},
		},
		{
			name: "secret and template for one file, file name, perms, missing key",
			ann: map[string]string{
				VaultK8sSecretPrefix + "DB":                  "database/creds/db-app",
				VaultK8sTemplatePrefix + "DB":                `{{ with secret "database/creds/db-app" }}{{ .Data.username }}{{ end }}`,
				VaultK8sFilePrefix + "DB":                    "db.conf",
				VaultK8sPermsPrefix + "DB":                   "0440",
				VaultK8sErrorOnMissingKeyPrefix + "DB":       "true",
				VaultK8sSecretPrefix + "database-config.txt": "-",
			},
			files: []file{{path: "/vault/secrets/db.conf", template: `{{ with secret "database/creds/db-app" }}{{ .Data.username }}{{ end }}`, mode: "0440", missingKeyError: true}},
		},
		{
			name:  "names are lowered unless preserved",
			ann:   map[string]string{VaultK8sSecretPrefix + "API-Key": "secret/data/api", VaultK8sPreserveSecretCase + "-API-Key": "true", VaultK8sSecretPrefix + "Other": "secret/data/other", VaultK8sSecretPrefix + "database-config.txt": "-"},
			files: []file{{path: "/vault/secrets/API-Key", template: mapTmpl("secret/data/api")}, {path: "/vault/secrets/other", template: mapTmpl("secret/data/other")}},
		},
		{
			name:  "template without a secret annotation",
			ann:   map[string]string{VaultK8sTemplatePrefix + "cfg": `{{ with secret "secret/data/x" }}{{ .Data.data.a | toJSON }}{{ end }}`, VaultK8sSecretPrefix + "database-config.txt": "-"},
			files: []file{{path: "/vault/secrets/cfg", template: `{{ with secret "secret/data/x" }}{{ .Data.data.a | toJSON }}{{ end }}`}},
		},
		{
			name:  "command becomes a signal reload",
			ann:   map[string]string{VaultK8sCommandPrefix + "database-config.txt": "kill -HUP $(pidof orgchart)"},
			files: []file{{path: "/vault/secrets/database-config.txt", template: mapTmpl("internal/data/database/config"), reload: "signal:HUP:orgchart"}},
			check: func(t *testing.T, pod *corev1.Pod, cfg *config.Config) {
				if pod.Spec.ShareProcessNamespace == nil || !*pod.Spec.ShareProcessNamespace {
					t.Error("shareProcessNamespace is not set; the sidecar cannot signal the app")
				}
			},
		},
		{
			name: "pod-level settings",
			ann: map[string]string{
				VaultK8sPrefix + "auth-path":                              "auth/k8s-prod",
				VaultK8sPrefix + "namespace":                              "team-a",
				VaultK8sPrefix + "service":                                "https://vault.example:8200",
				VaultK8sPrefix + "tls-secret":                             "vault-tls",
				VaultK8sPrefix + "ca-cert":                                "/vault/tls/ca.pem",
				VaultK8sPrefix + "tls-server-name":                        "vault.internal",
				VaultK8sSecretVolumePath:                                  "/etc/secrets",
				VaultK8sPrefix + "agent-limits-mem":                       "256Mi",
				VaultK8sPrefix + "agent-requests-cpu":                     "50m",
				VaultK8sPrefix + "client-timeout":                         "90s",
				VaultK8sPrefix + "template-static-secret-render-interval": "2m",
				VaultK8sPrefix + "agent-pre-populate-only":                "true",
				VaultK8sPrefix + "agent-init-first":                       "true",
				VaultK8sPrefix + "agent-image":                            "hashicorp/vault:1.18",
				VaultK8sPrefix + "agent-run-as-same-user":                 "true",
				VaultK8sPrefix + "log-level":                              "trace",
			},
			files: []file{{path: "/etc/secrets/database-config.txt", template: mapTmpl("internal/data/database/config")}},
			check: func(t *testing.T, pod *corev1.Pod, cfg *config.Config) {
				v := cfg.Secrets.Vault
				if v.Auth.MountPath != "k8s-prod" || v.Namespace != "team-a" || v.Address != "https://vault.example:8200" {
					t.Errorf("vault = %+v", v)
				}
				if v.TLS.ServerName != "vault.internal" || v.Timeout.String() != "1m30s" {
					t.Errorf("vault tls/timeout = %+v %s", v.TLS, v.Timeout)
				}
				if cfg.Secrets.PollInterval.String() != "2m0s" || cfg.Log.Level != "debug" {
					t.Errorf("poll %s, log level %q", cfg.Secrets.PollInterval, cfg.Log.Level)
				}
				sc := pod.Spec.InitContainers[0]
				var ca string
				for _, e := range sc.Env {
					if e.Name == "VAULT_CACERT" {
						ca = e.Value
					}
				}
				if ca != "/vault/tls/ca.pem" {
					t.Errorf("VAULT_CACERT = %q, want the ca-cert /vault/tls/ca.pem", ca)
				}
				if sc.Name != SidecarName || sc.Resources.Limits.Memory().String() != "256Mi" || sc.Resources.Requests.Cpu().String() != "50m" {
					t.Errorf("sidecar %s resources %+v", sc.Name, sc.Resources)
				}
				if *sc.SecurityContext.RunAsUser != 1000 {
					t.Errorf("sidecar runs as %d, want the app's 1000", *sc.SecurityContext.RunAsUser)
				}
				var tls bool
				for _, vol := range pod.Spec.Volumes {
					tls = tls || (vol.Secret != nil && vol.Secret.SecretName == "vault-tls")
				}
				if !tls {
					t.Error("the tls-secret is not mounted")
				}
			},
		},
		{
			name:  "template file from agent-extra-secret",
			ann:   map[string]string{VaultK8sPrefix + "agent-extra-secret": "orgchart-templates", VaultK8sTemplateFilePrefix + "database-config.txt": "/vault/custom/db.ctmpl"},
			files: []file{{path: "/vault/secrets/database-config.txt", templateFile: "/vault/custom/db.ctmpl"}},
			check: func(t *testing.T, pod *corev1.Pod, cfg *config.Config) {
				var vol bool
				for _, v := range pod.Spec.Volumes {
					vol = vol || (v.Name == VolumeVaultK8sExtraSecret && v.Secret != nil && v.Secret.SecretName == "orgchart-templates")
				}
				var mounted bool
				for _, m := range pod.Spec.InitContainers[0].VolumeMounts {
					mounted = mounted || (m.Name == VolumeVaultK8sExtraSecret && m.MountPath == VaultK8sExtraSecretDir && m.ReadOnly)
				}
				if !vol || !mounted {
					t.Errorf("the agent-extra-secret is not mounted at %s in the sidecar (volume %v, mount %v)", VaultK8sExtraSecretDir, vol, mounted)
				}
			},
		},
		{
			name:  "a file's own volume path",
			ann:   map[string]string{VaultK8sSecretVolumePath + "-database-config.txt": "/etc/db"},
			files: []file{{path: "/vault/secrets/database-config.txt", template: mapTmpl("internal/data/database/config")}},
			check: func(t *testing.T, pod *corev1.Pod, cfg *config.Config) {
				var at []string
				for _, m := range pod.Spec.Containers[0].VolumeMounts {
					if m.Name == VolumeSecrets && m.ReadOnly {
						at = append(at, m.MountPath)
					}
				}
				if strings.Join(at, ",") != "/vault/secrets,/etc/db" {
					t.Errorf("the app mounts the secrets at %v, want /vault/secrets and /etc/db (as vault-k8s mounts them)", at)
				}
			},
		},
		{
			name:  "outrider's own annotations add telemetry",
			ann:   map[string]string{AnnotationLogs: "/var/log/app/*.log", AnnotationService: "orgchart"},
			files: []file{{path: "/vault/secrets/database-config.txt", template: mapTmpl("internal/data/database/config")}},
			check: func(t *testing.T, pod *corev1.Pod, cfg *config.Config) {
				if len(cfg.Logs.Sources) != 1 || cfg.Exporters.Loki == nil || cfg.Exporters.OTLP == nil {
					t.Errorf("telemetry is not configured: logs %+v", cfg.Logs.Sources)
				}
			},
		},
	}
	in := newTestInjector(t, vaultK8sDefaults())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := vaultK8sPod(tt.ann)
			if tt.pod != nil {
				tt.pod(pod)
			}
			out, cfg := injectVaultK8s(t, in, pod)
			if len(cfg.Secrets.Files) != len(tt.files) {
				t.Fatalf("%d files, want %d: %+v", len(cfg.Secrets.Files), len(tt.files), cfg.Secrets.Files)
			}
			for i, want := range tt.files {
				got := cfg.Secrets.Files[i]
				if got.Path != want.path || got.Template != want.template || got.TemplateFile != want.templateFile || got.TemplateEngine != render.EngineConsulTemplate {
					t.Errorf("files[%d] = %s %q (%s), want %s %q (consul-template)", i, got.Path, got.Template, got.TemplateEngine, want.path, want.template)
				}
				if want.mode == "" {
					want.mode = render.DefaultMode
				}
				if got.Mode != want.mode || *got.ErrorOnMissingKey != want.missingKeyError {
					t.Errorf("files[%d] mode %s error_on_missing_key %v, want %s %v", i, got.Mode, *got.ErrorOnMissingKey, want.mode, want.missingKeyError)
				}
				var reload string
				if got.Reload != nil && got.Reload.Method != "none" {
					reload = got.Reload.Method + ":" + got.Reload.Signal + ":" + got.Reload.Process
				}
				if reload != want.reload {
					t.Errorf("files[%d] reload %q, want %q", i, reload, want.reload)
				}
			}
			if tt.check != nil {
				tt.check(t, out, cfg)
			}
		})
	}
}

func TestVaultK8sDenied(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		pod  func(*corev1.Pod)
		want string
	}{
		{"template file without extra secret", map[string]string{VaultK8sTemplateFilePrefix + "x": "/vault/configs/x.ctmpl"}, nil, VaultK8sTemplateFilePrefix + `x: "/vault/configs/x.ctmpl": outrider's sidecar holds template files only from ` + VaultK8sPrefix + "agent-extra-secret"},
		{"template file outside the extra secret", map[string]string{VaultK8sTemplateFilePrefix + "x": "/vault/configs/x.ctmpl", VaultK8sPrefix + "agent-extra-secret": "tmpl"}, nil, `"/vault/configs/x.ctmpl" must be a key of the agent-extra-secret tmpl, mounted at /vault/custom`},
		{"extra secret over the secrets directory", map[string]string{VaultK8sTemplateFilePrefix + "x": "/vault/custom/x.ctmpl", VaultK8sPrefix + "agent-extra-secret": "tmpl", VaultK8sSecretVolumePath: "/vault/custom/s"}, nil, "overlaps the secrets directory /vault/custom/s"},
		{"agent configmap", map[string]string{VaultK8sPrefix + "agent-configmap": "my-agent"}, nil, VaultK8sPrefix + "agent-configmap: a Vault Agent configuration (HCL)"},
		{"world-readable perms", map[string]string{VaultK8sPermsPrefix + "database-config.txt": "0644"}, nil, VaultK8sPermsPrefix + `database-config.txt: "0644" gives access to other users`},
		{"shell command", map[string]string{VaultK8sCommandPrefix + "database-config.txt": "sh -c 'touch /tmp/x'"}, nil, "outrider's sidecar has no shell"},
		{"token", map[string]string{VaultK8sPrefix + "agent-inject-token": "true"}, nil, "never writes its Vault token"},
		{"cache", map[string]string{VaultK8sPrefix + "agent-cache-enable": "true"}, nil, "no Vault proxy or cache"},
		{"approle", map[string]string{VaultK8sPrefix + "auth-type": "approle"}, nil, VaultK8sPrefix + `auth-type: "approle": outrider logs in with the pod's service-account token`},
		{"ca-cert without tls-secret", map[string]string{VaultK8sPrefix + "ca-cert": "/etc/ssl/vault.pem"}, nil, "put it in a Secret"},
		{"tls-secret without ca-cert", map[string]string{VaultK8sPrefix + "tls-secret": "vault-tls"}, nil, VaultK8sPrefix + "tls-secret: set " + VaultK8sPrefix + "ca-cert"},
		{"file in a subdirectory", map[string]string{VaultK8sFilePrefix + "database-config.txt": "conf/db.txt"}, nil, `the file name "conf/db.txt" cannot be written`},
		{"nested volume path", map[string]string{VaultK8sSecretVolumePath + "-database-config.txt": "/vault/secrets/db"}, nil, `"/vault/secrets/db" is nested with the secrets directory /vault/secrets`},
		{"volume path over a mount", map[string]string{VaultK8sSecretVolumePath + "-database-config.txt": "/etc/db"}, func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/db"}}
			p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, `container "orgchart" already mounts volume "cfg" at /etc/db`},
		{"unknown annotation", map[string]string{VaultK8sPrefix + "agent-inject-secrets-x": "y"}, nil, "unknown or unsupported vault-k8s annotation"},
		{"orphan attribute", map[string]string{VaultK8sFilePrefix + "nope": "x"}, nil, "there is no " + VaultK8sSecretPrefix + "nope"},
		{"two files one name", map[string]string{VaultK8sSecretPrefix + "DATABASE-CONFIG.TXT": "a/b"}, nil, "writes the file database-config.txt"},
		{"run as another user", map[string]string{VaultK8sPrefix + "agent-run-as-user": "100"}, nil, VaultK8sPrefix + `agent-run-as-user: "100": outrider runs its sidecar as 1000`},
		{"same user without runAsUser", map[string]string{VaultK8sPrefix + "agent-run-as-same-user": "true"}, func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext = nil }, "needs a non-root runAsUser"},
		{"pre-populate-only classic", map[string]string{VaultK8sPrefix + "agent-pre-populate-only": "true", AnnotationSidecarMode: ModeClassic}, nil, "a Job never completes"},
		{"status update", map[string]string{VaultK8sStatus: "update"}, nil, VaultK8sStatus + `: "update": outrider injects a pod once`},
		{"template syntax", map[string]string{VaultK8sTemplatePrefix + "database-config.txt": "{{ with secret \"x\" }}{{ key \"a\" }}{{ end }}"}, nil, VaultK8sTemplatePrefix + "database-config.txt: the sidecar's configuration would be invalid"},
		{"consul function", map[string]string{VaultK8sTemplatePrefix + "database-config.txt": "{{ key \"a\" }}"}, nil, "function key reads Consul"},
		{"role conflicts", map[string]string{AnnotationRole: "other"}, nil, VaultK8sPrefix + `role: "internal-app" disagrees with ` + AnnotationRole},
		{"inject conflicts", map[string]string{AnnotationInject: "false"}, nil, VaultK8sInject + `: "true" disagrees with ` + AnnotationInject},
		{"no role", map[string]string{VaultK8sPrefix + "role": "-"}, nil, AnnotationRole + ": required with secrets"},
		{"bad duration", map[string]string{VaultK8sPrefix + "client-timeout": "soon"}, nil, VaultK8sPrefix + `client-timeout: "soon" is not a duration`},
		{"memory limit too small, blamed on the vault annotation", map[string]string{VaultK8sPrefix + "agent-limits-mem": "16Mi"}, nil, VaultK8sPrefix + "agent-limits-mem (read as " + AnnotationMemoryLimit + "): 16Mi is too small"},
	}
	in := newTestInjector(t, vaultK8sDefaults())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := vaultK8sPod(tt.ann)
			if tt.pod != nil {
				tt.pod(pod)
			}
			resp := in.Mutate(requestFor(t, pod))
			if resp.Allowed {
				t.Fatalf("allowed; want a denial containing %q (patch %s)", tt.want, resp.Patch)
			}
			if !strings.Contains(resp.Result.Message, tt.want) {
				t.Fatalf("denied with\n%s\nwant %q", resp.Result.Message, tt.want)
			}
		})
	}
}

// TestVaultK8sOffByDefault checks that without --vault-k8s-compat a vault-k8s pod is
// left alone, and that with it a pod vault-k8s injected already is too.
func TestVaultK8sOffByDefault(t *testing.T) {
	off := newTestInjector(t, testDefaults())
	if resp := off.Mutate(requestFor(t, vaultK8sPod(nil))); !resp.Allowed || resp.Patch != nil {
		t.Fatalf("without compatibility: allowed=%v patch=%s", resp.Allowed, resp.Patch)
	}
	on := newTestInjector(t, vaultK8sDefaults())
	if resp := on.Mutate(requestFor(t, vaultK8sPod(map[string]string{VaultK8sStatus: StatusInjected}))); !resp.Allowed || resp.Patch != nil {
		t.Fatalf("injected by vault-k8s already: allowed=%v patch=%s", resp.Allowed, resp.Patch)
	}
	if resp := on.Mutate(requestFor(t, vaultK8sPod(map[string]string{VaultK8sInject: "false"}))); !resp.Allowed || resp.Patch != nil {
		t.Fatalf("agent-inject false: allowed=%v patch=%s", resp.Allowed, resp.Patch)
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct{ cmd, signal, process string }{
		{"kill -HUP $(pidof nginx)", "HUP", "nginx"},
		{"kill -s TERM $( pidof app.bin )", "TERM", "app.bin"},
		{"kill -1 `pidof web`", "1", "web"},
		{"pkill -SIGUSR1 envoy", "SIGUSR1", "envoy"},
		{"killall -HUP haproxy", "HUP", "haproxy"},
		{"kill -HUP 1", "", ""},
		{"kill -HUP $(pidof nginx); rm -rf /", "", ""},
		{"sh -c 'kill -HUP $(pidof nginx)'", "HUP", "nginx"},
		{`/bin/sh -c "pkill -USR2 app"`, "USR2", "app"},
		{"sh -c 'kill -HUP $(pidof nginx) && curl x'", "", ""},
		{"touch /vault/secrets/.changed", "", ""},
	}
	for _, tt := range tests {
		r, msg := parseCommand(tt.cmd)
		if tt.signal == "" {
			if r != nil || msg == "" {
				t.Errorf("%q: accepted as %+v", tt.cmd, r)
			}
			continue
		}
		if r == nil || r.Signal != tt.signal || r.Process != tt.process {
			t.Errorf("%q: got %+v (%s), want %s to %s", tt.cmd, r, msg, tt.signal, tt.process)
		}
	}
}

// FuzzVaultK8sAnnotations runs Mutate in compatibility mode on pods with arbitrary
// vault-k8s annotations: never a panic, every problem names an annotation, and an
// injected pod's configuration loads.
func FuzzVaultK8sAnnotations(f *testing.F) {
	f.Add("agent-inject=true\x1erole=r\x1eagent-inject-secret-a=secret/data/a")
	f.Add("agent-inject=true\x1erole=r\x1eagent-inject-template-b={{ with secret \"x\" }}{{ .Data | toJSON }}{{ end }}\x1eagent-inject-command-b=pkill -HUP app")
	f.Add("agent-inject=1\x1eauth-config-role=r\x1eagent-inject-secret-A=x/y\x1epreserve-secret-case=true\x1eagent-inject-file-A=a.b")
	f.Add("agent-inject=true\x1etls-secret=t\x1eca-cert=/vault/tls/ca.crt\x1erole=r\x1eagent-inject-secret-c=p")
	in := newTestInjector(f, vaultK8sDefaults())
	f.Fuzz(func(t *testing.T, annotations string) {
		ann := map[string]string{}
		for _, kv := range strings.Split(annotations, "\x1e") {
			k, v, _ := strings.Cut(kv, "=")
			ann[VaultK8sPrefix+k] = v
		}
		pod := vaultK8sPod(nil)
		pod.Annotations = ann
		req := requestFor(t, pod)
		resp := in.Mutate(req)
		if !resp.Allowed {
			msg := strings.TrimPrefix(resp.Result.Message, "outrider: ")
			lines := []string{msg}
			if strings.Contains(msg, " problems:\n- ") {
				lines = strings.Split(msg, "\n- ")[1:]
			}
			for _, l := range lines {
				if !(strings.HasPrefix(l, Prefix) || strings.HasPrefix(l, VaultK8sPrefix)) || !strings.Contains(l, ": ") {
					t.Fatalf("a problem does not start with an annotation: %q", l)
				}
			}
			return
		}
		if resp.Patch == nil {
			return
		}
		patched, err := jsonpatch.Apply(req.Object.Raw, resp.Patch)
		if err != nil {
			t.Fatalf("the patch does not apply: %v", err)
		}
		var out corev1.Pod
		if err := json.Unmarshal(patched, &out); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(AnnotationConfig, []byte(out.Annotations[AnnotationConfig])); err != nil {
			t.Fatalf("the delivered configuration does not load: %v", err)
		}
	})
}
