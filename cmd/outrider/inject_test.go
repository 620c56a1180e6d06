package main

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject"
)

func TestInjectCommand(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown flag", []string{"inject", "--nope"}, 2, "flag provided but not defined"},
		{"argument", []string{"inject", "serve"}, 2, `unexpected argument "serve"`},
		{"bad default", []string{"inject", "--loki-url", "loki:3100"}, 2, "loki_url (--loki-url)"},
		{"bad mode", []string{"inject", "--sidecar-mode", "x"}, 2, "sidecar_mode: must be"},
		{"bad config file", []string{"inject", "--config", write("bad.yaml", "imagee: x\n")}, 2, "field imagee not found"},
		{"config file then flag", []string{"inject", "--config", write("ok.yaml", "loki_url: ftp://x\n"), "--loki-url", "http://loki:3100", "--log-level", "loud"}, 2, "--log-level must be"},
		{"missing certificate", []string{"inject", "--tls-cert", filepath.Join(dir, "nope.crt"), "--tls-key", filepath.Join(dir, "nope.key"), "--listen", "127.0.0.1:0"}, 1, "nope.crt"},
		{"self-signed without dir", []string{"inject", "--self-signed", "--namespace", "ns"}, 2, "--out-dir"},
		{"ca-secret outside a cluster", []string{"inject", "--self-signed", "--namespace", "ns", "--out-dir", certs, "--ca-secret", "ca"}, 2, "not running in a cluster"},
		{"ca-secret renewal window", []string{"inject", "--self-signed", "--namespace", "ns", "--out-dir", certs, "--ca-secret", "ca", "--ca-validity", "720h", "--ca-renew-before", "720h"}, 2, "--ca-validity"},
		{"self-signed outside a cluster", []string{"inject", "--self-signed", "--namespace", "ns", "--out-dir", certs, "--webhook-config", "outrider"}, 2, "not running in a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, stderr.String(), tt.code, tt.stderr)
			}
		})
	}
}

func TestInjectSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	args := []string{"inject", "--self-signed", "--service", "outrider-injector", "--namespace", "outrider", "--out-dir", dir, "--extra-names", "127.0.0.1, localhost"}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	bundle, err := base64.StdEncoding.DecodeString(strings.TrimSpace(stdout.String()))
	if err != nil {
		t.Fatalf("stdout is not base64: %v", err)
	}
	if b, _ := pem.Decode(bundle); b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("the caBundle is not a PEM certificate: %q", bundle)
	}
	ca, err := os.ReadFile(filepath.Join(dir, inject.CAFileName))
	if err != nil || !bytes.Equal(ca, bundle) {
		t.Errorf("ca.crt differs from the printed caBundle (%v)", err)
	}
	var again bytes.Buffer
	stderr.Reset()
	if code := run(args, &again, &stderr); code != exitOK || again.String() != stdout.String() || !strings.Contains(stderr.String(), "kept the certificates") {
		t.Errorf("second run: exit %d, %q; want the same CA kept", code, stderr.String())
	}
}

// TestInjectFlagsCoverDefaults checks that every field of inject.Defaults has a flag
// named after its YAML key and that a flag on the command line overrides the --config
// file for each of them.
func TestInjectFlagsCoverDefaults(t *testing.T) {
	var f injectFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f.register(fs)
	var d inject.Defaults
	copies := overrides(&d, &f.defaults)
	typ := reflect.TypeOf(d)
	for i := 0; i < typ.NumField(); i++ {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		name := strings.ReplaceAll(key, "_", "-")
		if fs.Lookup(name) == nil {
			t.Errorf("Defaults.%s (%s) has no flag --%s", typ.Field(i).Name, key, name)
			continue
		}
		copyField, ok := copies[name]
		if !ok {
			t.Errorf("--%s does not override the --config file", name)
			continue
		}
		switch fv := reflect.ValueOf(&f.defaults).Elem().Field(i); fv.Kind() {
		case reflect.String:
			fv.SetString("from-flag")
		case reflect.Int:
			fv.SetInt(7)
		}
		copyField()
		if got, want := reflect.ValueOf(d).Field(i).Interface(), reflect.ValueOf(f.defaults).Field(i).Interface(); got != want {
			t.Errorf("--%s copies %v, want %v", name, got, want)
		}
	}
	if len(copies) != typ.NumField() {
		t.Errorf("%d overrides for %d fields", len(copies), typ.NumField())
	}
}

// TestInjectFile runs `outrider inject -f` on files and standard input: the objects
// come back with their pods injected by the same Mutate as the webhook, with the
// injector's defaults from the flags and --config; a denial prints its reason and
// nothing on stdout.
func TestInjectFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const annotations = `
        outrider.dev/inject: "true"
        outrider.dev/role: web
        outrider.dev/secret-db.env: secret/data/shop/db`
	workloads := write("workloads.yaml", `# several documents, as kubectl takes them
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:`+annotations+`
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:`+indentLines(annotations, "    ")+`
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: "registry.example.com/report:1"}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "postgres:17"}]
`)
	config := write("injector.yaml", "vault_addr: https://vault.vault.svc:8200\nloki_url: http://loki.monitoring.svc:3100\n")
	denied := write("denied.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    outrider.dev/inject: "true"
    outrider.dev/secret-db: secret/data/db
spec:
  containers: [{name: web, image: web}]
`)

	t.Run("workloads", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := run([]string{"inject", "--config", config, "--image", "mirror/outrider:1", "-f", workloads}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		docs := strings.Split(stdout.String(), "\n---\n")
		if len(docs) != 4 {
			t.Fatalf("%d documents, want 4:\n%s", len(docs), stdout.String())
		}
		var dep appsv1.Deployment
		if err := sigsyaml.UnmarshalStrict([]byte(docs[0]), &dep); err != nil {
			t.Fatalf("the Deployment does not decode strictly: %v\n%s", err, docs[0])
		}
		tmpl := dep.Spec.Template
		if tmpl.Annotations[inject.AnnotationStatus] != inject.StatusInjected || len(tmpl.Spec.InitContainers) != 1 || tmpl.Spec.InitContainers[0].Image != "mirror/outrider:1" {
			t.Errorf("the Deployment's pod is not injected with the flag's image: %+v", tmpl.Spec.InitContainers)
		}
		if cfg := tmpl.Annotations[inject.AnnotationConfig]; !strings.Contains(cfg, "https://vault.vault.svc:8200") || !strings.Contains(cfg, "http://loki.monitoring.svc:3100") {
			t.Errorf("the configuration lacks the --config defaults:\n%s", cfg)
		}
		if dep.Name != "web" || dep.Namespace != "shop" || tmpl.Name != "" || tmpl.Namespace != "" {
			t.Errorf("names: deployment %s/%s, template %q/%q", dep.Namespace, dep.Name, tmpl.Namespace, tmpl.Name)
		}
		if !strings.Contains(docs[1], "kind: Service") {
			t.Errorf("document 2 = %s, want the Service unchanged", docs[1])
		}
		var cj batchv1.CronJob
		if err := sigsyaml.UnmarshalStrict([]byte(docs[2]), &cj); err != nil {
			t.Fatal(err)
		}
		if p := cj.Spec.JobTemplate.Spec.Template; len(p.Spec.InitContainers) != 1 || p.Spec.InitContainers[0].RestartPolicy == nil {
			t.Errorf("the CronJob's pod has no native sidecar: %+v", p.Spec.InitContainers)
		}
		if !strings.Contains(docs[3], "kind: StatefulSet") || strings.Contains(docs[3], "outrider") {
			t.Errorf("the StatefulSet that does not opt in changed: %s", docs[3])
		}
		if !strings.Contains(stderr.String(), "document 4 (StatefulSet db): warning: not injected") {
			t.Errorf("stderr = %s, want the objects that were not injected named", stderr.String())
		}
	})

	t.Run("stdin", func(t *testing.T) {
		data, err := os.ReadFile(workloads)
		if err != nil {
			t.Fatal(err)
		}
		var f injectFlags
		fs := flag.NewFlagSet("inject", flag.ContinueOnError)
		f.register(fs)
		if err := fs.Parse([]string{"--config", config, "-f", "-"}); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := injectFile(fs, &f, bytes.NewReader(data), &stdout, &stderr); code != exitOK || strings.Count(stdout.String(), "outrider.dev/status: injected") != 2 {
			t.Errorf("exit %d, %d pods injected; stderr %s", code, strings.Count(stdout.String(), "outrider.dev/status: injected"), stderr.String())
		}
	})

	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"denied", []string{"-f", denied}, exitFailed, "denied.yaml document 1 (Pod web): denied: outrider: outrider.dev/role: required with secrets"},
		{"denied among others", []string{"-f", write("mixed.yaml", readFile(t, workloads)+"---\n"+readFile(t, denied))}, exitFailed, "document 5 (Pod web): denied"},
		{"missing file", []string{"-f", filepath.Join(dir, "nope.yaml")}, exitUsage, "nope.yaml: no such file"},
		{"empty", []string{"-f", write("empty.yaml", "---\n# nothing\n")}, exitUsage, "holds no object"},
		{"not YAML", []string{"-f", write("bad.yaml", "kind: [\n")}, exitUsage, "document 1"},
		{"no kind", []string{"-f", write("nokind.yaml", "metadata: {name: x}\n")}, exitFailed, `kind "" (apiVersion "")`},
		{"no template", []string{"-f", write("notmpl.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n")}, exitFailed, "has no .spec.template object"},
		{"with self-signed", []string{"-f", denied, "--self-signed"}, exitUsage, "exclusive"},
		{"bad defaults", []string{"-f", denied, "--loki-url", "loki:3100"}, exitUsage, "loki_url (--loki-url)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"inject", "--config", config}, tt.args...), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, stderr.String(), tt.code, tt.stderr)
			}
			if code != exitOK && stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing after a failure", stdout.String())
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func indentLines(s, by string) string { return strings.ReplaceAll(s, "\n", "\n"+by) }
