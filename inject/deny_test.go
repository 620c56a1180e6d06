package inject

import (
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// basePod is a valid pod to inject: one container and one secret.
func basePod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop",
			Annotations: map[string]string{
				AnnotationInject:              "true",
				AnnotationRole:                "web",
				AnnotationSecretPrefix + "db": "secret/data/db",
			},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Command: []string{"/bin/web"}}}},
	}
}

// TestDenied checks that each invalid annotation denies the pod with a message that
// names the annotation and says what to do.
func TestDenied(t *testing.T) {
	tests := []struct {
		name     string
		defaults func(*Defaults)
		set      map[string]string // annotations added ("" value with del removes)
		del      []string
		pod      func(*corev1.Pod)
		want     []string // substrings of the message, the first "<annotation>: …"
	}{
		{name: "inject not a boolean", set: map[string]string{AnnotationInject: "yes please"}, want: []string{AnnotationInject + `: "yes please" is not a boolean`}},
		{name: "sidecar mode", set: map[string]string{AnnotationSidecarMode: "sidecar"}, want: []string{AnnotationSidecarMode + `: must be "native"`}},
		{name: "image with space", set: map[string]string{AnnotationImage: "outrider: latest"}, want: []string{AnnotationImage + ":", "space"}},
		{name: "log level", set: map[string]string{AnnotationLogLevel: "loud"}, want: []string{AnnotationLogLevel + ": must be debug"}},
		{name: "otlp protocol", set: map[string]string{AnnotationOTLPProtocol: "http"}, want: []string{AnnotationOTLPProtocol + `: must be "http/protobuf"`}},
		{name: "no role", del: []string{AnnotationRole}, want: []string{AnnotationRole + ": required with secrets"}},
		{name: "no vault address", defaults: func(d *Defaults) { d.VaultAddr = "" }, want: []string{AnnotationVaultAddr + ": required with secrets", "--vault-addr"}},
		{name: "vault address without scheme", set: map[string]string{AnnotationVaultAddr: "vault:8200"}, want: []string{AnnotationVaultAddr + ": the sidecar's configuration would be invalid: secrets.vault.address", "http:// or https://"}},
		{name: "auth method", set: map[string]string{AnnotationAuthMethod: "approle"}, want: []string{AnnotationAuthMethod + ": must be kubernetes or jwt"}},
		{name: "auth path", set: map[string]string{AnnotationAuthPath: "auth/../sys"}, want: []string{AnnotationAuthPath + `: "auth/../sys" is not an auth mount path`}},
		{name: "vault ca secret", set: map[string]string{AnnotationVaultCASecret: "Vault_CA"}, want: []string{AnnotationVaultCASecret + `: "Vault_CA" is not a Secret name`}},
		{name: "secret file name", set: map[string]string{AnnotationSecretPrefix + ".hidden": "secret/data/x"}, want: []string{AnnotationSecretPrefix + `.hidden: ".hidden" is not a file name`}},
		{name: "empty secret path", set: map[string]string{AnnotationSecretPrefix + "db": " "}, want: []string{AnnotationSecretPrefix + "db: is empty; give the Vault path"}},
		{name: "secret path with slash", set: map[string]string{AnnotationSecretPrefix + "db": "/secret/data/db"}, want: []string{AnnotationSecretPrefix + "db: the sidecar's configuration would be invalid: secrets.files[0].source", "must not start with '/'"}},
		{name: "secret and template", set: map[string]string{AnnotationTemplatePrefix + "db": "x"}, want: []string{AnnotationTemplatePrefix + `db: file "db" is also defined by ` + AnnotationSecretPrefix + "db"}},
		{name: "template syntax", set: map[string]string{AnnotationTemplatePrefix + "cfg": "{{ with secret \"a\" }}{{ nope }}{{ end }}"}, want: []string{AnnotationTemplatePrefix + "cfg: the sidecar's configuration would be invalid: secrets.files[0].template", "nope"}},
		{name: "format", set: map[string]string{AnnotationSecretPrefix + "db-format": "xml"}, want: []string{AnnotationSecretPrefix + `db-format: must be env, json, yaml, properties or raw, got "xml"`}},
		{name: "raw without key", set: map[string]string{AnnotationSecretPrefix + "db-format": "raw"}, want: []string{AnnotationSecretPrefix + "db-format: raw writes one value: add " + AnnotationSecretPrefix + "db-key"}},
		{name: "key with env", set: map[string]string{AnnotationSecretPrefix + "db-format": "env", AnnotationSecretPrefix + "db-key": "password"}, want: []string{AnnotationSecretPrefix + "db-key: applies only to format raw"}},
		{name: "format on template", set: map[string]string{AnnotationTemplatePrefix + "cfg": "x", AnnotationTemplatePrefix + "cfg-format": "json"}, want: []string{AnnotationTemplatePrefix + "cfg-format: applies only to " + AnnotationSecretPrefix + "cfg"}},
		{name: "suffix without file", set: map[string]string{AnnotationSecretPrefix + "cache-perms": "0400"}, want: []string{AnnotationSecretPrefix + "cache-perms: there is no " + AnnotationSecretPrefix + "cache annotation"}},
		{name: "world-readable perms", set: map[string]string{AnnotationSecretPrefix + "db-perms": "0644"}, want: []string{AnnotationSecretPrefix + `db-perms: "0644" gives access to other users`}},
		{name: "perms not octal", set: map[string]string{AnnotationSecretPrefix + "db-perms": "rw-r-----"}, want: []string{AnnotationSecretPrefix + `db-perms: "rw-r-----" is not an octal mode`}},
		{name: "secrets dir relative", set: map[string]string{AnnotationSecretsDir: "secrets"}, want: []string{AnnotationSecretsDir + `: "secrets" must be an absolute directory`}},
		{name: "secrets dir reserved", set: map[string]string{AnnotationSecretsDir: "/etc/outrider/x"}, want: []string{AnnotationSecretsDir + `: "/etc/outrider/x" overlaps /etc/outrider`}},
		{name: "secrets size", set: map[string]string{AnnotationSecretsSizeLimit: "lots"}, want: []string{AnnotationSecretsSizeLimit + `: "lots" is not a Kubernetes quantity`}},
		{name: "reload method", set: map[string]string{AnnotationReload: "kill:9"}, want: []string{AnnotationReload + `: "kill:9": write none, signal:<SIG>`}},
		{name: "reload signal unknown", set: map[string]string{AnnotationReload: "signal:BOOM"}, want: []string{AnnotationReload + ": the sidecar's configuration would be invalid: secrets.reload.signal", "unknown signal"}},
		{name: "reload signal without process", set: map[string]string{AnnotationReload: "signal:HUP"}, pod: func(p *corev1.Pod) { p.Spec.Containers[0].Command = nil },
			want: []string{AnnotationReloadProcess + ": required with " + AnnotationReload}},
		{name: "reload process name", set: map[string]string{AnnotationReload: "signal:HUP", AnnotationReloadProcess: "/bin/web"}, want: []string{AnnotationReloadProcess + ": the sidecar's configuration would be invalid: secrets.reload.process"}},
		{name: "reload signal without shared pid namespace", set: map[string]string{AnnotationReload: "signal:HUP"}, pod: func(p *corev1.Pod) { no := false; p.Spec.ShareProcessNamespace = &no },
			want: []string{AnnotationReload + ": signal reload needs spec.shareProcessNamespace: true"}},
		{name: "reload http remote", set: map[string]string{AnnotationReload: "http:http://web.shop:8080/reload"}, want: []string{AnnotationReload + ": the sidecar's configuration would be invalid: secrets.reload.url", "loopback"}},
		{name: "reload process without signal", set: map[string]string{AnnotationReloadProcess: "web"}, want: []string{AnnotationReloadProcess + ": applies only to " + AnnotationReload}},
		{name: "vault annotation without secrets", del: []string{AnnotationSecretPrefix + "db"}, want: []string{AnnotationRole + ": is set but the pod has no secrets"}},
		{name: "logs relative", set: map[string]string{AnnotationLogs: "logs/app.log"}, want: []string{AnnotationLogs + `: "logs/app.log" must be an absolute path`}},
		{name: "logs in proc", set: map[string]string{AnnotationLogs: "/proc/self/fd/1"}, want: []string{AnnotationLogs + `: "/proc/self/fd/1": its directory "/proc/self/fd" overlaps /proc`}},
		{name: "logs glob in directory", set: map[string]string{AnnotationLogs: "/var/log/*/app.log"}, want: []string{AnnotationLogs + `: "/var/log/*/app.log": its directory`, "glob"}},
		{name: "logs nested", set: map[string]string{AnnotationLogs: "/var/log/app/a.log,/var/log/app/sub/b.log"}, want: []string{AnnotationLogs + ": directories /var/log/app and /var/log/app/sub are nested"}},
		{name: "logs in secrets dir", set: map[string]string{AnnotationLogs: "/vault/secrets/app.log"}, want: []string{AnnotationLogs + `: "/vault/secrets/app.log": its directory overlaps the secrets directory`}},
		{name: "logs bad glob", set: map[string]string{AnnotationLogs: "/var/log/app/[.log"}, want: []string{AnnotationLogs + `: "/var/log/app/[.log": the file part "[.log" is not a valid glob`}},
		{name: "logs empty", set: map[string]string{AnnotationLogs: " , "}, want: []string{AnnotationLogs + ": is empty"}},
		{name: "logs without loki", defaults: func(d *Defaults) { d.LokiURL = "" }, set: map[string]string{AnnotationLogs: "/var/log/app/*.log"}, want: []string{AnnotationLogs + ": the files have nowhere to go: set " + AnnotationLokiURL}},
		{name: "logs size without logs", set: map[string]string{AnnotationLogsSizeLimit: "1Gi"}, want: []string{AnnotationLogsSizeLimit + ": is set but there is no " + AnnotationLogs}},
		{name: "loki url", set: map[string]string{AnnotationLokiURL: "ftp://loki"}, want: []string{AnnotationLokiURL + ": the sidecar's configuration would be invalid: exporters.loki.url"}},
		{name: "loki tenant", set: map[string]string{AnnotationLokiTenant: "a\nb"}, want: []string{AnnotationLokiTenant + ": the sidecar's configuration would be invalid: exporters.loki.tenant_id"}},
		{name: "loki tenant without loki", defaults: func(d *Defaults) { d.LokiURL = "" }, set: map[string]string{AnnotationLokiTenant: "t"}, want: []string{AnnotationLokiTenant + ": is set but logs go nowhere"}},
		{name: "tempo endpoint without port", set: map[string]string{AnnotationTempoEndpoint: "http://tempo"}, want: []string{AnnotationTempoEndpoint + ": the sidecar's configuration would be invalid: exporters.otlp.endpoint", "no port"}},
		{name: "cpu request", set: map[string]string{AnnotationCPURequest: "lots"}, want: []string{AnnotationCPURequest + `: "lots" is not a Kubernetes quantity`}},
		{name: "cpu request above limit", set: map[string]string{AnnotationCPURequest: "2", AnnotationCPULimit: "1"}, want: []string{AnnotationCPURequest + ": 2 is more than the limit 1"}},
		{name: "memory request above limit", set: map[string]string{AnnotationMemoryRequest: "1Gi"}, want: []string{AnnotationMemoryRequest + ": 1Gi is more than the limit"}},
		{name: "memory limit too small", set: map[string]string{AnnotationMemoryLimit: "16Mi", AnnotationMemoryRequest: "16Mi"}, want: []string{AnnotationMemoryLimit + ": 16Mi is too small"}},
		{name: "memory fraction", set: map[string]string{AnnotationMemoryRequest: "100m"}, want: []string{AnnotationMemoryRequest + `: "100m" is not a whole number of bytes`}},
		{name: "negative cpu", set: map[string]string{AnnotationCPULimit: "-1"}, want: []string{AnnotationCPULimit + `: "-1" must be positive`}},
		{name: "queue too small", set: map[string]string{AnnotationQueueSizeLimit: "10Mi"}, want: []string{AnnotationQueueSizeLimit + ": 10Mi is too small; give at least 64Mi"}},
		{name: "unknown annotation", set: map[string]string{Prefix + "secert-db": "x"}, want: []string{Prefix + "secert-db: unknown annotation"}},
		{name: "unknown container", set: map[string]string{AnnotationContainer: "web,nope"}, want: []string{AnnotationContainer + `: the pod has no container "nope"; its containers are web`}},
		{name: "empty container list", set: map[string]string{AnnotationContainer: ","}, want: []string{AnnotationContainer + ": is empty"}},
		{name: "service with comma", set: map[string]string{AnnotationService: "a,b"}, want: []string{AnnotationService + `: "a,b" holds`}},
		{name: "sentry secret reference", set: map[string]string{AnnotationSentryDSNSecret: "sentry"}, want: []string{AnnotationSentryDSNSecret + `: "sentry" must be <secret>/<key>`}},
		{name: "sentry dsn in an annotation", set: map[string]string{AnnotationSentryDSN: "https://k@s.io/1"},
			want: []string{AnnotationSentryDSN + ": a DSN in an annotation would be copied in clear into the pod's outrider.dev/config annotation; put it in a Secret of the pod's namespace and name it with outrider.dev/sentry-dsn-secret: <secret>/<key>"}},
		{name: "nothing to do", defaults: func(d *Defaults) { *d = Defaults{Image: d.Image} }, del: []string{AnnotationRole, AnnotationSecretPrefix + "db"}, want: []string{AnnotationInject + ": the sidecar would have nothing to do"}},
		{name: "host network", pod: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, want: []string{AnnotationInject + ": the pod uses hostNetwork"}},
		{name: "windows", pod: func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }, want: []string{AnnotationInject + ": the sidecar runs on Linux"}},
		{name: "port clash", pod: func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 4318}} },
			want: []string{AnnotationInject + `: container "web" declares port 4318, which the sidecar listens on (OTLP/HTTP)`}},
		{name: "volume name clash", pod: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: VolumeData, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, want: []string{AnnotationInject + `: the pod already has a volume named "outrider-data"`}},
		{name: "container name clash", pod: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: SidecarName, Image: "x"}}
		}, want: []string{AnnotationInject + `: the pod already has a container named "outrider"`}},
		{name: "mount clash", pod: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "vault", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "vault", MountPath: "/vault/secrets/"}}
		}, want: []string{AnnotationSecretsDir + `: container "web" already mounts volume "vault" at /vault/secrets`}},
		{name: "annotations too large", set: map[string]string{AnnotationTemplatePrefix + "big": strings.Repeat("x", 200<<10)},
			want: []string{AnnotationInject + ": the generated configuration", "past Kubernetes' limit"}},
		{name: "several problems", set: map[string]string{AnnotationSidecarMode: "x", AnnotationLogLevel: "y"}, want: []string{"outrider: 2 problems:", AnnotationSidecarMode + ":", AnnotationLogLevel + ":"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDefaults()
			if tt.defaults != nil {
				tt.defaults(&d)
			}
			in := newTestInjector(t, d)
			pod := basePod()
			for k, v := range tt.set {
				pod.Annotations[k] = v
			}
			for _, k := range tt.del {
				delete(pod.Annotations, k)
			}
			if tt.pod != nil {
				tt.pod(pod)
			}
			resp := in.Mutate(requestFor(t, pod))
			if resp.Allowed {
				t.Fatalf("allowed, want denied with %q", tt.want)
			}
			if resp.Result == nil || resp.Result.Code != http.StatusBadRequest || resp.UID != testUID {
				t.Fatalf("result %+v uid %q, want code 400 and the request's uid", resp.Result, resp.UID)
			}
			msg := resp.Result.Message
			if !strings.HasPrefix(msg, "outrider: ") {
				t.Errorf("message %q does not start with \"outrider: \"", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message does not contain %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestUntouched checks the requests that must be allowed without a patch.
func TestUntouched(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	tests := []struct {
		name string
		req  func() *admissionv1.AdmissionRequest
	}{
		{"no annotation", func() *admissionv1.AdmissionRequest {
			p := basePod()
			delete(p.Annotations, AnnotationInject)
			return requestFor(t, p)
		}},
		{"opted out", func() *admissionv1.AdmissionRequest {
			p := basePod()
			p.Annotations[AnnotationInject] = "false"
			p.Annotations[AnnotationSidecarMode] = "invalid but ignored"
			return requestFor(t, p)
		}},
		{"no annotations at all", func() *admissionv1.AdmissionRequest {
			p := basePod()
			p.Annotations = nil
			return requestFor(t, p)
		}},
		{"injected already", func() *admissionv1.AdmissionRequest {
			p := basePod()
			p.Annotations[AnnotationStatus] = StatusInjected
			return requestFor(t, p)
		}},
		{"update", func() *admissionv1.AdmissionRequest {
			r := requestFor(t, basePod())
			r.Operation = admissionv1.Update
			return r
		}},
		{"subresource", func() *admissionv1.AdmissionRequest {
			r := requestFor(t, basePod())
			r.SubResource = "ephemeralcontainers"
			return r
		}},
		{"not a pod", func() *admissionv1.AdmissionRequest {
			r := requestFor(t, basePod())
			r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
			r.Object = runtime.RawExtension{Raw: []byte(`{"kind":"Deployment"}`)}
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := in.Mutate(tt.req())
			if !resp.Allowed || resp.Patch != nil || resp.PatchType != nil || resp.UID != testUID {
				t.Errorf("got allowed=%v patch=%s uid=%q, want allowed without a patch", resp.Allowed, resp.Patch, resp.UID)
			}
		})
	}
}

// TestUndecodable checks that a request whose pod cannot be read is denied.
func TestUndecodable(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	resp := in.Mutate(podRequest([]byte(`{"spec":{"containers":"nope"}}`), "shop"))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "cannot decode the pod") {
		t.Errorf("got %+v, want a denial", resp.Result)
	}
	if resp := in.Mutate(nil); resp.Allowed {
		t.Error("a nil request was allowed")
	}
}

// TestNativeIsDefault checks the mode chosen without the annotation, by the injector's
// default and by the annotation.
func TestNativeIsDefault(t *testing.T) {
	for _, tt := range []struct {
		name, defaultMode, annotation string
		native                        bool
	}{
		{"default", "", "", true},
		{"injector classic", ModeClassic, "", false},
		{"annotation wins", ModeClassic, ModeNative, true},
		{"annotation classic", "", ModeClassic, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := testDefaults()
			d.SidecarMode = tt.defaultMode
			in := newTestInjector(t, d)
			pod := basePod()
			if tt.annotation != "" {
				pod.Annotations[AnnotationSidecarMode] = tt.annotation
			}
			req := requestFor(t, pod)
			patched, _ := applyPatch(t, in, req, in.Mutate(req))
			first := patched.Spec.InitContainers[0]
			if tt.native {
				if first.Name != SidecarName || first.RestartPolicy == nil || *first.RestartPolicy != corev1.ContainerRestartPolicyAlways || first.StartupProbe == nil {
					t.Errorf("initContainers[0] = %s (restartPolicy %v), want the native sidecar with a startup probe", first.Name, first.RestartPolicy)
				}
				if len(patched.Spec.Containers) != 1 {
					t.Errorf("%d containers, want the app's only", len(patched.Spec.Containers))
				}
				return
			}
			if first.Name != InitName || first.RestartPolicy != nil || first.Args[0] != "render" {
				t.Errorf("initContainers[0] = %s %v, want the render --once init container", first.Name, first.Args)
			}
			last := patched.Spec.Containers[len(patched.Spec.Containers)-1]
			if last.Name != SidecarName || last.StartupProbe != nil {
				t.Errorf("last container = %s, want the classic sidecar", last.Name)
			}
		})
	}
}

// TestEnvOfTargets checks which containers get the environment and that the app's
// own variables are kept.
func TestEnvOfTargets(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	pod := basePod()
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "proxy", Image: "p", Env: []corev1.EnvVar{{Name: "OTEL_SERVICE_NAME", Value: "mine"}}})
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "s"}}
	req := requestFor(t, pod)
	patched, _ := applyPatch(t, in, req, in.Mutate(req))
	env := func(c corev1.Container) map[string]string {
		m := map[string]string{}
		for _, e := range c.Env {
			m[e.Name] = e.Value
		}
		return m
	}
	byName := map[string]corev1.Container{}
	for _, c := range append(patched.Spec.InitContainers, patched.Spec.Containers...) {
		byName[c.Name] = c
	}
	if got := env(byName["web"])["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "http://127.0.0.1:4318" {
		t.Errorf("web: OTEL_EXPORTER_OTLP_ENDPOINT = %q, want http://127.0.0.1:4318", got)
	}
	if got := env(byName["proxy"])["OTEL_SERVICE_NAME"]; got != "mine" {
		t.Errorf("proxy: OTEL_SERVICE_NAME = %q, want its own value", got)
	}
	if _, ok := env(byName["setup"])["OTEL_SERVICE_NAME"]; ok || len(byName["setup"].VolumeMounts) > 0 {
		t.Error("init container setup got the environment or mounts without being named in " + AnnotationContainer)
	}
	if got := byName["web"].VolumeMounts; len(got) != 1 || got[0].MountPath != DefaultSecretsDir || !got[0].ReadOnly {
		t.Errorf("web mounts = %+v, want the secrets volume read-only at %s", got, DefaultSecretsDir)
	}
}

// TestDefaultsApplyOnlyWhereMissing checks that an annotation wins over the injector's
// default and that the default fills in when it is missing.
func TestDefaultsApplyOnlyWhereMissing(t *testing.T) {
	d := testDefaults()
	d.CPURequest, d.MemoryLimit = "15m", "none"
	in := newTestInjector(t, d)
	pod := basePod()
	pod.Annotations[AnnotationImage] = "mirror/outrider:1"
	req := requestFor(t, pod)
	patched, _ := applyPatch(t, in, req, in.Mutate(req))
	c := patched.Spec.InitContainers[0]
	if c.Image != "mirror/outrider:1" {
		t.Errorf("image %q, want the annotation's", c.Image)
	}
	if q := c.Resources.Requests.Cpu(); q.String() != "15m" {
		t.Errorf("cpu request %s, want the injector's 15m", q)
	}
	if _, ok := c.Resources.Limits["memory"]; ok {
		t.Error("memory limit set, want none")
	}
	if strings.Contains(patched.Annotations[AnnotationConfig], "memory_limit") {
		t.Error("runtime.memory_limit set without a memory limit")
	}
}

// TestNewInjectorRejectsBadDefaults checks that bad injector settings fail at start,
// naming the setting.
func TestNewInjectorRejectsBadDefaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*Defaults)
		want string
	}{
		{"no image", func(d *Defaults) { d.Image = "" }, "image: required"},
		{"mode", func(d *Defaults) { d.SidecarMode = "x" }, "sidecar_mode: must be"},
		{"cpu", func(d *Defaults) { d.CPURequest = "x" }, "cpu_request:"},
		{"port", func(d *Defaults) { d.AgentPort = 70000 }, "agent_port:"},
		{"loki url", func(d *Defaults) { d.LokiURL = "loki:3100" }, "loki_url (--loki-url): the sidecar's configuration would be invalid: exporters.loki.url"},
		{"tempo", func(d *Defaults) { d.TempoEndpoint = "tempo:4317" }, "tempo_endpoint (--tempo-endpoint):"},
		{"vault", func(d *Defaults) { d.VaultAddr = "vault" }, "vault_addr (--vault-addr):"},
		{"sentry dsn", func(d *Defaults) { d.SentryDSN = "https://k3y@o1.ingest.sentry.io/1" }, "sentry_dsn: a DSN given to the injector (--sentry-dsn) would be copied in clear into every pod's outrider.dev/config annotation; put it in a Secret in each namespace and pass --sentry-dsn-secret <secret>/<key>"},
		{"sentry dsn secret", func(d *Defaults) { d.SentryDSNSecret = "nope" }, `sentry_dsn_secret: "nope" must be <secret>/<key>`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := testDefaults()
			tt.set(&d)
			_, err := NewInjector(d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
