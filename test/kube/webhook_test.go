package kube

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/kubetest"
)

// Namespaces of TestWebhook.
const (
	// webhookNamespace holds the Service the API server calls the webhook through.
	webhookNamespace = "outrider-e2e-injector"
	// appsNamespace is labelled for injection: pods created there go through the
	// webhook.
	appsNamespace = "outrider-e2e-apps"
	// plainNamespace is not labelled: its pods never reach the webhook.
	plainNamespace = "outrider-e2e-plain"
)

// Injector-wide defaults TestWebhook runs `outrider inject` with, added to the
// deploy/base ConfigMap's. Nothing dials these addresses.
const (
	sidecarImage  = "registry.example.com/mirror/outrider:v0.1.0-e2e"
	vaultAddr     = "https://vault.vault.svc:8200"
	lokiURL       = "http://loki.monitoring.svc:3100"
	tempoEndpoint = "http://tempo.monitoring.svc:4317"
)

// TestWebhook runs the real `outrider inject`, with the arguments and the
// configuration of deploy/base's Deployment, behind a Service of the real API server,
// registers deploy/base's webhook configuration pointing at it (with the cluster CA as
// caBundle, and confined to this test's namespaces), and creates pods through the API
// server: what the API server stores is what the webhook produced, validated and
// defaulted by it.
func TestWebhook(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := build(t, "base")
	var dep appsv1.Deployment
	base.into(t, "Deployment", injectorName, &dep)

	ln, err := c.ServiceListener(ctx, webhookNamespace, injectorName)
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close() // outrider inject listens there itself
	serviceDNS := injectorName + "." + webhookNamespace + ".svc"
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
	inj := startInjector(t, args, listen, serviceDNS, c.CAPEM())

	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: appsNamespace, Labels: map[string]string{injectionLabel: "enabled"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: plainNamespace}},
	} {
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	registerWebhook(ctx, t, c, base, listen)
	waitForWebhook(ctx, t, c)

	var web *corev1.Pod
	t.Run("pod", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: "web", Namespace: appsNamespace, Labels: map[string]string{"app.kubernetes.io/name": "web"},
				Annotations: map[string]string{
					inject.AnnotationInject:               "true",
					inject.AnnotationRole:                 "web",
					inject.AnnotationSecretPrefix + "db":  "secret/data/shop/db",
					inject.AnnotationSecretPrefix + "api": "secret/data/shop/api",
					inject.AnnotationSecretPrefix + "api" + inject.AnnotationSecretFormatSuffix: "json",
					inject.AnnotationLogs:            "/var/log/app/*.log",
					inject.AnnotationLokiTenant:      "shop",
					inject.AnnotationSentryDSNSecret: "sentry/dsn",
				},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "web", Image: "registry.example.com/shop/web:1.4.2",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}},
		}
		web = create(ctx, t, c, pod)
		checkInjected(ctx, t, web, want{mode: inject.ModeNative, targets: []string{"web"}, secrets: true, logDirs: []string{"/var/log/app"}, sentry: true})
		if got := web.Annotations[inject.AnnotationConfig]; !strings.Contains(got, "secret/data/shop/db") || !strings.Contains(got, "shop") {
			t.Errorf("the generated configuration lacks the pod's secret or Loki tenant:\n%s", got)
		}
	})

	t.Run("idempotent", func(t *testing.T) {
		if web == nil {
			t.Fatal("no injected pod to pass again")
		}
		// The injected pod, created again: the webhook sees its status annotation.
		again := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-again", Namespace: appsNamespace, Labels: web.Labels, Annotations: web.Annotations},
			Spec:       *web.Spec.DeepCopy(),
		}
		var out corev1.Pod
		if err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+appsNamespace+"/pods?dryRun=All", again, &out); err != nil {
			t.Fatalf("the API server refused the injected pod created again: %v", err)
		}
		if !equality.Semantic.DeepEqual(out.Spec, web.Spec) {
			t.Errorf("a second pass changed the pod:\nfirst:  %s\nsecond: %s", mustJSON(t, web.Spec), mustJSON(t, out.Spec))
		}
		if !equality.Semantic.DeepEqual(out.Annotations, web.Annotations) {
			t.Errorf("a second pass changed the annotations: %v, was %v", out.Annotations, web.Annotations)
		}
		// An update of the stored pod is no pod creation: the webhook is not called.
		var updated corev1.Pod
		patch := []byte(`{"metadata":{"labels":{"outrider-e2e/touched":"yes"}}}`)
		if err := c.Do(ctx, http.MethodPatch, "/api/v1/namespaces/"+appsNamespace+"/pods/web", patch, &updated); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(updated.Spec, web.Spec) {
			t.Errorf("an update changed the pod's spec:\nbefore: %s\nafter:  %s", mustJSON(t, web.Spec), mustJSON(t, updated.Spec))
		}
	})

	t.Run("deployment", func(t *testing.T) {
		testDeploymentPod(ctx, t, c)
	})

	t.Run("job", func(t *testing.T) {
		testJobPod(ctx, t, c)
	})

	t.Run("classic", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: appsNamespace, Annotations: map[string]string{
				inject.AnnotationInject:              "true",
				inject.AnnotationSidecarMode:         inject.ModeClassic,
				inject.AnnotationRole:                "legacy",
				inject.AnnotationSecretPrefix + "db": "secret/data/legacy/db",
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "legacy", Image: "registry.example.com/legacy:7"}}},
		}
		checkInjected(ctx, t, create(ctx, t, c, pod), want{mode: inject.ModeClassic, targets: []string{"legacy"}, secrets: true})
	})

	t.Run("denied", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			annotations map[string]string
			// mention is what the denial must name: the annotation at fault.
			mention string
		}{
			{"inject value", map[string]string{inject.AnnotationInject: "yes"}, inject.AnnotationInject},
			{"sidecar mode", map[string]string{inject.AnnotationInject: "true", inject.AnnotationSidecarMode: "sideways"}, inject.AnnotationSidecarMode},
			{"unknown annotation", map[string]string{inject.AnnotationInject: "true", "outrider.dev/secrets-dri": "/run/secrets"}, "outrider.dev/secrets-dri"},
			{"memory limit", map[string]string{inject.AnnotationInject: "true", inject.AnnotationMemoryLimit: "lots"}, inject.AnnotationMemoryLimit},
			{"secret without role", map[string]string{inject.AnnotationInject: "true", inject.AnnotationSecretPrefix + "db": "secret/data/db"}, inject.AnnotationRole},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := "denied-" + strings.ReplaceAll(tc.name, " ", "-")
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appsNamespace, Annotations: tc.annotations},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
				}
				err := c.Create(ctx, pod)
				if err == nil {
					t.Fatalf("the pod was admitted; want a denial naming %s", tc.mention)
				}
				msg := err.Error()
				if !strings.Contains(msg, `admission webhook "`+webhookName+`" denied the request`) || !strings.Contains(msg, tc.mention) {
					t.Errorf("denial = %s\nwant the webhook's denial naming %s", msg, tc.mention)
				}
				if err := c.Get(ctx, "/api/v1/namespaces/"+appsNamespace+"/pods/"+name, nil); kubetest.StatusReason(err) != metav1.StatusReasonNotFound {
					t.Errorf("the denied pod exists: %v", err)
				}
			})
		}
	})

	t.Run("untouched", func(t *testing.T) {
		for _, tc := range []struct {
			name, namespace string
			annotations     map[string]string
		}{
			{"no opt-in", appsNamespace, nil},
			{"opted out", appsNamespace, map[string]string{inject.AnnotationInject: "false"}},
			{"namespace not labelled", plainNamespace, map[string]string{inject.AnnotationInject: "true"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{GenerateName: "plain-", Namespace: tc.namespace, Annotations: tc.annotations},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
				}
				stored := create(ctx, t, c, pod)
				if len(stored.Spec.InitContainers) != 0 || len(stored.Spec.Containers) != 1 || len(stored.Spec.Containers[0].Env) != 0 {
					t.Errorf("the pod was changed: %s", mustJSON(t, stored.Spec))
				}
				for _, v := range stored.Spec.Volumes {
					if strings.HasPrefix(v.Name, "outrider-") {
						t.Errorf("the pod got volume %s", v.Name)
					}
				}
				if _, ok := stored.Annotations[inject.AnnotationStatus]; ok {
					t.Errorf("the pod is marked %s", inject.AnnotationStatus)
				}
			})
		}
	})

	t.Run("golden inputs", func(t *testing.T) {
		testGoldenInputs(ctx, t, c)
	})

	t.Run("certificate reload", func(t *testing.T) {
		newCert := writeServingCert(t, c, dir, serviceDNS)
		eventually(t, 15*time.Second, "the injector serves the new certificate", func() error {
			serial, err := servedSerial(listen, serviceDNS, c.CAPEM())
			if err != nil {
				return err
			}
			if serial != newCert.SerialNumber.String() {
				return fmt.Errorf("serving serial %s, want %s", serial, newCert.SerialNumber)
			}
			return nil
		})
		// The API server opens new connections to the webhook: they see the new one.
		waitForWebhook(ctx, t, c)
	})

	t.Run("concurrent", func(t *testing.T) {
		testConcurrent(ctx, t, c, *admissions)
	})

	t.Run("metrics", func(t *testing.T) {
		body, code, err := inj.get("/metrics")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", code, err)
		}
		m := parseMetrics(body)
		for result, min := range map[string]float64{inject.ResultInjected: 5, inject.ResultDenied: 5, inject.ResultSkipped: 2} {
			if got := m[`outrider_inject_requests_total{result="`+result+`"}`]; got < min {
				t.Errorf("outrider_inject_requests_total{result=%q} = %v, want at least %v", result, got, min)
			}
		}
		if got := m[`outrider_inject_certificate_reloads_total{result="ok"}`]; got < 1 {
			t.Errorf("outrider_inject_certificate_reloads_total{result=\"ok\"} = %v, want at least 1", got)
		}
		// The measurement behind the Deployment's resources (deploy/README.md).
		t.Logf("injector after %v admissions: resident memory %.1f MiB, Go heap in use %.1f MiB, CPU %.2f s",
			m[`outrider_inject_requests_total{result="injected"}`]+m[`outrider_inject_requests_total{result="skipped"}`]+m[`outrider_inject_requests_total{result="denied"}`],
			m["process_resident_memory_bytes"]/(1<<20), m["go_memstats_heap_inuse_bytes"]/(1<<20), m["process_cpu_seconds_total"])
	})

	if err := c.Delete(ctx, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"+e2eWebhookConfig); err != nil {
		t.Error(err)
	}
	if err := inj.stop(15 * time.Second); err != nil {
		t.Errorf("outrider inject did not stop cleanly on SIGTERM: %v", err)
	}
}

// admissions is how many pods the concurrent subtest of TestWebhook sends through the
// webhook (dry run, 16 at a time); raise it to measure the injector under load:
//
//	go test ./test/kube -run 'TestWebhook/(concurrent|metrics)' -v -args -admissions=4000
var admissions = flag.Int("admissions", 100, "pods TestWebhook sends through the webhook at once, 16 at a time")

// testConcurrent creates n opted-in pods (dry run) through the API server from 16
// clients at once: every one must come back injected.
func testConcurrent(ctx context.Context, t *testing.T, c *kubetest.Cluster, n int) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "load-", Namespace: appsNamespace, Annotations: map[string]string{
			inject.AnnotationInject:              "true",
			inject.AnnotationRole:                "load",
			inject.AnnotationSecretPrefix + "db": "secret/data/load/db",
			inject.AnnotationLogs:                "/var/log/app/*.log",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
	}
	const workers = 16
	start := time.Now()
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := w; i < n; i += workers {
				var out corev1.Pod
				if err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+appsNamespace+"/pods?dryRun=All", pod, &out); err != nil {
					return fmt.Errorf("pod %d: %w", i, err)
				}
				if out.Annotations[inject.AnnotationStatus] != inject.StatusInjected {
					return fmt.Errorf("pod %d was not injected", i)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods injected through the API server in %s, %d at a time", n, time.Since(start).Round(time.Millisecond), workers)
}

// e2eWebhookConfig is the name of TestWebhook's MutatingWebhookConfiguration.
const e2eWebhookConfig = "outrider-injector-e2e"

// registerWebhook creates deploy/base's MutatingWebhookConfiguration, renamed, with
// its Service reference pointed at the injector's listener, the cluster CA as
// caBundle, and its namespaceSelector confined to the test's namespaces.
func registerWebhook(ctx context.Context, t *testing.T, c *kubetest.Cluster, base *manifests, listen string) {
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
	convert(t, base.confineWebhooks(t, appsNamespace, plainNamespace).one(t, "MutatingWebhookConfiguration"), &mwc)
	mwc.Name = e2eWebhookConfig
	for i := range mwc.Webhooks {
		svc := mwc.Webhooks[i].ClientConfig.Service
		svc.Namespace, svc.Name, svc.Port = webhookNamespace, injectorName, ptrTo(int32(port))
		mwc.Webhooks[i].ClientConfig.CABundle = c.CAPEM()
	}
	if err := c.Create(ctx, &mwc); err != nil {
		t.Fatalf("register the webhook: %v", err)
	}
	t.Cleanup(func() {
		// After a failure; TestWebhook deletes it itself otherwise.
		_ = c.Delete(context.Background(), "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"+e2eWebhookConfig)
	})
}

// waitForWebhook repeats a dry-run create of an opted-in pod until it comes back
// injected: the API server sees a new webhook configuration a little late.
func waitForWebhook(ctx context.Context, t *testing.T, c *kubetest.Cluster) {
	t.Helper()
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: appsNamespace, Annotations: map[string]string{inject.AnnotationInject: "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
	}
	eventually(t, 30*time.Second, "the webhook injects pods", func() error {
		var out corev1.Pod
		if err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+appsNamespace+"/pods?dryRun=All", probe, &out); err != nil {
			return err
		}
		if out.Annotations[inject.AnnotationStatus] != inject.StatusInjected {
			return fmt.Errorf("pod admitted without injection")
		}
		return nil
	})
}

// testDeploymentPod creates a Deployment and its ReplicaSet, which the webhook does
// not touch, and the pod the ReplicaSet controller would create from the template.
func testDeploymentPod(ctx context.Context, t *testing.T, c *kubetest.Cluster) {
	lbls := map[string]string{"app.kubernetes.io/name": "shop-web"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: lbls, Annotations: map[string]string{
			inject.AnnotationInject:              "true",
			inject.AnnotationRole:                "shop-web",
			inject.AnnotationSecretPrefix + "db": "secret/data/shop/db",
			inject.AnnotationLogs:                "/var/log/shop/*.log,/var/log/nginx/access.log",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "web", Image: "registry.example.com/shop/web:1.4.2"},
			{Name: "nginx", Image: "registry.example.com/nginx:1.27"},
		}},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-web", Namespace: appsNamespace, Labels: lbls},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: tmpl,
		},
	}
	if err := c.Create(ctx, dep); err != nil {
		t.Fatalf("create the Deployment: %v", err)
	}
	if !equality.Semantic.DeepEqual(dep.Spec.Template.Spec.Containers[0].Env, tmpl.Spec.Containers[0].Env) || len(dep.Spec.Template.Spec.InitContainers) != 0 {
		t.Errorf("the Deployment's template was changed; only pods are injected: %s", mustJSON(t, dep.Spec.Template.Spec))
	}
	const hash = "5d8f7c9b4"
	rsLabels := map[string]string{"app.kubernetes.io/name": "shop-web", "pod-template-hash": hash}
	rsTmpl := *dep.Spec.Template.DeepCopy()
	rsTmpl.Labels = rsLabels
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: dep.Name + "-" + hash, Namespace: appsNamespace, Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dep, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: dep.Spec.Replicas, Selector: &metav1.LabelSelector{MatchLabels: rsLabels}, Template: rsTmpl},
	}
	if err := c.Create(ctx, rs); err != nil {
		t.Fatalf("create the ReplicaSet: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: rs.Name + "-", Namespace: appsNamespace,
			Labels: rs.Spec.Template.Labels, Annotations: rs.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))},
		},
		Spec: *rs.Spec.Template.Spec.DeepCopy(),
	}
	stored := create(ctx, t, c, pod)
	if !strings.HasPrefix(stored.Name, rs.Name+"-") {
		t.Errorf("pod name %q, want one generated from %s-", stored.Name, rs.Name)
	}
	checkInjected(ctx, t, stored, want{mode: inject.ModeNative, targets: []string{"web", "nginx"}, secrets: true, logDirs: []string{"/var/log/shop", "/var/log/nginx"}})
}

// testJobPod creates a Job and the pod the Job controller would create: the native
// sidecar lets it complete, so it must be there and the pod's restartPolicy kept.
func testJobPod(ctx context.Context, t *testing.T, c *kubetest.Cluster) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: appsNamespace},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptrTo(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					inject.AnnotationInject:              "true",
					inject.AnnotationRole:                "migrate",
					inject.AnnotationSecretPrefix + "db": "database/creds/migrate",
				}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "migrate", Image: "registry.example.com/shop/migrate:3",
						Command: []string{"/migrate", "--env-file", "/vault/secrets/db"},
					}},
				},
			},
		},
	}
	if err := c.Create(ctx, job); err != nil {
		t.Fatalf("create the Job: %v", err)
	}
	if len(job.Spec.Template.Spec.InitContainers) != 0 {
		t.Errorf("the Job's template was changed; only pods are injected")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: job.Name + "-", Namespace: appsNamespace,
			Labels: job.Spec.Template.Labels, Annotations: job.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))},
		},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	stored := create(ctx, t, c, pod)
	checkInjected(ctx, t, stored, want{mode: inject.ModeNative, targets: []string{"migrate"}, secrets: true})
	if stored.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %s, want Never (the Job's)", stored.Spec.RestartPolicy)
	}
}

// testGoldenInputs creates (dry run) each input pod of the injector's golden tests
// (inject/testdata/*.pod.yaml) through the API server: whatever the webhook makes of
// them, the API server must accept.
func testGoldenInputs(ctx context.Context, t *testing.T, c *kubetest.Cluster) {
	files, err := filepath.Glob("../../inject/testdata/*.pod.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no input pods in inject/testdata: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".pod.yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict(data, &pod); err != nil {
				t.Fatal(err)
			}
			pod.Namespace = appsNamespace
			if pod.Name != "" {
				pod.Name = "golden-" + pod.Name
			}
			if sa := pod.Spec.ServiceAccountName; sa != "" {
				err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: appsNamespace}})
				if err != nil && kubetest.StatusReason(err) != metav1.StatusReasonAlreadyExists {
					t.Fatal(err)
				}
			}
			var out corev1.Pod
			if err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+appsNamespace+"/pods?dryRun=All&fieldValidation=Strict", &pod, &out); err != nil {
				t.Fatalf("the API server refused the pod the webhook made of %s: %v", f, err)
			}
			if out.Annotations[inject.AnnotationStatus] != inject.StatusInjected {
				t.Fatalf("%s was not injected", f)
			}
			mode := pod.Annotations[inject.AnnotationSidecarMode]
			if mode == "" {
				mode = inject.ModeNative
			}
			validateConfig(ctx, t, out.Annotations[inject.AnnotationConfig], sidecarOf(t, &out, mode))
		})
	}
}

// want is what checkInjected expects of an injected pod.
type want struct {
	mode    string
	targets []string // the containers that get the mounts and the environment
	secrets bool
	logDirs []string
	sentry  bool
}

// checkInjected checks the pod as the API server stored it after the webhook.
func checkInjected(ctx context.Context, t *testing.T, pod *corev1.Pod, w want) {
	t.Helper()
	if pod.Annotations[inject.AnnotationStatus] != inject.StatusInjected {
		t.Fatalf("pod %s is not marked %s: %v", pod.Name, inject.AnnotationStatus, pod.Annotations)
	}
	sc := sidecarOf(t, pod, w.mode)
	validateConfig(ctx, t, pod.Annotations[inject.AnnotationConfig], sc)
	checkContainerSecurity(t, sc)
	if sc.Image != sidecarImage {
		t.Errorf("sidecar image = %q, want the injector's default %s", sc.Image, sidecarImage)
	}
	if r := sc.Resources; r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("sidecar resources = %+v, want cpu and memory requests and a memory limit", r)
	}
	if w.mode == inject.ModeClassic && w.secrets {
		ic := pod.Spec.InitContainers[0]
		if ic.Name != inject.InitName || !strings.Contains(strings.Join(ic.Args, " "), "render") || !strings.Contains(strings.Join(ic.Args, " "), "--once") {
			t.Errorf("first init container = %s %q, want %s running render --once", ic.Name, ic.Args, inject.InitName)
		}
		checkContainerSecurity(t, ic)
	}

	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	if v := vols[inject.VolumeConfig]; v.DownwardAPI == nil {
		t.Errorf("volume %s = %+v, want the downward API (the config annotation)", inject.VolumeConfig, v.VolumeSource)
	}
	if v := vols[inject.VolumeData]; v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.IsZero() {
		t.Errorf("volume %s = %+v, want an emptyDir with a sizeLimit (the queue)", inject.VolumeData, v.VolumeSource)
	}
	if w.secrets {
		if v := vols[inject.VolumeSecrets]; v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.IsZero() {
			t.Errorf("volume %s = %+v, want an in-memory emptyDir with a sizeLimit", inject.VolumeSecrets, v.VolumeSource)
		}
		if m, ok := mountAt(sc, inject.DefaultSecretsDir); !ok || m.Name != inject.VolumeSecrets || m.ReadOnly {
			t.Errorf("the sidecar does not write the secrets volume at %s: %+v", inject.DefaultSecretsDir, sc.VolumeMounts)
		}
	}
	if len(w.logDirs) > 0 {
		if v := vols[inject.VolumeLogs]; v.EmptyDir == nil {
			t.Errorf("volume %s = %+v, want an emptyDir", inject.VolumeLogs, v.VolumeSource)
		}
	}
	for _, dir := range w.logDirs {
		if m, ok := mountAt(sc, dir); !ok || m.Name != inject.VolumeLogs || !m.ReadOnly {
			t.Errorf("the sidecar does not read the logs at %s: %+v", dir, sc.VolumeMounts)
		}
	}

	for _, name := range w.targets {
		ctr := containerNamed(t, pod.Spec.Containers, name)
		env := map[string]corev1.EnvVar{}
		for _, e := range ctr.Env {
			env[e.Name] = e
		}
		if got := env["OTEL_EXPORTER_OTLP_ENDPOINT"].Value; got != fmt.Sprintf("http://127.0.0.1:%d", inject.OTLPHTTPPort) {
			t.Errorf("container %s: OTEL_EXPORTER_OTLP_ENDPOINT = %q, want the sidecar's OTLP/HTTP port", name, got)
		}
		if env["OTEL_SERVICE_NAME"].Value == "" || !strings.Contains(env["OTEL_RESOURCE_ATTRIBUTES"].Value, "k8s.pod.name=") {
			t.Errorf("container %s: OTEL_SERVICE_NAME = %q, OTEL_RESOURCE_ATTRIBUTES = %q", name, env["OTEL_SERVICE_NAME"].Value, env["OTEL_RESOURCE_ATTRIBUTES"].Value)
		}
		if dsn, ok := env["SENTRY_DSN"]; ok != w.sentry {
			t.Errorf("container %s: SENTRY_DSN set %v, want %v", name, ok, w.sentry)
		} else if ok {
			u, err := url.Parse(dsn.Value)
			if err != nil || u.Host != fmt.Sprintf("127.0.0.1:%d", inject.SentryPort) || u.User.Username() == "" {
				t.Errorf("container %s: SENTRY_DSN = %q, want a DSN of the sidecar at 127.0.0.1:%d", name, dsn.Value, inject.SentryPort)
			}
		}
		if w.secrets {
			if m, ok := mountAt(ctr, inject.DefaultSecretsDir); !ok || m.Name != inject.VolumeSecrets || !m.ReadOnly {
				t.Errorf("container %s does not mount the secrets read-only at %s: %+v", name, inject.DefaultSecretsDir, ctr.VolumeMounts)
			}
		}
		for _, dir := range w.logDirs {
			if m, ok := mountAt(ctr, dir); !ok || m.Name != inject.VolumeLogs || m.ReadOnly {
				t.Errorf("container %s does not mount the shared log volume at %s: %+v", name, dir, ctr.VolumeMounts)
			}
		}
	}
}

// sidecarOf returns the outrider sidecar of the pod in the given mode: the first init
// container (right after the mesh's proxy with sidecar-order after-mesh) with
// restartPolicy Always and a startup probe on /readyz (native), or the last container
// (classic).
func sidecarOf(t *testing.T, pod *corev1.Pod, mode string) corev1.Container {
	t.Helper()
	for _, ctr := range pod.Spec.Containers[:len(pod.Spec.Containers)-1] {
		if ctr.Name == inject.SidecarName {
			t.Errorf("container %s is not the last container", ctr.Name)
		}
	}
	switch mode {
	case inject.ModeNative:
		at := 0
		if pod.Annotations[inject.AnnotationSidecarOrder] == inject.OrderAfterMesh {
			// Right after the mesh's native proxy (TestBesideMesh checks the order).
			at = slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "istio-proxy" || c.Name == "linkerd-proxy" }) + 1
		}
		if len(pod.Spec.InitContainers) <= at || pod.Spec.InitContainers[at].Name != inject.SidecarName {
			t.Fatalf("native mode: init container %d is not %s: %s", at, inject.SidecarName, mustJSON(t, pod.Spec.InitContainers))
		}
		sc := pod.Spec.InitContainers[at]
		if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("native sidecar restartPolicy = %v, want Always", sc.RestartPolicy)
		}
		if p := sc.StartupProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
			t.Errorf("native sidecar startupProbe = %+v, want GET /readyz (the app starts after the first render)", p)
		}
		if last := pod.Spec.Containers[len(pod.Spec.Containers)-1]; last.Name == inject.SidecarName {
			t.Errorf("native mode: the sidecar is also a regular container")
		}
		return sc
	case inject.ModeClassic:
		sc := pod.Spec.Containers[len(pod.Spec.Containers)-1]
		if sc.Name != inject.SidecarName || sc.RestartPolicy != nil {
			t.Fatalf("classic mode: the last container is %s (restartPolicy %v), want %s", sc.Name, sc.RestartPolicy, inject.SidecarName)
		}
		for _, ic := range pod.Spec.InitContainers {
			if ic.Name == inject.SidecarName {
				t.Errorf("classic mode: the sidecar is also an init container")
			}
		}
		return sc
	}
	t.Fatalf("unknown mode %q", mode)
	return corev1.Container{}
}

// placeholderSecret stands for the upstream Sentry DSN of the Secret named by
// outrider.dev/sentry-dsn-secret, mounted in the sidecar.
const placeholderSecret = "https://0123456789abcdef@sentry.example.com/1"

// validateConfig checks the sidecar configuration the webhook generated with the
// agent's own `outrider validate`, in the sidecar's environment (values the kubelet
// would fill in from the downward API or a Secret, and the files of the Vault CA
// Secret volume, get placeholders).
func validateConfig(ctx context.Context, t *testing.T, config string, sidecar corev1.Container) {
	t.Helper()
	var env []string
	for _, e := range sidecar.Env {
		v := e.Value
		if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.FieldRef != nil:
				v = "e2e-" + strings.NewReplacer(".", "-", "[", "", "]", "", "'", "").Replace(e.ValueFrom.FieldRef.FieldPath)
			case e.ValueFrom.SecretKeyRef != nil:
				v = placeholderSecret
			default:
				t.Errorf("sidecar variable %s comes from %+v, which the test does not know", e.Name, e.ValueFrom)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	if config == "" {
		t.Errorf("no %s annotation", inject.AnnotationConfig)
		return
	}
	dir := t.TempDir()
	if slices.ContainsFunc(sidecar.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == inject.VaultTLSDir }) {
		// The Vault CA Secret the kubelet would mount there (outrider.dev/vault-ca-secret):
		// any PEM certificate stands in for it.
		tlsDir := filepath.Join(dir, "vault-tls")
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), kubetest.Shared(t).CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		config = strings.ReplaceAll(config, inject.VaultTLSDir+"/", tlsDir+"/")
		for i := range env {
			env[i] = strings.ReplaceAll(env[i], inject.VaultTLSDir+"/", tlsDir+"/")
		}
	}
	if slices.ContainsFunc(sidecar.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == inject.SentryDir }) {
		// The Secret holding the upstream Sentry DSN (outrider.dev/sentry-dsn-secret).
		sentryDir := filepath.Join(dir, "sentry")
		if err := os.MkdirAll(sentryDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sentryDir, "dsn"), []byte(placeholderSecret), 0o600); err != nil {
			t.Fatal(err)
		}
		config = strings.ReplaceAll(config, inject.SentryDir+"/", sentryDir+"/")
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runOutriderEnv(ctx, env, "validate", "--config", path); err != nil {
		t.Errorf("the generated sidecar configuration is invalid: %v\n%s", err, config)
	}
}

// create creates the pod through the API server and returns it as stored, read back.
func create(ctx context.Context, t *testing.T, c *kubetest.Cluster, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if err := c.Create(ctx, pod); err != nil {
		t.Fatalf("the API server refused pod %s%s: %v", pod.Name, pod.GenerateName, err)
	}
	var stored corev1.Pod
	if err := c.Get(ctx, "/api/v1/namespaces/"+pod.Namespace+"/pods/"+pod.Name, &stored); err != nil {
		t.Fatal(err)
	}
	return &stored
}

// writeInjectorConfig writes deploy/base's injector configuration (its ConfigMap)
// with the test's defaults added.
func writeInjectorConfig(t *testing.T, base *manifests, path string) {
	t.Helper()
	var cm corev1.ConfigMap
	for _, o := range base.objects {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), injectorName+"-config") {
			convert(t, o, &cm)
		}
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("deploy/base's config.yaml: %v", err)
	}
	cfg["image"], cfg["vault_addr"], cfg["loki_url"], cfg["tempo_endpoint"] = sidecarImage, vaultAddr, lokiURL, tempoEndpoint
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// injectorArgs returns the Deployment's arguments with the values of the flags in
// replace swapped for local ones; each of them must be there.
func injectorArgs(t *testing.T, args []string, replace map[string]string) []string {
	t.Helper()
	out := make([]string, len(args))
	seen := map[string]bool{}
	for i, a := range args {
		out[i] = a
		name, _, ok := strings.Cut(a, "=")
		if v, swap := replace[name]; ok && swap {
			out[i] = name + "=" + v
			seen[name] = true
		}
	}
	for name := range replace {
		if !seen[name] {
			t.Fatalf("the Deployment's args %q have no %s=", args, name)
		}
	}
	return out
}

// writeServingCert writes a new serving certificate for name, issued by the cluster
// CA, to dir/tls.crt and dir/tls.key (each replaced atomically, the key first), and
// returns it.
func writeServingCert(t *testing.T, c *kubetest.Cluster, dir, name string) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM, err := c.ServingCert(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"tls.key", keyPEM}, {"tls.crt", certPEM}} {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// servedSerial returns the serial number of the certificate served at addr.
func servedSerial(addr, serverName string, caPEM []byte) (string, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// parseMetrics reads the Prometheus text format into series -> value.
func parseMetrics(body string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func containerNamed(t *testing.T, list []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range list {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// mountAt returns the container's mount at path.
func mountAt(ctr corev1.Container, path string) (corev1.VolumeMount, bool) {
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == path {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func ptrTo[T any](v T) *T { return &v }
