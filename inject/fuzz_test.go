package inject

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/inject/internal/jsonpatch"
)

// encodeAnnotations writes an annotation map as the fuzz input: entries separated by
// "\x1e", key and value by the first "=". Keys without a '/' get Prefix.
func encodeAnnotations(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, strings.TrimPrefix(k, Prefix)+"="+m[k])
	}
	return strings.Join(parts, "\x1e")
}

func decodeAnnotations(s string) map[string]string {
	m := map[string]string{AnnotationInject: "true"}
	for _, e := range strings.Split(s, "\x1e") {
		k, v, _ := strings.Cut(e, "=")
		if k == "" {
			continue
		}
		if !strings.Contains(k, "/") {
			k = Prefix + k
		}
		m[k] = v
	}
	return m
}

// fuzzPod is a pod to inject whose shape the fuzzer chooses with the bits of shape.
func fuzzPod(annotations map[string]string, shape uint8) *corev1.Pod {
	pod := basePod()
	pod.Annotations = annotations
	c := &pod.Spec.Containers[0]
	if shape&1 != 0 {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "kube-api-access-abcde", MountPath: serviceAccountDir, ReadOnly: true})
	}
	if shape&2 != 0 {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: "init", Image: "init:1"})
	}
	if shape&4 != 0 {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "proxy", Image: "proxy:1", Env: []corev1.EnvVar{{Name: "OTEL_SERVICE_NAME", Value: "p"}}})
	}
	if shape&8 != 0 {
		uid := int64(1000)
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid}
	}
	if shape&16 != 0 {
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	if shape&32 != 0 {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "logs", MountPath: "/var/log/app"})
	}
	if shape&64 != 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	}
	if shape&128 != 0 {
		pod.Annotations["prometheus.io/scrape"] = "true"
	}
	return pod
}

// FuzzAnnotations runs Mutate on pods with arbitrary annotations. It must never
// panic; a denial names an annotation in each of its problems; an allowed patch
// applies, gives a pod that passes checkPod and whose configuration the agent loads,
// and a second pass over that pod changes nothing.
func FuzzAnnotations(f *testing.F) {
	pods, _ := filepath.Glob("testdata/*.pod.yaml")
	for _, file := range pods {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var pod corev1.Pod
		if err := yaml.Unmarshal(data, &pod); err != nil {
			f.Fatal(err)
		}
		f.Add(encodeAnnotations(pod.Annotations), uint8(1))
	}
	f.Add("role=web\x1esecret-db=secret/data/db\x1elogs=/var/log/app/*.log", uint8(0))
	f.Add("role=web\x1etemplate-a={{ with secret \"x\" }}{{ .Data.a }}{{ end }}\x1ereload=signal:HUP", uint8(3))
	f.Add("sidecar-mode=classic\x1erole=r\x1esecret-x=a/b\x1esecret-x-format=raw\x1esecret-x-key=k\x1ememory-limit=none", uint8(255))
	f.Add("sentry-dsn-secret=s/k\x1eotlp-protocol=grpc\x1econtainer=web,proxy", uint8(4))
	f.Add("service=$(X)$${Y}\x1eloki-tenant=t\x1equeue-size-limit=64Mi\x1elogs-size-limit=1Gi\x1elogs=/a/b.log,/c/*.log", uint8(8))
	f.Add("inject=maybe\x1esecret-.x=y", uint8(0))
	f.Add("stdout=true\x1esidecar-order=after-mesh\x1emetrics-endpoint=http://prometheus:9090/api/v1/otlp/v1/metrics\x1erole=r\x1esecret-x=a/b", uint8(2))

	d := testDefaults()
	d.SentryDSNSecret = "sentry/dsn"
	in := newTestInjector(f, d)
	dsnDir := f.TempDir()
	f.Fuzz(func(t *testing.T, annotations string, shape uint8) {
		pod := fuzzPod(decodeAnnotations(annotations), shape)
		req := requestFor(t, pod)
		resp := in.Mutate(req)
		if resp.UID != req.UID {
			t.Fatalf("uid %q, want %q", resp.UID, req.UID)
		}
		if !resp.Allowed {
			msg := strings.TrimPrefix(resp.Result.Message, "outrider: ")
			lines := []string{msg}
			if strings.Contains(msg, " problems:\n- ") {
				lines = strings.Split(msg, "\n- ")[1:]
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, Prefix) || !strings.Contains(l, ": ") {
					t.Fatalf("a problem does not start with an annotation: %q", l)
				}
			}
			return
		}
		if resp.Patch == nil {
			if pod.Annotations[AnnotationInject] != "" && pod.Annotations[AnnotationStatus] != StatusInjected {
				if b, err := parseBoolish(pod.Annotations[AnnotationInject]); err == nil && b {
					t.Fatal("an opted-in pod was allowed without a patch")
				}
			}
			return
		}
		patched, err := jsonpatch.Apply(req.Object.Raw, resp.Patch)
		if err != nil {
			t.Fatalf("the patch does not apply: %v", err)
		}
		out, err := decodePod(patched)
		if err != nil {
			t.Fatalf("the patched pod does not decode: %v", err)
		}
		if errs := checkPod(out); len(errs) > 0 {
			j, _ := json.Marshal(pod.Annotations)
			t.Fatalf("annotations %s: patched pod: %s", j, strings.Join(errs, "; "))
		}
		if _, err := config.Parse(AnnotationConfig, []byte(withSentryDSNFile(t, dsnDir, out.Annotations[AnnotationConfig]))); err != nil {
			t.Fatalf("the delivered configuration does not load: %v", err)
		}
		again := in.Mutate(podRequest(patched, req.Namespace))
		if !again.Allowed || again.Patch != nil {
			t.Fatalf("second pass: allowed=%v patch=%s", again.Allowed, again.Patch)
		}
	})
}

// parseBoolish is how wantsInjection reads the opt-in.
func parseBoolish(s string) (bool, error) {
	p := basePod()
	p.Annotations = map[string]string{AnnotationInject: s}
	ok, probs := wantsInjection(p)
	if len(probs) > 0 {
		return false, os.ErrInvalid
	}
	return ok, nil
}
