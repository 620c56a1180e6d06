package inject

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject/internal/jsonpatch"
)

// meshPod reads a mesh fixture of testdata and sets its sidecar order.
func meshPod(t *testing.T, file, order string) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	if err := json.Unmarshal(readPod(t, file), &pod); err != nil {
		t.Fatal(err)
	}
	if order == "" {
		delete(pod.Annotations, AnnotationSidecarOrder)
	} else {
		pod.Annotations[AnnotationSidecarOrder] = order
	}
	return &pod
}

func initNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	return names
}

// TestSidecarOrder checks where the native sidecar (and the classic init
// container) lands among the init containers of Istio's and Linkerd's injectors.
func TestSidecarOrder(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	tests := []struct {
		name, file, order, mode string
		want                    []string
		warn                    string
	}{
		{"istio first", "testdata/istio-after-mesh.pod.yaml", OrderFirst, "", []string{"outrider", "istio-init", "istio-proxy"}, ""},
		{"istio default", "testdata/istio-after-mesh.pod.yaml", "", "", []string{"outrider", "istio-init", "istio-proxy"}, ""},
		{"istio after-mesh", "testdata/istio-after-mesh.pod.yaml", OrderAfterMesh, "", []string{"istio-init", "istio-proxy", "outrider"}, ""},
		{"linkerd first", "testdata/linkerd-after-mesh.pod.yaml", OrderFirst, "", []string{"outrider", "linkerd-init", "linkerd-proxy"}, ""},
		{"linkerd after-mesh", "testdata/linkerd-after-mesh.pod.yaml", OrderAfterMesh, "", []string{"linkerd-init", "linkerd-proxy", "outrider"}, ""},
		{"linkerd after-mesh classic", "testdata/linkerd-after-mesh.pod.yaml", OrderAfterMesh, ModeClassic, []string{"linkerd-init", "linkerd-proxy", "outrider-init"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := meshPod(t, tt.file, tt.order)
			if tt.mode != "" {
				pod.Annotations[AnnotationSidecarMode] = tt.mode
			}
			req := requestFor(t, pod)
			patched, _ := applyPatch(t, in, req, in.Mutate(req))
			if got := initNames(patched); !slices.Equal(got, tt.want) {
				t.Errorf("initContainers = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSidecarOrderCNI checks the warning for a mesh whose CNI plugin redirects the
// traffic before outrider, placed first, logs in to Vault, and that excluding
// Vault's port silences it.
func TestSidecarOrderCNI(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	cni := func(ann map[string]string) *corev1.Pod {
		pod := meshPod(t, "testdata/istio-after-mesh.pod.yaml", OrderFirst)
		pod.Spec.InitContainers[0].Name = "istio-validation"
		for k, v := range ann {
			pod.Annotations[k] = v
		}
		return pod
	}
	for _, tt := range []struct {
		name string
		ann  map[string]string
		warn bool
	}{
		{"no exclusion", nil, true},
		{"istio excludes 8200", map[string]string{istioExcludeOutboundPorts: "5432, 8200"}, false},
		{"linkerd skips a range", map[string]string{linkerdSkipOutboundPorts: "8000-8300"}, false},
		{"another port", map[string]string{istioExcludeOutboundPorts: "5432"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := in.Mutate(requestFor(t, cni(tt.ann)))
			warned := slices.ContainsFunc(resp.Warnings, func(w string) bool { return strings.Contains(w, "CNI plugin (istio-validation)") })
			if warned != tt.warn {
				t.Errorf("warned = %v, want %v: %v", warned, tt.warn, resp.Warnings)
			}
		})
	}
}

// TestSidecarOrderRegularProxy checks that after-mesh is denied when the mesh's
// proxy is a regular container, which starts after every init container.
func TestSidecarOrderRegularProxy(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	pod := meshPod(t, "testdata/istio-after-mesh.pod.yaml", OrderAfterMesh)
	proxy := pod.Spec.InitContainers[1]
	proxy.RestartPolicy, proxy.StartupProbe = nil, nil
	pod.Spec.InitContainers = pod.Spec.InitContainers[:1]
	pod.Spec.Containers = append(pod.Spec.Containers, proxy)
	resp := in.Mutate(requestFor(t, pod))
	if resp.Allowed || !strings.Contains(resp.Result.Message, AnnotationSidecarOrder) || !strings.Contains(resp.Result.Message, `"istio-proxy" is a regular container`) {
		t.Fatalf("allowed=%v %v; want a denial naming %s and the regular istio-proxy", resp.Allowed, resp.Result, AnnotationSidecarOrder)
	}
	pod.Annotations[AnnotationSidecarOrder] = "sideways"
	if resp := in.Mutate(requestFor(t, pod)); resp.Allowed || !strings.Contains(resp.Result.Message, AnnotationSidecarOrder+`: must be "first"`) {
		t.Errorf("sidecar-order sideways: %v, want a denial", resp.Result)
	}
}

// TestReorderOnReinvocation injects a pod before the mesh's injector adds its
// containers (the mesh's webhook called after outrider's), then passes the pod with
// the mesh's containers added through the webhook again (reinvocationPolicy:
// IfNeeded): outrider's sidecar goes back to where its order puts it, and a third
// pass changes nothing.
func TestReorderOnReinvocation(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	istio := meshPod(t, "testdata/istio-after-mesh.pod.yaml", "")
	meshInits := istio.Spec.InitContainers
	for _, order := range []string{OrderAfterMesh, OrderFirst} {
		t.Run(order, func(t *testing.T) {
			pod := meshPod(t, "testdata/istio-after-mesh.pod.yaml", order)
			pod.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate:1"}}
			req := requestFor(t, pod)
			injected, _ := applyPatch(t, in, req, in.Mutate(req))
			if got := initNames(injected); !slices.Equal(got, []string{"outrider", "migrate"}) {
				t.Fatalf("before the mesh: initContainers = %v", got)
			}
			// Istio's injector puts its init containers first, which is after-mesh
			// already (TestSidecarOrder); a mesh injector that appends them leaves
			// outrider before them.
			want := []string{"migrate", "istio-init", "istio-proxy", "outrider"}
			injected.Spec.InitContainers = append(injected.Spec.InitContainers, meshInits...)
			if order == OrderFirst {
				want = []string{"outrider", "istio-init", "istio-proxy", "migrate"}
				injected.Spec.InitContainers = append(slices.Clone(meshInits), injected.Spec.InitContainers[:2]...)
			}
			req = requestFor(t, injected)
			resp := in.Mutate(req)
			if !resp.Allowed || resp.Patch == nil {
				t.Fatalf("reinvocation: allowed=%v patch=%s, want the sidecar moved", resp.Allowed, resp.Patch)
			}
			_, result := in.mutate(req)
			if result != ResultReordered {
				t.Errorf("result %q, want %q", result, ResultReordered)
			}
			out, err := jsonpatch.Apply(req.Object.Raw, resp.Patch)
			if err != nil {
				t.Fatalf("apply %s: %v", resp.Patch, err)
			}
			var moved corev1.Pod
			if err := json.Unmarshal(out, &moved); err != nil {
				t.Fatal(err)
			}
			if got := initNames(&moved); !slices.Equal(got, want) {
				t.Errorf("after reinvocation: initContainers = %v, want %v", got, want)
			}
			if i := slices.Index(initNames(&moved), SidecarName); i < 0 || moved.Spec.InitContainers[i].RestartPolicy == nil || moved.Spec.InitContainers[i].StartupProbe == nil {
				t.Errorf("the moved sidecar lost its restartPolicy or startup probe")
			}
			if again := in.Mutate(podRequest(out, moved.Namespace)); !again.Allowed || again.Patch != nil {
				t.Errorf("third pass: patch %s, want none", again.Patch)
			}
		})
	}
}

// TestStdout checks what outrider.dev/stdout adds: the node's pod logs, read-only,
// restricted to the pod's own directory, the sidecar in group 0, and a source
// tailing every container's CRI file but outrider's.
func TestStdout(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	pod := basePod()
	pod.Annotations[AnnotationStdout] = "true"
	req := requestFor(t, pod)
	patched, _ := applyPatch(t, in, req, in.Mutate(req))
	var vol *corev1.Volume
	for i, v := range patched.Spec.Volumes {
		if v.Name == VolumePodLogs {
			vol = &patched.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.HostPath == nil || vol.HostPath.Path != "/var/log/pods" || vol.HostPath.Type == nil || *vol.HostPath.Type != corev1.HostPathDirectory {
		t.Fatalf("volume %s = %+v, want hostPath /var/log/pods of type Directory", VolumePodLogs, vol)
	}
	sidecar := patched.Spec.InitContainers[0]
	var mounts []corev1.VolumeMount
	for _, c := range append(patched.Spec.InitContainers, patched.Spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if m.Name == VolumePodLogs {
				if c.Name != SidecarName {
					t.Errorf("container %s mounts the node's pod logs", c.Name)
				}
				mounts = append(mounts, m)
			}
		}
	}
	if len(mounts) != 1 || !mounts[0].ReadOnly || mounts[0].SubPath != "" || mounts[0].SubPathExpr != "$(POD_NAMESPACE)_$(POD_NAME)_$(POD_UID)" || mounts[0].MountPath != PodLogsDir {
		t.Errorf("mounts = %+v, want one read-only mount at %s with subPathExpr of the pod's directory", mounts, PodLogsDir)
	}
	fields := map[string]string{}
	for _, e := range sidecar.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fields[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	for name, path := range map[string]string{"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name", "POD_UID": "metadata.uid"} {
		if fields[name] != path {
			t.Errorf("sidecar env %s from %q, want %s (the subPathExpr needs it)", name, fields[name], path)
		}
	}
	if sc := sidecar.SecurityContext; sc.RunAsGroup == nil || *sc.RunAsGroup != 0 || *sc.RunAsUser == 0 || !*sc.RunAsNonRoot {
		t.Errorf("sidecar security context %+v, want a non-root user in group 0", sc)
	}
	var cfg struct {
		Logs struct {
			Sources []map[string]any `json:"sources"`
		} `json:"logs"`
	}
	if err := yaml.Unmarshal([]byte(patched.Annotations[AnnotationConfig]), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Logs.Sources) != 1 {
		t.Fatalf("sources = %v, want the stdout source", cfg.Logs.Sources)
	}
	src := cfg.Logs.Sources[0]
	if src["path"] != PodLogsDir+"/*/*.log" || src["format"] != "cri" || src["path_metadata"] != "kubernetes_container" {
		t.Errorf("source = %v", src)
	}
	if ex, _ := json.Marshal(src["exclude"]); string(ex) != `["/var/log/outrider-pod/outrider/*","/var/log/outrider-pod/outrider-init/*"]` {
		t.Errorf("exclude = %s, want outrider's own directories", ex)
	}

	for _, tt := range []struct {
		name string
		ann  map[string]string
		d    func(*Defaults)
		want string
	}{
		{"not a boolean", map[string]string{AnnotationStdout: "yes please"}, nil, AnnotationStdout + `: "yes please" is not a boolean`},
		{"no loki", map[string]string{AnnotationStdout: "true"}, func(d *Defaults) { d.LokiURL = "" }, AnnotationStdout + ": stdout and stderr have nowhere to go"},
		{"logs in the pod log dir", map[string]string{AnnotationStdout: "true", AnnotationLogs: PodLogsDir + "/x/*.log"}, nil, "overlaps " + PodLogsDir},
		{"volume taken", map[string]string{AnnotationStdout: "true"}, nil, `volume named "outrider-pod-logs"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := testDefaults()
			if tt.d != nil {
				tt.d(&d)
			}
			pod := basePod()
			for k, v := range tt.ann {
				pod.Annotations[k] = v
			}
			if tt.name == "volume taken" {
				pod.Spec.Volumes = []corev1.Volume{{Name: VolumePodLogs}}
			}
			resp := newTestInjector(t, d).Mutate(requestFor(t, pod))
			if resp.Allowed || !strings.Contains(resp.Result.Message, tt.want) {
				t.Errorf("allowed=%v %v, want a denial with %q", resp.Allowed, resp.Result, tt.want)
			}
		})
	}
}

// TestMetricsExporterEnv checks OTEL_METRICS_EXPORTER in the app containers: none
// without a metrics destination, otlp with one, and left alone when the container
// sets it or sends its OTLP elsewhere itself.
func TestMetricsExporterEnv(t *testing.T) {
	for _, tt := range []struct {
		name     string
		endpoint string // the injector's metrics_endpoint
		env      []corev1.EnvVar
		want     string // "" for not added
	}{
		{"no destination", "", nil, "none"},
		{"destination", "http://prometheus:9090/api/v1/otlp/v1/metrics", nil, "otlp"},
		{"set by the container", "", []corev1.EnvVar{{Name: "OTEL_METRICS_EXPORTER", Value: "prometheus"}}, ""},
		{"own collector", "", []corev1.EnvVar{{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://collector:4318"}}, ""},
		{"own metrics endpoint", "", []corev1.EnvVar{{Name: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", Value: "http://mimir:8080/otlp/v1/metrics"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := testDefaults()
			d.MetricsEndpoint = tt.endpoint
			in := newTestInjector(t, d)
			pod := basePod()
			pod.Spec.Containers[0].Env = tt.env
			req := requestFor(t, pod)
			patched, _ := applyPatch(t, in, req, in.Mutate(req))
			got := ""
			n := 0
			for _, e := range patched.Spec.Containers[0].Env {
				if e.Name == "OTEL_METRICS_EXPORTER" {
					got = e.Value
					n++
				}
			}
			if tt.want == "" {
				for _, e := range tt.env {
					if e.Name == "OTEL_METRICS_EXPORTER" && (n != 1 || got != e.Value) {
						t.Errorf("OTEL_METRICS_EXPORTER = %q (%d times), want the container's %q", got, n, e.Value)
					}
				}
				if len(tt.env) > 0 && tt.env[0].Name != "OTEL_METRICS_EXPORTER" && n != 0 {
					t.Errorf("OTEL_METRICS_EXPORTER = %q added, want none", got)
				}
				return
			}
			if got != tt.want || n != 1 {
				t.Errorf("OTEL_METRICS_EXPORTER = %q (%d times), want %q", got, n, tt.want)
			}
			hasExporter := strings.Contains(patched.Annotations[AnnotationConfig], "otlp_metrics:")
			if hasExporter != (tt.endpoint != "") {
				t.Errorf("exporters.otlp_metrics in the configuration: %v, want %v", hasExporter, tt.endpoint != "")
			}
		})
	}
	t.Run("annotation", func(t *testing.T) {
		d := testDefaults()
		d.LokiURL, d.TempoEndpoint = "", ""
		in := newTestInjector(t, d)
		pod := basePod()
		delete(pod.Annotations, AnnotationRole)
		delete(pod.Annotations, AnnotationSecretPrefix+"db")
		pod.Annotations[AnnotationMetricsEndpoint] = "mimir:8080"
		resp := in.Mutate(requestFor(t, pod))
		if resp.Allowed || !strings.Contains(resp.Result.Message, AnnotationMetricsEndpoint+": the sidecar's configuration would be invalid: exporters.otlp_metrics") {
			t.Errorf("a metrics endpoint without a scheme: %v, want a denial naming %s", resp.Result, AnnotationMetricsEndpoint)
		}
		if _, err := NewInjector(Defaults{Image: "x", MetricsEndpoint: "mimir:8080"}); err == nil || !strings.Contains(err.Error(), "metrics_endpoint (--metrics-endpoint)") {
			t.Errorf("NewInjector with a bad metrics_endpoint: %v", err)
		}
	})
}
