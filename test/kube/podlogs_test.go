package kube

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/kubetest"
)

// injectedByBinary runs the real `outrider inject -f` on a YAML pod, with the
// injector defaults of TestWebhook, and decodes the pod it prints.
func injectedByBinary(ctx context.Context, t *testing.T, podYAML []byte, args ...string) *corev1.Pod {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(file, podYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"inject", "--image", sidecarImage, "--vault-addr", vaultAddr, "--loki-url", lokiURL, "--tempo-endpoint", tempoEndpoint, "-f", file}, args...)
	out, stderr, err := runOutrider(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Logf("outrider inject -f: %s", stderr)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(out), &pod); err != nil {
		t.Fatalf("the printed pod does not decode strictly: %v\n%s", err, out)
	}
	return &pod
}

// createIn creates pod in namespace through the API server and returns it as stored.
func createIn(ctx context.Context, t *testing.T, c *kubetest.Cluster, namespace string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	pod.Namespace = namespace
	var stored corev1.Pod
	if err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+namespace+"/pods?fieldValidation=Strict", pod, &stored); err != nil {
		t.Fatalf("the API server refused the injected pod: %v", err)
	}
	return &stored
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandFromDownwardAPI expands $(VAR) in s as the kubelet does for subPathExpr, with
// the container's variables that come from the pod's metadata.
func expandFromDownwardAPI(t *testing.T, pod *corev1.Pod, c corev1.Container, s string) string {
	t.Helper()
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		for _, e := range c.Env {
			if e.Name != name || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
				continue
			}
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				return pod.Name
			case "metadata.namespace":
				return pod.Namespace
			case "metadata.uid":
				return string(pod.UID)
			}
		}
		t.Errorf("%s in %q is not a downward-API variable of container %s", ref, s, c.Name)
		return ref
	})
}

// TestStdoutPod injects a pod with outrider.dev/stdout through the real binary,
// creates it through the real API server, and checks what it stores: the node's
// /var/log/pods as a hostPath, mounted read-only in the sidecar only, restricted by
// subPathExpr to the directory the kubelet gives this pod (<namespace>_<name>_<uid>,
// with the uid the API server assigned). A namespace enforcing the baseline Pod
// Security Standard refuses the same pod for its hostPath, as docs/annotations.md
// says.
func TestStdoutPod(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const (
		privileged = "outrider-stdout-apps"
		baseline   = "outrider-stdout-baseline"
	)
	for ns, level := range map[string]string{privileged: "privileged", baseline: "baseline"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"pod-security.kubernetes.io/enforce": level}}}); err != nil {
			t.Fatal(err)
		}
	}
	podYAML := []byte(`apiVersion: v1
kind: Pod
metadata:
  name: api
  annotations:
    outrider.dev/inject: "true"
    outrider.dev/stdout: "true"
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 1000
  containers:
    - name: api
      image: registry.example.com/shop/api:2.0.1
    - name: worker
      image: registry.example.com/shop/worker:2.0.1
`)
	injected := injectedByBinary(ctx, t, podYAML)

	t.Run("baseline refuses", func(t *testing.T) {
		pod := injected.DeepCopy()
		pod.Namespace = baseline
		err := c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+baseline+"/pods?dryRun=All", pod, nil)
		if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") || !strings.Contains(err.Error(), "hostPath") || !strings.Contains(err.Error(), inject.VolumePodLogs) {
			t.Errorf("created in a baseline namespace: %v, want a PodSecurity refusal naming the hostPath volume %s", err, inject.VolumePodLogs)
		}
	})

	stored := createIn(ctx, t, c, privileged, injected)
	if stored.UID == "" {
		t.Fatal("the stored pod has no uid")
	}
	var vol *corev1.Volume
	for i, v := range stored.Spec.Volumes {
		if v.Name == inject.VolumePodLogs {
			vol = &stored.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.HostPath == nil || vol.HostPath.Path != "/var/log/pods" {
		t.Fatalf("stored volumes %s, want hostPath /var/log/pods", mustJSON(t, stored.Spec.Volumes))
	}
	var mounts []string
	for _, ctr := range slices.Concat(stored.Spec.InitContainers, stored.Spec.Containers) {
		for _, m := range ctr.VolumeMounts {
			if m.Name != inject.VolumePodLogs {
				continue
			}
			mounts = append(mounts, ctr.Name)
			if !m.ReadOnly || m.SubPath != "" || m.MountPath != inject.PodLogsDir {
				t.Errorf("container %s mounts the pod logs as %+v, want read-only at %s", ctr.Name, m, inject.PodLogsDir)
			}
			dir := expandFromDownwardAPI(t, stored, ctr, m.SubPathExpr)
			if want := stored.Namespace + "_" + stored.Name + "_" + string(stored.UID); dir != want {
				t.Errorf("the mount selects %q of /var/log/pods, want the pod's own directory %q", dir, want)
			}
		}
	}
	if !slices.Equal(mounts, []string{inject.SidecarName}) {
		t.Errorf("containers mounting the pod logs: %v, want only the sidecar", mounts)
	}
	sidecar := stored.Spec.InitContainers[0]
	if sc := sidecar.SecurityContext; sc == nil || sc.RunAsGroup == nil || *sc.RunAsGroup != 0 || sc.RunAsUser == nil || *sc.RunAsUser != 1000 {
		t.Errorf("sidecar securityContext %+v, want the app's user 1000 in group 0 (the log files are root:root 0640)", sidecar.SecurityContext)
	}
	cfg := stored.Annotations[inject.AnnotationConfig]
	for _, want := range []string{"path: " + inject.PodLogsDir + "/*/*.log", "format: cri", "- " + inject.PodLogsDir + "/outrider/*"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the sidecar's configuration lacks %q:\n%s", want, cfg)
		}
	}
	validateConfig(ctx, t, cfg, sidecar)
}
