package inject

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Fixed paths inside the sidecar.
const (
	// ConfigDir is where the configuration volume is mounted in the sidecar; the
	// agent reads ConfigDir/config.yaml.
	ConfigDir  = "/etc/outrider"
	configFile = "config.yaml"
	// DataDir holds the sidecar's file positions and durable queues.
	DataDir = "/var/lib/outrider"
	// VaultTLSDir is where AnnotationVaultCASecret is mounted.
	VaultTLSDir = "/vault/tls"
	// SentryDir is where the Secret of AnnotationSentryDSNSecret is mounted in the
	// sidecar, its key as the file sentryDSNFile.
	SentryDir     = "/etc/outrider-sentry"
	sentryDSNFile = "dsn"
	// PodLogsDir is where the sidecar sees its pod's directory of the node's pod
	// logs (AnnotationStdout).
	PodLogsDir = "/var/log/outrider-pod"
	// NodePodLogsDir is the kubelet's directory of container logs on the node, one
	// directory <namespace>_<pod>_<uid> per pod, one directory per container in it.
	NodePodLogsDir = "/var/log/pods"
	// podLogsSubPathExpr selects the pod's own directory of NodePodLogsDir, from the
	// sidecar's downward-API environment (sidecarEnv).
	podLogsSubPathExpr = "$(POD_NAMESPACE)_$(POD_NAME)_$(POD_UID)"
	// DefaultSecretsDir is the default of AnnotationSecretsDir.
	DefaultSecretsDir = "/vault/secrets"
	// serviceAccountDir is where Kubernetes mounts the service-account token.
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Loopback ports of the sidecar's receivers, which the app containers' environment
// points at.
const (
	OTLPGRPCPort   = 4317
	OTLPHTTPPort   = 4318
	SentryPort     = 4319
	sentryListen   = "127.0.0.1:4319"
	protocolHTTP   = "http/protobuf"
	protocolGRPC   = "grpc"
	minMemoryLimit = 32 << 20
)

// options is what the annotations and the defaults say about one pod.
type options struct {
	mode     string
	image    string
	port     int
	targets  []target
	service  string
	logLevel string

	resources   corev1.ResourceRequirements
	memoryLimit int64 // bytes; 0 means no limit

	vaultAddr, vaultNamespace, vaultCASecret string
	role, authPath, authMethod               string

	files       []fileOptions
	vaultK8s    *vaultK8s // what the pod's vault-k8s annotations add (compatibility mode)
	secretsDir  string
	secretsSize resource.Quantity

	reloadMethod, reloadSignal, reloadProcess, reloadURL string

	logPaths []string
	logDirs  []string
	logsSize *resource.Quantity
	// stdout ships the containers' stdout and stderr from the node's pod log
	// directory (AnnotationStdout).
	stdout bool

	// order is OrderFirst or OrderAfterMesh (AnnotationSidecarOrder).
	order string

	lokiURL, lokiTenant, tempoEndpoint string
	metricsEndpoint                    string
	otlpProtocol                       string

	// sentrySecret holds the upstream Sentry DSN, which the injector never sees.
	sentrySecret *corev1.SecretKeySelector
	// localDSN is the DSN the app's Sentry SDK is given: the sidecar's endpoint.
	localDSN string

	// creds are the backends' credentials and certificates, from Secrets.
	creds *credentials
	// nsOverlay and podOverlay are the configuration overlays' ConfigMaps.
	nsOverlay, podOverlay *overlayRef

	queueSize resource.Quantity
}

// target is a container that gets the mounts and the environment.
type target struct {
	name  string
	init  bool
	index int
}

// fileOptions is one rendered secret file.
type fileOptions struct {
	name       string
	annotation string // the secret- or template- annotation that defines it
	source     string
	template   string
	format     string
	key        string
	perms      string
}

func (o *options) hasSecrets() bool { return len(o.files) > 0 }
func (o *options) hasSentry() bool  { return o.sentrySecret != nil }
func (o *options) hasOTLP() bool {
	return o.lokiURL != "" || o.tempoEndpoint != "" || o.metricsEndpoint != ""
}

// problems collects what is wrong with a pod's annotations, each message starting with
// the annotation it is about.
type problems []string

func (p *problems) add(annotation, format string, args ...any) {
	*p = append(*p, annotation+": "+fmt.Sprintf(format, args...))
}

// wantsInjection reports whether the pod opted in and is not injected yet; a problem
// is returned for an opt-in value that is neither true nor false.
func wantsInjection(pod *corev1.Pod) (bool, problems) {
	if pod.Annotations[AnnotationStatus] == StatusInjected {
		return false, nil
	}
	v, ok := pod.Annotations[AnnotationInject]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		var p problems
		p.add(AnnotationInject, "%q is not a boolean; write \"true\" to inject the sidecar or \"false\" (or remove it) to leave the pod alone", v)
		return false, p
	}
	return b, nil
}

// knownAnnotations are the fixed-name annotations.
var knownAnnotations = map[string]bool{
	AnnotationInject: true, AnnotationStatus: true, AnnotationConfig: true,
	AnnotationSidecarMode: true, AnnotationImage: true, AnnotationContainer: true,
	AnnotationService: true, AnnotationLogLevel: true,
	AnnotationCPURequest: true, AnnotationCPULimit: true, AnnotationMemoryRequest: true, AnnotationMemoryLimit: true,
	AnnotationVaultAddr: true, AnnotationVaultNamespace: true, AnnotationVaultCASecret: true,
	AnnotationRole: true, AnnotationAuthPath: true, AnnotationAuthMethod: true,
	AnnotationSecretsDir: true, AnnotationSecretsSizeLimit: true,
	AnnotationReload: true, AnnotationReloadProcess: true,
	AnnotationLogs: true, AnnotationLogsSizeLimit: true, AnnotationStdout: true, AnnotationSidecarOrder: true,
	AnnotationLokiURL: true, AnnotationLokiTenant: true, AnnotationTempoEndpoint: true, AnnotationOTLPProtocol: true, AnnotationMetricsEndpoint: true,
	AnnotationSentryDSN: true, AnnotationSentryDSNSecret: true, AnnotationQueueSizeLimit: true,
	AnnotationLokiBasicAuthSecret: true, AnnotationLokiBearerTokenSecret: true, AnnotationTempoHeadersSecret: true,
	AnnotationLokiCASecret: true, AnnotationTempoCASecret: true, AnnotationSentryCASecret: true,
	AnnotationLokiClientCertSecret: true, AnnotationTempoClientCertSecret: true, AnnotationSentryClientCertSecret: true,
	AnnotationConfigOverlay: true,
}

// parseOptions reads the pod's annotations over the defaults and checks everything
// that can be checked without generating the agent's configuration; vk holds the
// files and settings of the pod's vault-k8s annotations (compatibility mode; nil
// without).
func parseOptions(pod *corev1.Pod, d *Defaults, vk *vaultK8s) (*options, problems) {
	var p problems
	ann := pod.Annotations
	get := func(key, def string) string {
		if v, ok := ann[key]; ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	o := &options{
		mode:            get(AnnotationSidecarMode, d.SidecarMode),
		image:           get(AnnotationImage, d.Image),
		port:            d.AgentPort,
		logLevel:        get(AnnotationLogLevel, ""),
		vaultAddr:       get(AnnotationVaultAddr, d.VaultAddr),
		lokiURL:         get(AnnotationLokiURL, d.LokiURL),
		lokiTenant:      get(AnnotationLokiTenant, ""),
		tempoEndpoint:   get(AnnotationTempoEndpoint, d.TempoEndpoint),
		metricsEndpoint: get(AnnotationMetricsEndpoint, d.MetricsEndpoint),
		otlpProtocol:    get(AnnotationOTLPProtocol, protocolHTTP),
		role:            get(AnnotationRole, ""),
		authMethod:      get(AnnotationAuthMethod, "kubernetes"),
		secretsDir:      get(AnnotationSecretsDir, DefaultSecretsDir),
		order:           get(AnnotationSidecarOrder, OrderFirst),
	}
	o.vaultNamespace = get(AnnotationVaultNamespace, "")
	o.vaultK8s, o.files = vk, vk.fileOptions()

	switch o.mode {
	case ModeNative, ModeClassic:
	default:
		p.add(AnnotationSidecarMode, "must be %q (Kubernetes 1.29 and later) or %q, got %q", ModeNative, ModeClassic, o.mode)
	}
	switch o.order {
	case OrderFirst, OrderAfterMesh:
	default:
		p.add(AnnotationSidecarOrder, "must be %q (before a service mesh's init containers and proxy) or %q (after the mesh's proxy), got %q", OrderFirst, OrderAfterMesh, o.order)
	}
	if v, ok := ann[AnnotationStdout]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			p.add(AnnotationStdout, "%q is not a boolean; write \"true\" to ship the containers' stdout and stderr or \"false\"", v)
		}
		o.stdout = b
	}
	if msg := checkImage(o.image); msg != "" {
		p.add(AnnotationImage, "%s", msg)
	}
	switch o.logLevel {
	case "", "debug", "info", "warn", "error":
	default:
		p.add(AnnotationLogLevel, "must be debug, info, warn or error, got %q", o.logLevel)
	}
	switch o.otlpProtocol {
	case protocolHTTP, protocolGRPC:
	default:
		p.add(AnnotationOTLPProtocol, "must be %q (the app's SDK sends to port %d) or %q (port %d), got %q",
			protocolHTTP, OTLPHTTPPort, protocolGRPC, OTLPGRPCPort, o.otlpProtocol)
	}
	if pod.Spec.OS != nil && pod.Spec.OS.Name != corev1.Linux {
		p.add(AnnotationInject, "the sidecar runs on Linux, and the pod sets spec.os.name %s; remove the annotation", pod.Spec.OS.Name)
	}
	if pod.Spec.HostNetwork {
		p.add(AnnotationInject, "the pod uses hostNetwork, so its loopback is the node's and the sidecar's ports would clash with other pods; remove hostNetwork or the annotation")
	}

	o.parseTargets(pod, &p)
	o.parseService(pod, &p)
	o.parseResources(ann, d, &p)
	o.parseVault(ann, &p)
	o.parseFiles(ann, &p)
	o.parseReload(ann, pod, &p)
	o.parseLogs(ann, &p)
	o.parseSentry(ann, d, &p)
	o.parseCredentials(pod, d, &p)
	o.parseOverlays(pod, d.NamespaceOverlays, &p)
	o.parseSizes(ann, d, &p)
	checkUnknown(ann, &p)
	o.checkPorts(pod, d.AgentPort, &p)

	if o.lokiTenant != "" && o.lokiURL == "" {
		p.add(AnnotationLokiTenant, "is set but logs go nowhere: set %s or start the injector with --loki-url", AnnotationLokiURL)
	}
	if o.stdout && o.lokiURL == "" {
		p.add(AnnotationStdout, "stdout and stderr have nowhere to go: set %s or start the injector with --loki-url", AnnotationLokiURL)
	}
	if len(o.logPaths) > 0 && o.lokiURL == "" {
		p.add(AnnotationLogs, "the files have nowhere to go: set %s or start the injector with --loki-url", AnnotationLokiURL)
	}
	if !o.hasSecrets() && !o.hasOTLP() && !o.hasSentry() {
		p.add(AnnotationInject, "the sidecar would have nothing to do: add %s<name> or %s<name> annotations, or a destination for telemetry (%s, %s, %s, %s)",
			AnnotationSecretPrefix, AnnotationTemplatePrefix, AnnotationLokiURL, AnnotationTempoEndpoint, AnnotationMetricsEndpoint, AnnotationSentryDSNSecret)
	}
	return o, p
}

// checkImage returns why s cannot be an image reference, or "".
func checkImage(s string) string {
	switch {
	case s == "":
		return "is empty; give an image such as ghcr.io/outrider-dev/outrider:v1.0.0"
	case len(s) > 1024:
		return "is longer than 1024 characters"
	case strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q holds a space or a control character", s)
	}
	return ""
}

func (o *options) parseTargets(pod *corev1.Pod, p *problems) {
	v, ok := pod.Annotations[AnnotationContainer]
	if !ok {
		for i, c := range pod.Spec.Containers {
			o.targets = append(o.targets, target{name: c.Name, index: i})
		}
		if len(o.targets) == 0 {
			p.add(AnnotationInject, "the pod has no containers")
		}
		return
	}
	seen := map[string]bool{}
	for _, name := range splitList(v) {
		if seen[name] {
			continue
		}
		seen[name] = true
		if i := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == name }); i >= 0 {
			o.targets = append(o.targets, target{name: name, index: i})
			continue
		}
		if i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == name }); i >= 0 {
			o.targets = append(o.targets, target{name: name, init: true, index: i})
			continue
		}
		p.add(AnnotationContainer, "the pod has no container %q; its containers are %s", name, strings.Join(containerNames(pod), ", "))
	}
	if len(o.targets) == 0 && len(p.filter(AnnotationContainer)) == 0 {
		p.add(AnnotationContainer, "is empty; name the containers that get the mounts and environment, comma-separated, or remove it for all")
	}
}

func (p problems) filter(annotation string) problems {
	var out problems
	for _, s := range p {
		if strings.HasPrefix(s, annotation+": ") {
			out = append(out, s)
		}
	}
	return out
}

func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name+" (init)")
	}
	return names
}

// splitList splits a comma-separated annotation, dropping spaces and empty elements.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (o *options) parseService(pod *corev1.Pod, p *problems) {
	if v, ok := pod.Annotations[AnnotationService]; ok {
		o.service = strings.TrimSpace(v)
		switch {
		case o.service == "":
			p.add(AnnotationService, "is empty; give the service name, such as checkout")
		case len(o.service) > 253:
			p.add(AnnotationService, "is longer than 253 characters")
		case strings.IndexFunc(o.service, func(r rune) bool { return r < ' ' || r == 0x7f || r == ',' || r == '=' }) >= 0:
			p.add(AnnotationService, "%q holds a control character, ',' or '='; use letters, digits, '-', '_' and '.'", o.service)
		}
		return
	}
	for _, label := range []string{"app.kubernetes.io/name", "app"} {
		if v := pod.Labels[label]; v != "" {
			o.service = v
			return
		}
	}
	if len(o.targets) > 0 {
		o.service = o.targets[0].name
	}
}

func (o *options) parseResources(ann map[string]string, d *Defaults, p *problems) {
	o.resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, r := range []struct {
		annotation, def string
		list            corev1.ResourceList
		name            corev1.ResourceName
		memory          bool
	}{
		{AnnotationCPURequest, d.CPURequest, o.resources.Requests, corev1.ResourceCPU, false},
		{AnnotationCPULimit, d.CPULimit, o.resources.Limits, corev1.ResourceCPU, false},
		{AnnotationMemoryRequest, d.MemoryRequest, o.resources.Requests, corev1.ResourceMemory, true},
		{AnnotationMemoryLimit, d.MemoryLimit, o.resources.Limits, corev1.ResourceMemory, true},
	} {
		v, set := ann[r.annotation]
		if !set {
			v = r.def
		}
		v = strings.TrimSpace(v)
		if v == "none" || (v == "" && !set) {
			continue
		}
		q, msg := parseQuantity(v, r.memory)
		if msg != "" {
			p.add(r.annotation, "%s", msg)
			continue
		}
		r.list[r.name] = q
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := o.resources.Requests[name]
		lim, hasLim := o.resources.Limits[name]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			annotation := AnnotationCPURequest
			if name == corev1.ResourceMemory {
				annotation = AnnotationMemoryRequest
			}
			p.add(annotation, "%s is more than the limit %s; lower the request or raise the limit", req.String(), lim.String())
		}
	}
	if lim, ok := o.resources.Limits[corev1.ResourceMemory]; ok {
		o.memoryLimit = lim.Value()
		if o.memoryLimit < minMemoryLimit {
			p.add(AnnotationMemoryLimit, "%s is too small for the agent; give at least 32Mi", lim.String())
		}
	}
}

func (o *options) parseVault(ann map[string]string, p *problems) {
	switch o.authMethod {
	case "kubernetes", "jwt":
	default:
		p.add(AnnotationAuthMethod, "must be kubernetes or jwt (both log in with the pod's service-account token), got %q", o.authMethod)
	}
	o.authPath = o.authMethod
	if v, ok := ann[AnnotationAuthPath]; ok {
		o.authPath = strings.Trim(strings.TrimPrefix(strings.Trim(strings.TrimSpace(v), "/"), "auth/"), "/")
		if o.authPath == "" || strings.Contains(o.authPath, "..") || strings.IndexFunc(o.authPath, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./", r))
		}) >= 0 {
			p.add(AnnotationAuthPath, "%q is not an auth mount path; write it as in `vault auth list`, such as kubernetes or auth/k8s-prod", v)
		}
	}
	if v, ok := ann[AnnotationVaultCASecret]; ok {
		o.vaultCASecret = strings.TrimSpace(v)
		if errs := validation.IsDNS1123Subdomain(o.vaultCASecret); len(errs) > 0 {
			p.add(AnnotationVaultCASecret, "%q is not a Secret name: %s", v, strings.Join(errs, "; "))
		}
	}
}

// fileName reports whether name can be a secret file's name.
func fileName(name string) bool {
	if name == "" || name[0] == '.' || len(name) > 200 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (o *options) parseFiles(ann map[string]string, p *problems) {
	byName := map[string]*fileOptions{}
	type attr struct{ annotation, name, suffix, value string }
	var attrs []attr
	keys := sortedKeys(ann)
	for _, k := range keys {
		v := ann[k]
		var kind, rest string
		switch {
		case strings.HasPrefix(k, AnnotationSecretPrefix):
			kind, rest = "secret", strings.TrimPrefix(k, AnnotationSecretPrefix)
		case strings.HasPrefix(k, AnnotationTemplatePrefix):
			kind, rest = "template", strings.TrimPrefix(k, AnnotationTemplatePrefix)
		default:
			continue
		}
		if suffix, name, ok := cutSuffix(rest); ok {
			attrs = append(attrs, attr{k, kind + "-" + name, suffix, strings.TrimSpace(v)})
			continue
		}
		if !fileName(rest) {
			p.add(k, "%q is not a file name; use letters, digits, '.', '_' and '-', not starting with '.'", rest)
			continue
		}
		if prev, dup := byName[rest]; dup {
			p.add(k, "file %q is also defined by %s; give each file one annotation: a Vault path in %s%s or a template in %s%s, not both",
				rest, prev.annotation, AnnotationSecretPrefix, rest, AnnotationTemplatePrefix, rest)
			continue
		}
		f := &fileOptions{name: rest, annotation: k}
		if kind == "secret" {
			f.source = strings.TrimSpace(v)
			if f.source == "" {
				p.add(k, "is empty; give the Vault path to read, such as secret/data/%s", rest)
			}
		} else {
			f.template = v
			if strings.TrimSpace(v) == "" {
				p.add(k, "is empty; give a Go template such as {{ with secret \"secret/data/%s\" }}{{ .Data.data.password }}{{ end }}", rest)
			}
		}
		byName[rest] = f
	}
	for _, a := range attrs {
		kind, name, _ := strings.Cut(a.name, "-")
		f, ok := byName[name]
		if !ok || !strings.HasPrefix(f.annotation, Prefix+kind+"-") {
			p.add(a.annotation, "there is no %s%s-%s annotation for it to apply to", Prefix, kind, name)
			continue
		}
		switch a.suffix {
		case AnnotationSecretFormatSuffix, AnnotationSecretKeySuffix:
			if kind == "template" {
				p.add(a.annotation, "applies only to %s%s; a template writes its own format", AnnotationSecretPrefix, name)
				continue
			}
			if a.suffix == AnnotationSecretFormatSuffix {
				f.format = a.value
				switch a.value {
				case "env", "json", "yaml", "properties", "raw":
				default:
					p.add(a.annotation, "must be env, json, yaml, properties or raw, got %q", a.value)
				}
			} else {
				f.key = a.value
				if a.value == "" {
					p.add(a.annotation, "is empty; name the value to write, or remove it")
				}
			}
		case AnnotationSecretPermsSuffix:
			f.perms = a.value
		}
	}
	for _, name := range sortedKeys(byName) {
		f := byName[name]
		if f.format == "raw" && f.key == "" {
			p.add(f.annotation+AnnotationSecretFormatSuffix, "raw writes one value: add %s%s with its name", f.annotation, AnnotationSecretKeySuffix)
		}
		if f.key != "" && f.format != "" && f.format != "raw" {
			p.add(f.annotation+AnnotationSecretKeySuffix, "applies only to format raw, but the format is %s; remove one of them", f.format)
		}
		if f.perms != "" {
			if msg := checkPerms(f.perms); msg != "" {
				p.add(f.annotation+AnnotationSecretPermsSuffix, "%s", msg)
			}
		}
		o.files = append(o.files, *f)
	}
	if !o.hasSecrets() {
		for _, k := range []string{AnnotationRole, AnnotationAuthPath, AnnotationVaultCASecret, AnnotationVaultNamespace, AnnotationReload, AnnotationReloadProcess, AnnotationSecretsDir, AnnotationSecretsSizeLimit} {
			if _, ok := ann[k]; ok {
				p.add(k, "is set but the pod has no secrets; add %s<name> or %s<name> annotations, or remove it", AnnotationSecretPrefix, AnnotationTemplatePrefix)
			}
		}
		return
	}
	if o.role == "" {
		p.add(AnnotationRole, "required with secrets: the Vault role to log in as (see `vault list auth/%s/role`)", o.authPath)
	}
	if o.vaultAddr == "" {
		p.add(AnnotationVaultAddr, "required with secrets: Vault's URL, such as https://vault.vault:8200 (or start the injector with --vault-addr)")
	}
	o.secretsDir = path.Clean(o.secretsDir)
	if msg := checkMountDir(o.secretsDir); msg != "" {
		p.add(AnnotationSecretsDir, "%s", msg)
	}
}

// cutSuffix splits "db-perms" into "-perms" and "db" when it ends with a known suffix
// after a non-empty name.
func cutSuffix(rest string) (suffix, name string, ok bool) {
	for _, s := range []string{AnnotationSecretFormatSuffix, AnnotationSecretKeySuffix, AnnotationSecretPermsSuffix} {
		if n, found := strings.CutSuffix(rest, s); found && n != "" {
			return s, n, true
		}
	}
	return "", "", false
}

// checkPerms checks an octal file mode the way the renderer will.
func checkPerms(s string) string {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O"), 8, 32)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not an octal mode; write e.g. \"0400\" or \"0440\"", s)
	case v > 0o777:
		return fmt.Sprintf("%q has bits beyond the permission bits (0777)", s)
	case v&0o007 != 0:
		return fmt.Sprintf("%q gives access to other users; secret files are never world-accessible, use \"0400\" or \"0440\"", s)
	case v&0o400 == 0:
		return fmt.Sprintf("%q does not let the owner read the file; use \"0400\" or \"0440\"", s)
	}
	return ""
}

// reservedDirs are the sidecar's own mount points and kernel file systems: no
// secrets or log directory may be one of them or under one of them.
var reservedDirs = []string{ConfigDir, DataDir, VaultTLSDir, SentryDir, PodLogsDir, CredentialsDir, OverlayDir, serviceAccountDir, "/proc", "/sys", "/dev"}

// checkMountDir says why dir cannot be where a volume is mounted, or "".
func checkMountDir(dir string) string {
	switch {
	case !path.IsAbs(dir):
		return fmt.Sprintf("%q must be an absolute directory, such as /vault/secrets", dir)
	case dir == "/":
		return "cannot be the root directory"
	case len(dir) > 512:
		return "is longer than 512 characters"
	case strings.ContainsAny(dir, "*?[\\:,") || strings.IndexFunc(dir, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q holds a character a mount path cannot have (glob, ':', ',' or a control character)", dir)
	}
	for _, r := range reservedDirs {
		if within(dir, r) || within(r, dir) {
			return fmt.Sprintf("%q overlaps %s, which the sidecar uses; choose another directory", dir, r)
		}
	}
	return ""
}

// within reports whether p is dir or inside it (both clean).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func (o *options) parseReload(ann map[string]string, pod *corev1.Pod, p *problems) {
	if !o.hasSecrets() {
		return // parseFiles reported the reload annotations
	}
	v := strings.TrimSpace(ann[AnnotationReload])
	method, arg, _ := strings.Cut(v, ":")
	switch method {
	case "", "none":
		if arg != "" {
			p.add(AnnotationReload, "%q: none takes no argument", v)
		}
		if _, ok := ann[AnnotationReloadProcess]; ok {
			p.add(AnnotationReloadProcess, "applies only to %s: signal:<SIG>", AnnotationReload)
		}
		return
	case "signal":
		o.reloadMethod, o.reloadSignal = "signal", strings.TrimSpace(arg)
		if o.reloadSignal == "" {
			p.add(AnnotationReload, "%q names no signal; write e.g. signal:HUP", v)
		}
		o.reloadProcess = strings.TrimSpace(ann[AnnotationReloadProcess])
		if o.reloadProcess == "" && len(o.targets) > 0 {
			t := o.targets[0]
			c := containerOf(pod, t)
			if len(c.Command) > 0 {
				o.reloadProcess = path.Base(c.Command[0])
			}
		}
		if o.reloadProcess == "" {
			p.add(AnnotationReloadProcess, "required with %s: %s: the name of the process to signal, such as nginx (the first target container has no command to take it from)", AnnotationReload, v)
		}
		if pod.Spec.ShareProcessNamespace != nil && !*pod.Spec.ShareProcessNamespace {
			p.add(AnnotationReload, "signal reload needs spec.shareProcessNamespace: true, but the pod sets it to false; remove that or reload with http:<URL>")
		}
	case "http":
		o.reloadMethod, o.reloadURL = "http", strings.TrimSpace(arg)
		if u, err := url.Parse(o.reloadURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			p.add(AnnotationReload, "%q: write http: followed by the app's reload URL, such as http:http://127.0.0.1:8080/-/reload", v)
		}
		if _, ok := ann[AnnotationReloadProcess]; ok {
			p.add(AnnotationReloadProcess, "applies only to %s: signal:<SIG>", AnnotationReload)
		}
	default:
		p.add(AnnotationReload, "%q: write none, signal:<SIG> (such as signal:HUP) or http:<URL> (such as http:http://127.0.0.1:8080/-/reload)", v)
	}
}

func containerOf(pod *corev1.Pod, t target) *corev1.Container {
	if t.init {
		return &pod.Spec.InitContainers[t.index]
	}
	return &pod.Spec.Containers[t.index]
}

func (o *options) parseLogs(ann map[string]string, p *problems) {
	v, ok := ann[AnnotationLogs]
	if !ok {
		return
	}
	seen := map[string]bool{}
	for _, f := range splitList(v) {
		clean := path.Clean(f)
		dir, base := path.Split(clean)
		dir = path.Clean(dir)
		switch {
		case !path.IsAbs(f):
			p.add(AnnotationLogs, "%q must be an absolute path such as /var/log/app/*.log", f)
			continue
		case clean != f:
			p.add(AnnotationLogs, "%q is not a clean path; write %q", f, clean)
			continue
		}
		if _, err := path.Match(base, ""); err != nil || base == "" {
			p.add(AnnotationLogs, "%q: the file part %q is not a valid glob", f, base)
			continue
		}
		if msg := checkMountDir(dir); msg != "" {
			p.add(AnnotationLogs, "%q: its directory %s", f, msg)
			continue
		}
		if o.hasSecrets() && (within(dir, o.secretsDir) || within(o.secretsDir, dir)) {
			p.add(AnnotationLogs, "%q: its directory overlaps the secrets directory %s; write logs elsewhere", f, o.secretsDir)
			continue
		}
		if seen[clean] {
			continue
		}
		seen[clean] = true
		o.logPaths = append(o.logPaths, clean)
		if !slices.Contains(o.logDirs, dir) {
			for _, other := range o.logDirs {
				if within(dir, other) || within(other, dir) {
					p.add(AnnotationLogs, "directories %s and %s are nested; a volume is mounted at each directory, so keep the log files of one tree in one directory", other, dir)
				}
			}
			o.logDirs = append(o.logDirs, dir)
		}
	}
	if len(o.logPaths) == 0 && len(p.filter(AnnotationLogs)) == 0 {
		p.add(AnnotationLogs, "is empty; list the log files, such as /var/log/app/*.log, or remove it")
	}
	if len(o.logPaths) > 100 {
		p.add(AnnotationLogs, "lists %d files; list at most 100 (use globs)", len(o.logPaths))
	}
}

func (o *options) parseSentry(ann map[string]string, d *Defaults, p *problems) {
	if _, ok := ann[AnnotationSentryDSN]; ok {
		p.add(AnnotationSentryDSN, "a DSN in an annotation would be copied in clear into the pod's %s annotation; put it in a Secret of the pod's namespace and name it with %s: <secret>/<key>",
			AnnotationConfig, AnnotationSentryDSNSecret)
		return
	}
	ref, ok := ann[AnnotationSentryDSNSecret]
	if !ok {
		ref = d.SentryDSNSecret // checked by NewInjector
		if ref == "" {
			return
		}
	}
	sel, msg := parseSecretRef(ref)
	if msg != "" {
		p.add(AnnotationSentryDSNSecret, "%s", msg)
		return
	}
	o.sentrySecret = sel
}

// parseSecretRef parses "<secret>/<key>".
func parseSecretRef(ref string) (*corev1.SecretKeySelector, string) {
	name, key, ok := strings.Cut(strings.TrimSpace(ref), "/")
	errs := append(validation.IsDNS1123Subdomain(name), validation.IsConfigMapKey(key)...)
	if !ok || len(errs) > 0 {
		return nil, fmt.Sprintf("%q must be <secret>/<key>, naming a Secret of the pod's namespace and its key, such as sentry/dsn", ref)
	}
	return &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}, ""
}

func (o *options) parseSizes(ann map[string]string, d *Defaults, p *problems) {
	size := func(annotation, def string) (resource.Quantity, bool) {
		v, ok := ann[annotation]
		if !ok {
			v = def
		}
		if v == "" {
			return resource.Quantity{}, false
		}
		q, msg := parseQuantity(strings.TrimSpace(v), true)
		if msg != "" {
			p.add(annotation, "%s", msg)
			return q, false
		}
		return q, true
	}
	o.secretsSize, _ = size(AnnotationSecretsSizeLimit, d.SecretsSizeLimit)
	if q, ok := size(AnnotationQueueSizeLimit, d.QueueSizeLimit); ok {
		o.queueSize = q
		if q.Cmp(resource.MustParse(MinQueueSizeLimit)) < 0 {
			p.add(AnnotationQueueSizeLimit, "%s is too small; give at least %s", q.String(), MinQueueSizeLimit)
		}
	}
	if _, ok := ann[AnnotationLogsSizeLimit]; ok {
		if len(o.logPaths) == 0 {
			p.add(AnnotationLogsSizeLimit, "is set but there is no %s annotation", AnnotationLogs)
		}
		if q, ok := size(AnnotationLogsSizeLimit, ""); ok {
			o.logsSize = &q
		}
	}
}

// checkUnknown reports annotations under Prefix that the injector does not know.
func checkUnknown(ann map[string]string, p *problems) {
	for _, k := range sortedKeys(ann) {
		if !strings.HasPrefix(k, Prefix) || knownAnnotations[k] ||
			strings.HasPrefix(k, AnnotationSecretPrefix) || strings.HasPrefix(k, AnnotationTemplatePrefix) {
			continue
		}
		p.add(k, "unknown annotation; see docs/annotations.md for the annotations outrider reads (a typo?)")
	}
}

// checkPorts refuses pods whose containers declare the ports the sidecar listens on.
func (o *options) checkPorts(pod *corev1.Pod, agentPort int, p *problems) {
	ours := map[int32]string{
		int32(agentPort): "its /metrics, /healthz and /readyz",
		OTLPGRPCPort:     "OTLP/gRPC",
		OTLPHTTPPort:     "OTLP/HTTP",
		SentryPort:       "Sentry",
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, port := range c.Ports {
				if what, clash := ours[port.ContainerPort]; clash {
					p.add(AnnotationInject, "container %q declares port %d, which the sidecar listens on (%s) in the pod's network namespace; move the app to another port",
						c.Name, port.ContainerPort, what)
				}
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
