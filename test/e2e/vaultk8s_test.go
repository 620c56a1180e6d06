package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// TestVaultK8sEndToEnd injects the pods of the vault-k8s tutorial ("Injecting Secrets
// into Kubernetes Pods via Vault Agent Containers") with the injector in vault-k8s
// compatibility mode, runs the real agent binary with the configuration the injector
// generated (only the paths moved under a temporary directory, and the login made
// with a token since there is no Kubernetes here) against a real Vault holding the
// tutorial's secret, and checks every rendered file byte for byte against what the
// tutorial says Vault Agent writes. A new version of the secret is rendered again,
// and its values, logged by the app, reach Loki scrubbed.
func TestVaultK8sEndToEnd(t *testing.T) {
	loki := sharedLoki(t)
	ctx := context.Background()
	vctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := vaulttest.Start(vctx, t.TempDir())
	if err != nil {
		t.Fatalf("real Vault is required: %v", err)
	}
	t.Cleanup(v.Stop)
	// vault secrets enable -path=internal kv-v2
	if err := v.Client.Sys().Mount("internal", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	// vault kv put internal/database/config username="db-readonly-user" password="db-secret-password"
	put := func(user, pw string) {
		t.Helper()
		if _, err := v.Client.KVv2("internal").Put(ctx, "database/config", map[string]any{"username": user, "password": pw}); err != nil {
			t.Fatal(err)
		}
	}
	put("db-readonly-user", "db-secret-password")

	in, err := inject.NewInjector(inject.Defaults{Image: "outrider:e2e", VaultAddr: v.Addr, LokiURL: loki.URL, VaultK8sCompat: true})
	if err != nil {
		t.Fatal(err)
	}
	const connTemplate = "{{- with secret \"internal/data/database/config\" -}}\npostgresql://{{ .Data.data.username }}:{{ .Data.data.password }}@postgres:5432/wizard\n{{- end -}}\n"
	pods := map[string]map[string]string{
		// patch-inject-secrets.yaml
		"orgchart": {
			"vault.hashicorp.com/agent-inject":                            "true",
			"vault.hashicorp.com/role":                                    "internal-app",
			"vault.hashicorp.com/agent-inject-secret-database-config.txt": "internal/data/database/config",
			"vault.hashicorp.com/template-static-secret-render-interval":  "1s",
			inject.AnnotationLogs:                                         "/var/log/app/*.log",
		},
		// patch-inject-secrets-as-template.yaml
		"orgchart-template": {
			"vault.hashicorp.com/agent-inject":                              "true",
			"vault.hashicorp.com/agent-inject-status":                       "update",
			"vault.hashicorp.com/role":                                      "internal-app",
			"vault.hashicorp.com/agent-inject-secret-database-config.txt":   "internal/data/database/config",
			"vault.hashicorp.com/agent-inject-template-database-config.txt": connTemplate,
		},
		// A template file from a Secret, mounted where vault-k8s mounts it.
		"orgchart-file": {
			"vault.hashicorp.com/agent-inject":                                   "true",
			"vault.hashicorp.com/role":                                           "internal-app",
			"vault.hashicorp.com/agent-extra-secret":                             "orgchart-templates",
			"vault.hashicorp.com/agent-inject-template-file-database-config.txt": "/vault/custom/database-config.ctmpl",
		},
		// The json default template, with a file name and permissions.
		"orgchart-json": {
			"vault.hashicorp.com/agent-inject":                  "true",
			"vault.hashicorp.com/role":                          "internal-app",
			"vault.hashicorp.com/agent-inject-secret-db":        "internal/data/database/config",
			"vault.hashicorp.com/agent-inject-file-db":          "db.json",
			"vault.hashicorp.com/agent-inject-perms-db":         "0440",
			"vault.hashicorp.com/agent-inject-default-template": "json",
		},
	}
	// The tutorial's second pod carries agent-inject-status: update, which outrider
	// refuses (it injects once, at creation): its reason is checked, then it is
	// removed to run the pod.
	if resp := in.Mutate(podReview(t, "orgchart-template", pods["orgchart-template"])); resp.Allowed || !strings.Contains(resp.Result.Message, "outrider injects a pod once") {
		t.Fatalf("agent-inject-status: update: allowed=%v %v", resp.Allowed, resp.Result)
	}
	delete(pods["orgchart-template"], "vault.hashicorp.com/agent-inject-status")

	tokenFile := filepath.Join(t.TempDir(), "vault-token")
	writeFile(t, tokenFile, v.RootToken)
	type run struct {
		dir   string
		agent *agentProc
	}
	runs := map[string]run{}
	for name, ann := range pods {
		resp := in.Mutate(podReview(t, name, ann))
		if !resp.Allowed {
			t.Fatalf("%s denied: %s", name, resp.Result.Message)
		}
		cfg := configFromPatch(t, resp.Patch)
		dir := t.TempDir()
		for _, d := range []string{"secrets", "logs", "data", "custom"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// The Secret orgchart-templates, as its volume shows it.
		writeFile(t, filepath.Join(dir, "custom", "database-config.ctmpl"), connTemplate)
		cfgPath := filepath.Join(dir, "outrider.yaml")
		writeFile(t, cfgPath, localConfig(t, cfg, dir, tokenFile))
		runs[name] = run{dir: dir, agent: startAgent(t, cfgPath)}
	}

	raw, err := v.Client.Logical().Read("internal/data/database/config")
	if err != nil {
		t.Fatal(err)
	}
	meta := raw.Data["metadata"].(map[string]any)
	// The file of the tutorial's first example: "data: map[…]" and "metadata: map[…]".
	wantMap := fmt.Sprintf("data: map[password:db-secret-password username:db-readonly-user]\nmetadata: map[created_time:%s custom_metadata:<nil> deletion_time: destroyed:false version:1]\n", meta["created_time"])
	wantJSON, err := json.Marshal(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		pod, file, want string
		mode            os.FileMode
	}{
		{"orgchart", "database-config.txt", wantMap, 0o400},
		{"orgchart-template", "database-config.txt", "postgresql://db-readonly-user:db-secret-password@postgres:5432/wizard", 0o400},
		{"orgchart-file", "database-config.txt", "postgresql://db-readonly-user:db-secret-password@postgres:5432/wizard", 0o400},
		{"orgchart-json", "db.json", string(wantJSON) + "\n", 0o440},
	}
	for _, f := range files {
		path := filepath.Join(runs[f.pod].dir, "secrets", f.file)
		waitFor(t, 30*time.Second, f.pod+"'s "+f.file, func() bool { _, err := os.Stat(path); return err == nil })
		got := mustReadFile(t, path)
		if string(got) != f.want {
			t.Errorf("%s: %s =\n%q\nwant (as Vault Agent writes it)\n%q", f.pod, f.file, got, f.want)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != f.mode {
			t.Errorf("%s: %s has mode %v, want %v", f.pod, f.file, st.Mode().Perm(), f.mode)
		}
	}

	// A new version is rendered within the render interval, and its values, logged by
	// the app, leave the pod scrubbed.
	start := time.Now().Add(-time.Minute)
	put("db-readonly-user", "db-rotated-password-5c1e")
	mapFile := filepath.Join(runs["orgchart"].dir, "secrets", "database-config.txt")
	waitFor(t, 15*time.Second, "version 2 rendered", func() bool {
		return strings.Contains(string(mustReadFile(t, mapFile)), "password:db-rotated-password-5c1e") && strings.Contains(string(mustReadFile(t, mapFile)), "version:2")
	})
	w := openAppend(t, filepath.Join(runs["orgchart"].dir, "logs", "app.log"))
	w.line(`{"time":%q,"level":"error","msg":"login failed with password db-rotated-password-5c1e, was db-secret-password"}`, time.Now().UTC().Format(time.RFC3339Nano))
	w.flush()
	entries, err := loki.WaitCount(ctx, `{service="orgchart", source="app"}`, start, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Line, "db-rotated-password") || strings.Contains(e.Line, "db-secret-password") || !strings.Contains(e.Line, "[REDACTED]") {
			t.Errorf("a secret value reached Loki unscrubbed: %s", e.Line)
		}
	}
	for name, r := range runs {
		if err := r.agent.stop(30 * time.Second); err != nil {
			t.Errorf("%s: agent exit after SIGTERM: %v", name, err)
		}
	}
}

// podReview is the admission request for a pod of the tutorial's orgchart
// Deployment with the given annotations.
func podReview(t *testing.T, name string, ann map[string]string) *admissionv1.AdmissionRequest {
	t.Helper()
	a := map[string]string{}
	for k, v := range ann {
		a[k] = v
	}
	uid := int64(os.Getuid())
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "orgchart"}, Annotations: a},
		Spec: corev1.PodSpec{
			ServiceAccountName: "internal-app",
			Containers: []corev1.Container{{
				Name: "orgchart", Image: "jweissig/app:0.0.1",
				SecurityContext: &corev1.SecurityContext{RunAsUser: &uid},
			}},
		},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionRequest{
		UID:       types.UID("e2e-" + name),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "default",
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}
}

// configFromPatch returns the sidecar configuration a patch writes into the pod's
// outrider.dev/config annotation.
func configFromPatch(t *testing.T, patch []byte) map[string]any {
	t.Helper()
	var ops []struct {
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		var text string
		switch op.Path {
		case "/metadata/annotations/outrider.dev~1config":
			if err := json.Unmarshal(op.Value, &text); err != nil {
				t.Fatal(err)
			}
		case "/metadata/annotations":
			var m map[string]string
			if err := json.Unmarshal(op.Value, &m); err != nil {
				t.Fatal(err)
			}
			text = m[inject.AnnotationConfig]
		default:
			continue
		}
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Fatalf("the patch writes no %s", inject.AnnotationConfig)
	return nil
}

// localConfig turns a generated sidecar configuration into one that runs here: the
// pod's directories (and the agent-extra-secret's) moved under dir, the agent's port chosen by the kernel, and the
// login to Vault made with a token (there is no Kubernetes to log in with). Every
// file, template and setting of the injector is kept as it is.
func localConfig(t *testing.T, cfg map[string]any, dir, tokenFile string) string {
	t.Helper()
	cfg["data_dir"] = filepath.Join(dir, "data")
	cfg["server"] = map[string]any{"listen": "127.0.0.1:0", "shutdown_timeout": "15s"}
	sec := cfg["secrets"].(map[string]any)
	vault := sec["vault"].(map[string]any)
	vault["auth"] = map[string]any{"method": "token", "token_file": tokenFile}
	for _, f := range sec["files"].([]any) {
		m := f.(map[string]any)
		m["path"] = strings.Replace(m["path"].(string), inject.DefaultSecretsDir, filepath.Join(dir, "secrets"), 1)
		if tf, ok := m["template_file"].(string); ok {
			m["template_file"] = strings.Replace(tf, inject.VaultK8sExtraSecretDir, filepath.Join(dir, "custom"), 1)
		}
	}
	if logs, ok := cfg["logs"].(map[string]any); ok {
		for _, s := range logs["sources"].([]any) {
			m := s.(map[string]any)
			m["path"] = strings.Replace(m["path"].(string), "/var/log/app", filepath.Join(dir, "logs"), 1)
		}
	}
	if recv, ok := cfg["receivers"].(map[string]any); ok {
		if otlp, ok := recv["otlp"].(map[string]any); ok {
			otlp["grpc"] = map[string]any{"listen": "127.0.0.1:0"}
			otlp["http"] = map[string]any{"listen": "127.0.0.1:0"}
		}
	}
	if exp, ok := cfg["exporters"].(map[string]any); ok {
		if l, ok := exp["loki"].(map[string]any); ok {
			l["batch"] = map[string]any{"max_wait": "200ms"}
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
