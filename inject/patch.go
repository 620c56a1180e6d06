package inject

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Names the injector gives to what it adds. Volumes start with "outrider-"; a pod that
// already has a volume or container of one of these names is denied.
const (
	SidecarName     = "outrider"
	InitName        = "outrider-init"
	VolumeConfig    = "outrider-config"
	VolumeData      = "outrider-data"
	VolumeSecrets   = "outrider-secrets"
	VolumeLogs      = "outrider-logs"
	VolumeToken     = "outrider-token"
	VolumeVaultTLS  = "outrider-vault-tls"
	VolumeSentry    = "outrider-sentry"
	VolumePodLogs   = "outrider-pod-logs"
	portName        = "outrider-http"
	defaultUID      = 65532
	tokenExpiration = 3600
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// pointerEscape escapes a JSON pointer reference token (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// plan is what the injector adds to one pod.
type plan struct {
	ops      []patchOp
	warnings []string
}

// buildPatch returns the JSON patch that injects the sidecar described by o and ac
// into pod, or the conflicts that prevent it.
func buildPatch(pod *corev1.Pod, o *options, ac *agentConfig) (*plan, problems) {
	var p problems
	pl := &plan{}
	checkConflicts(pod, &p)

	tokenMount, tokenVolume := serviceAccountMount(pod, o)
	uid, gid := runAs(pod, o)
	if o.stdout {
		// The runtime writes the container logs root:root with mode 0640.
		gid = 0
	}
	volumes := o.volumes(tokenVolume)
	at, meshProbs, meshWarnings := o.initPosition(pod)
	p = append(p, meshProbs...)
	pl.warnings = append(pl.warnings, meshWarnings...)

	// Target containers first: their indexes are those of the pod as it is, before
	// the sidecar is inserted at the front of initContainers.
	for _, t := range o.targets {
		c := containerOf(pod, t)
		base := fmt.Sprintf("/spec/containers/%d", t.index)
		if t.init {
			base = fmt.Sprintf("/spec/initContainers/%d", t.index)
		}
		mounts := o.appMounts()
		for _, m := range mounts {
			for _, existing := range c.VolumeMounts {
				if path.Clean(existing.MountPath) == m.MountPath {
					p.add(mountAnnotation(m), "container %q already mounts volume %q at %s; remove that mount or choose another directory", c.Name, existing.Name, m.MountPath)
				}
			}
		}
		pl.ops = appendList(pl.ops, base+"/volumeMounts", len(c.VolumeMounts), mounts)
		env, skipped := o.appEnv(c)
		for _, name := range skipped {
			pl.warnings = append(pl.warnings, fmt.Sprintf("outrider: container %q already sets %s; its value is kept, not the sidecar's", c.Name, name))
		}
		if len(c.EnvFrom) > 0 && len(env) > 0 {
			pl.warnings = append(pl.warnings, fmt.Sprintf("outrider: container %q has envFrom; the OTEL_* and SENTRY_DSN variables outrider adds to env take precedence over the same names there", c.Name))
		}
		pl.ops = appendList(pl.ops, base+"/env", len(c.Env), env)
	}
	if len(p) > 0 {
		return nil, p
	}

	pl.ops = appendList(pl.ops, "/spec/volumes", len(pod.Spec.Volumes), volumes)
	sidecar := o.sidecarContainer(uid, gid, tokenMount)
	if o.mode == ModeNative {
		always := corev1.ContainerRestartPolicyAlways
		sidecar.RestartPolicy = &always
		sidecar.StartupProbe = &corev1.Probe{
			ProbeHandler:     httpGet("/readyz", o.port),
			PeriodSeconds:    1,
			TimeoutSeconds:   1,
			FailureThreshold: 300,
		}
		pl.ops = insertList(pl.ops, "/spec/initContainers", len(pod.Spec.InitContainers), at, sidecar)
	} else {
		if o.hasSecrets() {
			pl.ops = insertList(pl.ops, "/spec/initContainers", len(pod.Spec.InitContainers), at, o.initContainer(uid, gid, tokenMount))
		}
		pl.ops = appendList(pl.ops, "/spec/containers", len(pod.Spec.Containers), []corev1.Container{sidecar})
		if rp := pod.Spec.RestartPolicy; rp == corev1.RestartPolicyNever || rp == corev1.RestartPolicyOnFailure {
			pl.warnings = append(pl.warnings, fmt.Sprintf("outrider: classic sidecar mode in a pod with restartPolicy %s: the sidecar keeps running after the app exits, so a Job never completes; use %s: native on Kubernetes 1.29 and later", rp, AnnotationSidecarMode))
		}
	}
	if o.reloadMethod == "signal" && pod.Spec.ShareProcessNamespace == nil {
		pl.ops = append(pl.ops, patchOp{Op: "add", Path: "/spec/shareProcessNamespace", Value: true})
	}

	size := 0
	for k, v := range pod.Annotations {
		if k != AnnotationConfig && k != AnnotationStatus {
			size += len(k) + len(v)
		}
	}
	size += len(AnnotationConfig) + len(ac.yaml) + len(AnnotationStatus) + len(StatusInjected)
	if size > maxAnnotationBytes {
		p.add(AnnotationInject, "the generated configuration (%d bytes) takes the pod's annotations to %d bytes, past Kubernetes' limit of %d; shorten the templates", len(ac.yaml), size, maxAnnotationBytes)
		return nil, p
	}
	if pod.Annotations == nil {
		pl.ops = append(pl.ops, patchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]string{
			AnnotationStatus: StatusInjected,
			AnnotationConfig: string(ac.yaml),
		}})
	} else {
		pl.ops = append(pl.ops,
			patchOp{Op: "add", Path: "/metadata/annotations/" + pointerEscape(AnnotationStatus), Value: StatusInjected},
			patchOp{Op: "add", Path: "/metadata/annotations/" + pointerEscape(AnnotationConfig), Value: string(ac.yaml)})
	}
	return pl, nil
}

// appendList adds items at the end of the list at path, which has n elements (0:
// absent or empty, in which case the whole list is set).
func appendList[T any](ops []patchOp, path string, n int, items []T) []patchOp {
	if len(items) == 0 {
		return ops
	}
	if n == 0 {
		return append(ops, patchOp{Op: "add", Path: path, Value: items})
	}
	for _, it := range items {
		ops = append(ops, patchOp{Op: "add", Path: path + "/-", Value: it})
	}
	return ops
}

// insertList inserts item at index at of the list at path, which has n elements.
func insertList(ops []patchOp, path string, n, at int, item corev1.Container) []patchOp {
	switch {
	case n == 0:
		return append(ops, patchOp{Op: "add", Path: path, Value: []corev1.Container{item}})
	case at >= n:
		return append(ops, patchOp{Op: "add", Path: path + "/-", Value: item})
	}
	return append(ops, patchOp{Op: "add", Path: path + "/" + strconv.Itoa(at), Value: item})
}

func mountAnnotation(m corev1.VolumeMount) string {
	if m.Name == VolumeSecrets {
		return AnnotationSecretsDir
	}
	return AnnotationLogs
}

// checkConflicts reports names the injector would add that the pod already uses.
func checkConflicts(pod *corev1.Pod, p *problems) {
	ours := map[string]bool{VolumeConfig: true, VolumeData: true, VolumeSecrets: true, VolumeLogs: true, VolumeToken: true, VolumeVaultTLS: true, VolumeSentry: true, VolumePodLogs: true}
	for _, v := range pod.Spec.Volumes {
		if ours[v.Name] {
			p.add(AnnotationInject, "the pod already has a volume named %q; outrider adds volumes named outrider-*, so rename it", v.Name)
		}
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == SidecarName || c.Name == InitName {
				p.add(AnnotationInject, "the pod already has a container named %q, the name of outrider's sidecar; rename it, or set %s: %s if it is outrider already", c.Name, AnnotationStatus, StatusInjected)
			}
		}
	}
}

// serviceAccountMount returns the mount of the service-account token the sidecar logs
// in to Vault with: the pod's own (added by Kubernetes to the app containers), or, when
// the pod has none (automountServiceAccountToken: false), a projected token volume of
// the injector's.
func serviceAccountMount(pod *corev1.Pod, o *options) (*corev1.VolumeMount, *corev1.Volume) {
	if !o.hasSecrets() {
		return nil, nil
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			for _, m := range c.VolumeMounts {
				if path.Clean(m.MountPath) == serviceAccountDir {
					return &corev1.VolumeMount{Name: m.Name, MountPath: serviceAccountDir, ReadOnly: true}, nil
				}
			}
		}
	}
	exp := int64(tokenExpiration)
	return &corev1.VolumeMount{Name: VolumeToken, MountPath: serviceAccountDir, ReadOnly: true},
		&corev1.Volume{Name: VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}}},
		}}}
}

// runAs returns the user and group the sidecar runs as: those of the first target
// container when it names a non-root user (so that secret files written with mode
// 0400 are the app's to read, and signals reach its processes), else 65532, the
// distroless nonroot user.
func runAs(pod *corev1.Pod, o *options) (uid, gid int64) {
	uid, gid = defaultUID, defaultUID
	if len(o.targets) == 0 {
		return uid, gid
	}
	c := containerOf(pod, o.targets[0])
	var u, g *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		u, g = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			u = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			g = sc.RunAsGroup
		}
	}
	if u != nil && *u > 0 {
		uid = *u
		if g != nil && *g >= 0 {
			gid = *g
		}
	}
	return uid, gid
}

// volumes are the volumes the injector adds.
func (o *options) volumes(token *corev1.Volume) []corev1.Volume {
	vs := []corev1.Volume{{
		Name: VolumeConfig,
		VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{
				Path:     configFile,
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations['" + AnnotationConfig + "']"},
			}},
		}},
	}, {
		Name:         VolumeData,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &o.queueSize}},
	}}
	if o.hasSecrets() {
		vs = append(vs, corev1.Volume{
			Name: VolumeSecrets,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium: corev1.StorageMediumMemory, SizeLimit: &o.secretsSize,
			}},
		})
	}
	if len(o.logDirs) > 0 {
		vs = append(vs, corev1.Volume{
			Name:         VolumeLogs,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: o.logsSize}},
		})
	}
	if o.stdout {
		dir := corev1.HostPathDirectory
		vs = append(vs, corev1.Volume{
			Name:         VolumePodLogs,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: NodePodLogsDir, Type: &dir}},
		})
	}
	if token != nil {
		vs = append(vs, *token)
	}
	if o.vaultCASecret != "" && o.hasSecrets() {
		vs = append(vs, corev1.Volume{
			Name:         VolumeVaultTLS,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: o.vaultCASecret}},
		})
	}
	vs = append(vs, o.credentialVolumes()...)
	vs = append(vs, o.overlayVolumes()...)
	if s := o.sentrySecret; s != nil {
		vs = append(vs, corev1.Volume{
			Name: VolumeSentry,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: s.Name,
				Items:      []corev1.KeyToPath{{Key: s.Key, Path: sentryDSNFile}},
			}},
		})
	}
	return vs
}

// logSubPath is the directory of the log volume that holds the files of the i-th log
// directory.
func logSubPath(i int) string { return "dir-" + strconv.Itoa(i+1) }

// appMounts are the mounts added to each target container.
func (o *options) appMounts() []corev1.VolumeMount {
	var ms []corev1.VolumeMount
	if o.hasSecrets() {
		ms = append(ms, corev1.VolumeMount{Name: VolumeSecrets, MountPath: o.secretsDir, ReadOnly: true})
	}
	for i, dir := range o.logDirs {
		ms = append(ms, corev1.VolumeMount{Name: VolumeLogs, MountPath: dir, SubPath: logSubPath(i)})
	}
	return ms
}

// envEscape escapes a literal environment value for Kubernetes, which expands
// $(VAR) in values.
func envEscape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// appEnv returns the variables to add to container c, leaving out (and naming) those
// it already sets.
func (o *options) appEnv(c *corev1.Container) (add []corev1.EnvVar, skipped []string) {
	var env []corev1.EnvVar
	if o.hasOTLP() {
		endpoint, protocol := fmt.Sprintf("http://127.0.0.1:%d", OTLPHTTPPort), protocolHTTP
		if o.otlpProtocol == protocolGRPC {
			endpoint, protocol = fmt.Sprintf("http://127.0.0.1:%d", OTLPGRPCPort), protocolGRPC
		}
		attrs := "k8s.pod.name=$(OUTRIDER_POD_NAME),k8s.namespace.name=$(OUTRIDER_POD_NAMESPACE),k8s.pod.uid=$(OUTRIDER_POD_UID),k8s.node.name=$(OUTRIDER_NODE_NAME),k8s.container.name=" + c.Name
		env = append(env,
			fieldEnv("OUTRIDER_POD_NAME", "metadata.name"),
			fieldEnv("OUTRIDER_POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("OUTRIDER_POD_UID", "metadata.uid"),
			fieldEnv("OUTRIDER_NODE_NAME", "spec.nodeName"),
			corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: endpoint},
			corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_PROTOCOL", Value: protocol},
			corev1.EnvVar{Name: "OTEL_SERVICE_NAME", Value: envEscape(o.service)},
			corev1.EnvVar{Name: "OTEL_RESOURCE_ATTRIBUTES", Value: attrs},
		)
	}
	if o.hasSentry() {
		env = append(env, corev1.EnvVar{Name: "SENTRY_DSN", Value: o.localDSN})
	}
	have := map[string]bool{}
	for _, e := range c.Env {
		have[e.Name] = true
	}
	// SDKs export metrics by default: without a destination for them the sidecar
	// would refuse every export, so the SDK is told not to; with one, it is told to
	// export them to the sidecar. A container that sends its OTLP elsewhere itself
	// keeps its metrics going there.
	if o.hasOTLP() && !have["OTEL_EXPORTER_OTLP_ENDPOINT"] && !have["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] {
		metrics := "none"
		if o.metricsEndpoint != "" {
			metrics = "otlp"
		}
		env = append(env, corev1.EnvVar{Name: "OTEL_METRICS_EXPORTER", Value: metrics})
	}
	for _, e := range env {
		if have[e.Name] {
			skipped = append(skipped, e.Name)
			continue
		}
		add = append(add, e)
	}
	return add, skipped
}

func fieldEnv(name, fieldPath string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: fieldPath},
	}}
}

func httpGet(p string, port int) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p, Port: intstr.FromInt32(int32(port)), Scheme: corev1.URISchemeHTTP}}
}

func securityContext(uid, gid int64) *corev1.SecurityContext {
	yes, no := true, false
	return &corev1.SecurityContext{
		RunAsUser:                &uid,
		RunAsGroup:               &gid,
		RunAsNonRoot:             &yes,
		ReadOnlyRootFilesystem:   &yes,
		AllowPrivilegeEscalation: &no,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// sidecarEnv is the sidecar's environment: its identity from the downward API, and
// what its configuration refers to.
func (o *options) sidecarEnv() []corev1.EnvVar {
	env := []corev1.EnvVar{
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("POD_UID", "metadata.uid"),
		fieldEnv("NODE_NAME", "spec.nodeName"),
	}
	if len(o.targets) > 0 {
		env = append(env, corev1.EnvVar{Name: "CONTAINER_NAME", Value: o.targets[0].name})
	}
	env = append(env, corev1.EnvVar{Name: "OTEL_SERVICE_NAME", Value: envEscape(o.service)})
	if o.vaultCASecret != "" && o.hasSecrets() {
		env = append(env, corev1.EnvVar{Name: "VAULT_CACERT", Value: VaultTLSDir + "/ca.crt"})
	}
	return env
}

// vaultMounts are the mounts the sidecar and the init container need to log in to
// Vault and render.
func (o *options) vaultMounts(token *corev1.VolumeMount) []corev1.VolumeMount {
	if !o.hasSecrets() {
		return nil
	}
	ms := []corev1.VolumeMount{{Name: VolumeSecrets, MountPath: o.secretsDir}}
	if token != nil {
		ms = append(ms, *token)
	}
	if o.vaultCASecret != "" {
		ms = append(ms, corev1.VolumeMount{Name: VolumeVaultTLS, MountPath: VaultTLSDir, ReadOnly: true})
	}
	return ms
}

// sentryMounts is the mount of the upstream DSN's Secret: in the sidecar, and in the
// init container, which loads the same configuration.
func (o *options) sentryMounts() []corev1.VolumeMount {
	if o.sentrySecret == nil {
		return nil
	}
	return []corev1.VolumeMount{{Name: VolumeSentry, MountPath: SentryDir, ReadOnly: true}}
}

// configMounts are the mounts the sidecar and the init container need to load their
// configuration: the upstream DSN's Secret and the credential Secrets.
func (o *options) configMounts() []corev1.VolumeMount {
	return append(o.sentryMounts(), o.credentialMounts()...)
}

func (o *options) sidecarContainer(uid, gid int64, token *corev1.VolumeMount) corev1.Container {
	mounts := []corev1.VolumeMount{
		{Name: VolumeConfig, MountPath: ConfigDir, ReadOnly: true},
		{Name: VolumeData, MountPath: DataDir},
	}
	mounts = append(mounts, o.vaultMounts(token)...)
	mounts = append(mounts, o.configMounts()...)
	mounts = append(mounts, o.overlayMounts()...)
	for i, dir := range o.logDirs {
		mounts = append(mounts, corev1.VolumeMount{Name: VolumeLogs, MountPath: dir, SubPath: logSubPath(i), ReadOnly: true})
	}
	if o.stdout {
		// Only the pod's own directory of the node's pod logs, from the sidecar's
		// POD_NAMESPACE, POD_NAME and POD_UID.
		mounts = append(mounts, corev1.VolumeMount{Name: VolumePodLogs, MountPath: PodLogsDir, SubPathExpr: podLogsSubPathExpr, ReadOnly: true})
	}
	return corev1.Container{
		Name:            SidecarName,
		Image:           o.image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            append([]string{"agent", "--config", path.Join(ConfigDir, configFile)}, o.overlayArgs()...),
		Ports:           []corev1.ContainerPort{{Name: portName, ContainerPort: int32(o.port), Protocol: corev1.ProtocolTCP}},
		Env:             o.sidecarEnv(),
		Resources:       o.resources,
		VolumeMounts:    mounts,
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     httpGet("/healthz", o.port),
			PeriodSeconds:    10,
			TimeoutSeconds:   5,
			FailureThreshold: 3,
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          securityContext(uid, gid),
	}
}

func (o *options) initContainer(uid, gid int64, token *corev1.VolumeMount) corev1.Container {
	mounts := append([]corev1.VolumeMount{{Name: VolumeConfig, MountPath: ConfigDir, ReadOnly: true}}, o.vaultMounts(token)...)
	mounts = append(mounts, o.configMounts()...)
	return corev1.Container{
		Name:                     InitName,
		Image:                    o.image,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		Args:                     []string{"render", "--config", path.Join(ConfigDir, configFile), "--once"},
		Env:                      o.sidecarEnv(),
		Resources:                o.resources,
		VolumeMounts:             mounts,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          securityContext(uid, gid),
	}
}
