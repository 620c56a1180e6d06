package inject

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
)

// vault-k8s compatibility: with Defaults.VaultK8sCompat (--vault-k8s-compat) the
// injector also reads the vault.hashicorp.com/* annotations of HashiCorp's Vault Agent
// injector and renders the same files at the same paths, with the same default
// templates, executed by consul-template's engine (render.EngineConsulTemplate). Each
// such annotation is translated, accepted because outrider's behaviour already covers
// it, or denies the pod with the reason: none is ignored silently.
// docs/migrating-from-vault-k8s.md maps every one; vaultK8sRules below is that map.

// VaultK8sPrefix starts every annotation of vault-k8s.
const VaultK8sPrefix = "vault.hashicorp.com/"

// The vault-k8s annotations read in compatibility mode (their meaning is vault-k8s's;
// how outrider honours each is in docs/migrating-from-vault-k8s.md).
const (
	// VaultK8sInject opts a pod in, as AnnotationInject does.
	VaultK8sInject = VaultK8sPrefix + "agent-inject"
	// VaultK8sStatus is "injected" on a pod vault-k8s (or outrider in compatibility
	// mode) injected already; such a pod's vault-k8s annotations are not read.
	VaultK8sStatus = VaultK8sPrefix + "agent-inject-status"
	// VaultK8sSecretPrefix, followed by a name, renders the Vault path in the value
	// into <secret-volume-path>/<name> with the default template.
	VaultK8sSecretPrefix = VaultK8sPrefix + "agent-inject-secret-"
	// VaultK8sTemplatePrefix, followed by a name, is the Vault Agent template of the
	// file <name>.
	VaultK8sTemplatePrefix = VaultK8sPrefix + "agent-inject-template-"
	// VaultK8sTemplateFilePrefix, followed by a name, is the path of a template file in
	// the Vault Agent container.
	VaultK8sTemplateFilePrefix = VaultK8sPrefix + "agent-inject-template-file-"
	// VaultK8sFilePrefix, followed by a name, is the file's name instead of <name>.
	VaultK8sFilePrefix = VaultK8sPrefix + "agent-inject-file-"
	// VaultK8sCommandPrefix, followed by a name, is a command run after the file
	// changed.
	VaultK8sCommandPrefix = VaultK8sPrefix + "agent-inject-command-"
	// VaultK8sPermsPrefix, followed by a name, is the file's permission.
	VaultK8sPermsPrefix = VaultK8sPrefix + "agent-inject-perms-"
	// VaultK8sErrorOnMissingKeyPrefix, followed by a name, makes a missing key an
	// error for that file (default false).
	VaultK8sErrorOnMissingKeyPrefix = VaultK8sPrefix + "error-on-missing-key-"
	// VaultK8sSecretVolumePath is the directory of the files (default /vault/secrets).
	VaultK8sSecretVolumePath = VaultK8sPrefix + "secret-volume-path"
	// VaultK8sPreserveSecretCase keeps the case of the names (by default lowered);
	// followed by "-<name>", for one file.
	VaultK8sPreserveSecretCase = VaultK8sPrefix + "preserve-secret-case"
	// VaultK8sDefaultTemplate is "map" (the default) or "json".
	VaultK8sDefaultTemplate = VaultK8sPrefix + "agent-inject-default-template"
	// VaultK8sAuthConfigPrefix, followed by a parameter, configures the auth method.
	VaultK8sAuthConfigPrefix = VaultK8sPrefix + "auth-config-"
)

// VaultK8sExtraSecretDir is where the Secret of agent-extra-secret is mounted in the
// sidecar, as vault-k8s mounts it in Vault Agent's containers: template files
// (agent-inject-template-file-<name>) are read from there.
const VaultK8sExtraSecretDir = "/vault/custom"

// VolumeVaultK8sExtraSecret is the volume of agent-extra-secret.
const VolumeVaultK8sExtraSecret = "outrider-vault-custom"

// DefaultVaultK8sTemplate and DefaultVaultK8sJSONTemplate are vault-k8s's default
// templates ("map" and "json"), where %s is the secret's path.
const (
	DefaultVaultK8sTemplate     = "{{ with secret \"%s\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}"
	DefaultVaultK8sJSONTemplate = "{{ with secret \"%s\" }}{{ .Data | toJSON }}\n{{ end }}"
)

// vaultK8sRule says what compatibility mode does with one fixed-name vault-k8s
// annotation.
type vaultK8sRule struct {
	// to is the outrider annotation it is translated to, when it is one.
	to string
	// check, when set, returns why the value cannot be honoured ("" when it can).
	check func(v string) string
	// deny is why the annotation is refused whatever its value.
	deny string
}

// boolIs returns a check that refuses a boolean other than want, with why.
func boolIs(want bool, why string) func(string) string {
	return func(v string) string {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Sprintf("%q is not a boolean; write true or false", v)
		}
		if b != want {
			return why
		}
		return ""
	}
}

// anyBool accepts either boolean.
func anyBool(v string) string {
	if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
		return fmt.Sprintf("%q is not a boolean; write true or false", v)
	}
	return ""
}

func accept(string) string { return "" }

// vaultK8sRules are the fixed-name vault-k8s annotations; the per-file ones (with a
// name after the prefix) are read by vaultK8sFiles.
var vaultK8sRules = map[string]vaultK8sRule{
	VaultK8sInject:                             {check: anyBool},
	VaultK8sStatus:                             {check: accept},
	VaultK8sPrefix + "role":                    {to: AnnotationRole},
	VaultK8sPrefix + "auth-path":               {to: AnnotationAuthPath},
	VaultK8sPrefix + "auth-type":               {to: AnnotationAuthMethod},
	VaultK8sPrefix + "namespace":               {to: AnnotationVaultNamespace},
	VaultK8sPrefix + "service":                 {to: AnnotationVaultAddr},
	VaultK8sPrefix + "tls-secret":              {to: AnnotationVaultCASecret},
	VaultK8sSecretVolumePath:                   {to: AnnotationSecretsDir},
	VaultK8sPrefix + "log-level":               {to: AnnotationLogLevel},
	VaultK8sPrefix + "agent-image":             {check: accept},
	VaultK8sPrefix + "agent-inject-containers": {to: AnnotationContainer},
	VaultK8sPrefix + "agent-limits-cpu":        {to: AnnotationCPULimit},
	VaultK8sPrefix + "agent-limits-mem":        {to: AnnotationMemoryLimit},
	VaultK8sPrefix + "agent-requests-cpu":      {to: AnnotationCPURequest},
	VaultK8sPrefix + "agent-requests-mem":      {to: AnnotationMemoryRequest},
	VaultK8sDefaultTemplate: {check: func(v string) string {
		if v = strings.TrimSpace(v); v != "map" && v != "json" {
			return fmt.Sprintf("must be map or json, got %q", v)
		}
		return ""
	}},
	VaultK8sPreserveSecretCase:                                {check: anyBool},
	VaultK8sPrefix + "ca-cert":                                {check: accept}, // read by vaultK8sTLS
	VaultK8sPrefix + "client-cert":                            {check: accept},
	VaultK8sPrefix + "client-key":                             {check: accept},
	VaultK8sPrefix + "tls-server-name":                        {check: accept},
	VaultK8sPrefix + "tls-skip-verify":                        {check: anyBool},
	VaultK8sPrefix + "client-timeout":                         {check: accept}, // read by vaultK8sTimings
	VaultK8sPrefix + "auth-min-backoff":                       {check: accept},
	VaultK8sPrefix + "auth-max-backoff":                       {check: accept},
	VaultK8sPrefix + "template-static-secret-render-interval": {check: accept},
	VaultK8sPrefix + "agent-pre-populate":                     {check: anyBool},
	VaultK8sPrefix + "agent-pre-populate-only":                {check: anyBool}, // read by vaultK8sMode
	VaultK8sPrefix + "agent-init-first":                       {check: anyBool},
	VaultK8sPrefix + "agent-run-as-user":                      {check: accept}, // compared in finish
	VaultK8sPrefix + "agent-run-as-group":                     {check: accept},
	VaultK8sPrefix + "agent-run-as-same-user":                 {check: anyBool},
	VaultK8sPrefix + "agent-set-security-context": {check: boolIs(true,
		"outrider always gives its sidecar a restricted security context with the first target container's user; remove it")},
	VaultK8sPrefix + "agent-share-process-namespace": {check: anyBool},
	VaultK8sPrefix + "agent-cache-enable": {check: boolIs(false,
		"outrider has no Vault proxy or cache for the application: the app must not talk to Vault through the sidecar; render what it needs into files")},
	VaultK8sPrefix + "agent-cache-use-auto-auth-token": {check: accept}, // without the cache, no effect
	VaultK8sPrefix + "agent-cache-listener-port":       {check: accept},
	VaultK8sPrefix + "agent-cache-exit-on-err":         {check: accept},
	VaultK8sPrefix + "agent-inject-token": {check: boolIs(false,
		"outrider never writes its Vault token where the application can read it; render the secrets the app needs instead")},
	VaultK8sPrefix + "agent-revoke-on-shutdown": {check: boolIs(false,
		"outrider does not revoke its token at stop; its leases are revoked by its next run or run out at their TTL")},
	VaultK8sPrefix + "agent-revoke-grace":                    {check: accept},
	VaultK8sPrefix + "agent-request-namespace":               {check: accept},
	VaultK8sPrefix + "log-format":                            {check: accept},
	VaultK8sPrefix + "go-max-procs":                          {check: accept},
	VaultK8sPrefix + "client-max-retries":                    {check: accept},
	VaultK8sPrefix + "template-config-exit-on-retry-failure": {check: anyBool},
	VaultK8sPrefix + "template-max-connections-per-host":     {check: accept},
	VaultK8sPrefix + "agent-disable-idle-connections":        {check: accept},
	VaultK8sPrefix + "agent-disable-keep-alives":             {check: accept},
	VaultK8sPrefix + "agent-auto-auth-exit-on-err": {check: boolIs(false,
		"outrider keeps retrying the login with backoff (/readyz says why); it does not exit")},
	VaultK8sPrefix + "agent-enable-quit": {check: boolIs(false,
		"outrider has no quit endpoint: its native sidecar stops with the pod, so a Job completes without one")},
	VaultK8sPrefix + "proxy-address": {check: func(v string) string {
		if strings.TrimSpace(v) != "" {
			return "outrider's sidecar does not reach Vault through a proxy; remove it"
		}
		return ""
	}},
	VaultK8sPrefix + "ca-key":          {deny: "a CA directory is not read by outrider; give one CA file with tls-secret and ca-cert"},
	VaultK8sPrefix + "agent-configmap": {deny: "a Vault Agent configuration (HCL) cannot be read by outrider; write each file as agent-inject-secret-/agent-inject-template- annotations"},
	VaultK8sPrefix + "agent-extra-secret": {check: func(v string) string {
		if errs := validation.IsDNS1123Subdomain(strings.TrimSpace(v)); len(errs) > 0 {
			return fmt.Sprintf("%q is not a Secret name: %s", v, strings.Join(errs, "; "))
		}
		return ""
	}},
	VaultK8sPrefix + "agent-copy-volume-mounts":                {deny: "outrider mounts no application volumes into its sidecar"},
	VaultK8sPrefix + "agent-json-patch":                        {deny: "patches Vault Agent's container, which outrider does not inject; use outrider.dev/* annotations"},
	VaultK8sPrefix + "agent-init-json-patch":                   {deny: "patches Vault Agent's init container, which outrider does not inject; use outrider.dev/* annotations"},
	VaultK8sPrefix + "agent-service-account-token-volume-name": {deny: "outrider logs in with the pod's own service-account token (or a projected one it adds)"},
	VaultK8sPrefix + "agent-limits-ephemeral":                  {deny: "outrider's sidecar writes only to its size-limited volumes; use outrider.dev/queue-size-limit"},
	VaultK8sPrefix + "agent-requests-ephemeral":                {deny: "outrider's sidecar writes only to its size-limited volumes; use outrider.dev/queue-size-limit"},
	VaultK8sPrefix + "agent-metrics-listener-port":             {deny: "outrider serves its metrics on outrider.dev's agent port (/metrics)"},
}

// vaultK8sFile is one file of the vault-k8s annotations.
type vaultK8sFile struct {
	raw          string // the name as written after the prefix
	annotation   string // the annotation that defines it
	secretPath   string
	template     string
	templateFile string
	file         string
	perms        string
	command      string
	missingKey   bool
	reload       *reload.Config
}

// vaultK8s is what the vault-k8s annotations of one pod add to its injection.
type vaultK8s struct {
	files []vaultK8sFile
	// rename maps an outrider annotation a vault-k8s one was translated to back to
	// it, so that problems name what the user wrote.
	rename map[string]string
	ann    map[string]string // the pod's vault-k8s annotations

	caFile, certFile, keyFile, serverName string
	skipVerify                            bool
	timeout, minBackoff, maxBackoff, poll time.Duration
	shareProcess                          *bool
	extraSecret                           string
	extraMounts                           []string // more paths of the secrets volume in the app (secret-volume-path-<name>)
}

// wants reports whether the pod opted in: through outrider.dev/inject, or, in
// compatibility mode, through vault.hashicorp.com/agent-inject.
func (in *Injector) wants(ann map[string]string) (bool, problems) {
	ok, p := wantsInjection(podWithAnnotations(ann))
	if !in.defaults.VaultK8sCompat || len(p) > 0 || ann[AnnotationStatus] == StatusInjected || ann[VaultK8sStatus] == StatusInjected {
		return ok, p
	}
	v, set := ann[VaultK8sInject]
	if !set {
		return ok, p
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.add(VaultK8sInject, "%q is not a boolean; write \"true\" to inject or \"false\"", v)
		return false, p
	}
	if own, has := ann[AnnotationInject]; has && ok != b {
		p.add(VaultK8sInject, "%q disagrees with %s: %q; remove one of them", v, AnnotationInject, own)
		return false, p
	}
	return ok || b, nil
}

func podWithAnnotations(ann map[string]string) *corev1.Pod {
	p := &corev1.Pod{}
	p.Annotations = ann
	return p
}

// vaultK8sView returns the pod as parseOptions should see it: in compatibility mode,
// with the vault-k8s annotations translated to outrider's, and what they add that no
// outrider annotation says. Without compatibility mode, or without vault-k8s
// annotations, it returns the pod itself and a nil *vaultK8s.
func (in *Injector) vaultK8sView(pod *corev1.Pod) (*corev1.Pod, *vaultK8s, problems) {
	if !in.defaults.VaultK8sCompat || pod.Annotations[VaultK8sStatus] == StatusInjected {
		return pod, nil, nil
	}
	vk := &vaultK8s{rename: map[string]string{}, ann: map[string]string{}}
	for k, v := range pod.Annotations {
		if strings.HasPrefix(k, VaultK8sPrefix) {
			vk.ann[k] = v
		}
	}
	if len(vk.ann) == 0 {
		return pod, nil, nil
	}
	var p problems
	view := make(map[string]string, len(pod.Annotations))
	for k, v := range pod.Annotations {
		if !strings.HasPrefix(k, VaultK8sPrefix) {
			view[k] = v
		}
	}
	if s := vk.ann[VaultK8sStatus]; s != "" && s != StatusInjected {
		p.add(VaultK8sStatus, "%q: outrider injects a pod once, when it is created; remove it", s)
	}
	for _, k := range sortedKeys(vk.ann) {
		v := vk.ann[k]
		rule, known := vaultK8sRules[k]
		switch {
		case !known:
			switch {
			case isVaultK8sFileAnnotation(k):
			case strings.HasPrefix(k, VaultK8sPrefix+"agent-telemetry-"):
				p.add(k, "Vault Agent's telemetry; outrider serves its own metrics at /metrics on its agent port")
			default:
				p.add(k, "unknown or unsupported vault-k8s annotation; docs/migrating-from-vault-k8s.md lists those outrider reads")
			}
			continue
		case rule.deny != "":
			p.add(k, "%s", rule.deny)
			continue
		case rule.check != nil:
			if msg := rule.check(v); msg != "" {
				p.add(k, "%s", msg)
			}
			continue
		}
		if own, has := pod.Annotations[rule.to]; has {
			if strings.TrimSpace(own) != strings.TrimSpace(v) {
				p.add(k, "%q disagrees with %s: %q; set only one of them", v, rule.to, own)
			}
			continue
		}
		view[rule.to] = vaultK8sValue(k, v)
		vk.rename[rule.to] = k
	}
	vk.authConfig(view, pod.Annotations, &p)
	vk.tlsSettings(&p)
	vk.timings(&p)
	vk.extraSecret = strings.TrimSpace(vk.ann[VaultK8sPrefix+"agent-extra-secret"])
	vk.parseFiles(view, &p)
	vk.mode(view, in.defaults.SidecarMode, &p)
	if v, ok := vk.ann[VaultK8sPrefix+"agent-share-process-namespace"]; ok {
		b, _ := strconv.ParseBool(strings.TrimSpace(v))
		vk.shareProcess = &b
	}
	for _, f := range vk.files {
		if f.reload != nil && vk.shareProcess != nil && !*vk.shareProcess {
			p.add(VaultK8sPrefix+"agent-share-process-namespace", "is false, but %s%s signals a process of the app, which needs a shared process namespace", VaultK8sCommandPrefix, f.raw)
		}
	}
	if len(p) > 0 {
		return nil, nil, p
	}
	out := pod.DeepCopy()
	out.Annotations = view
	return out, vk, nil
}

// vaultK8sValue converts a value where vault-k8s and outrider write it differently.
func vaultK8sValue(key, v string) string {
	switch key {
	case VaultK8sPrefix + "log-level":
		if l := strings.ToLower(strings.TrimSpace(v)); l == "trace" {
			return "debug"
		} else if l == "warning" {
			return "warn"
		} else {
			return l
		}
	}
	return v
}

// vaultK8sFilePrefixes are the per-file annotation prefixes, in the order vault-k8s
// matches them (template-file before template).
var vaultK8sFilePrefixes = []string{
	VaultK8sSecretPrefix, VaultK8sTemplateFilePrefix, VaultK8sTemplatePrefix,
	VaultK8sFilePrefix, VaultK8sCommandPrefix, VaultK8sPermsPrefix, VaultK8sErrorOnMissingKeyPrefix,
	VaultK8sSecretVolumePath + "-", VaultK8sPreserveSecretCase + "-",
}

func isVaultK8sFileAnnotation(k string) bool {
	for _, p := range vaultK8sFilePrefixes {
		if rest, ok := strings.CutPrefix(k, p); ok && rest != "" {
			return true
		}
	}
	return false
}

// authConfig reads auth-type and the auth-config-* parameters.
func (vk *vaultK8s) authConfig(view, own map[string]string, p *problems) {
	if t, ok := vk.ann[VaultK8sPrefix+"auth-type"]; ok {
		if t = strings.TrimSpace(t); t != "kubernetes" && t != "jwt" {
			p.add(VaultK8sPrefix+"auth-type", "%q: outrider logs in with the pod's service-account token, by kubernetes or jwt; other methods are not available to injected sidecars", t)
		}
	}
	for _, k := range sortedKeys(vk.ann) {
		param, ok := strings.CutPrefix(k, VaultK8sAuthConfigPrefix)
		if !ok {
			continue
		}
		v := strings.TrimSpace(vk.ann[k])
		switch strings.ReplaceAll(param, "-", "_") {
		case "role":
			if r, has := view[AnnotationRole]; has && r != v {
				p.add(k, "%q disagrees with the role %q; set the role once", v, r)
				continue
			}
			view[AnnotationRole] = v
			if _, has := own[AnnotationRole]; !has {
				vk.rename[AnnotationRole] = k
			}
		case "token_path":
			if v != serviceAccountDir+"/token" {
				p.add(k, "%q: outrider logs in with the pod's service-account token at %s/token; other token files are not mounted into its sidecar", v, serviceAccountDir)
			}
		default:
			p.add(k, "the auth parameter %s is not one outrider's kubernetes or jwt login takes (role, token-path)", param)
		}
	}
}

// tlsSettings reads ca-cert, client-cert, client-key, tls-server-name and
// tls-skip-verify. The files must be keys of tls-secret, which outrider mounts at
// VaultTLSDir as vault-k8s does.
func (vk *vaultK8s) tlsSettings(p *problems) {
	secret := strings.TrimSpace(vk.ann[VaultK8sPrefix+"tls-secret"])
	for _, f := range []struct {
		key string
		dst *string
	}{
		{VaultK8sPrefix + "ca-cert", &vk.caFile},
		{VaultK8sPrefix + "client-cert", &vk.certFile},
		{VaultK8sPrefix + "client-key", &vk.keyFile},
	} {
		v, ok := vk.ann[f.key]
		if !ok {
			continue
		}
		v = path.Clean(strings.TrimSpace(v))
		switch {
		case secret == "":
			p.add(f.key, "%q: outrider's sidecar holds no files of Vault Agent's; put it in a Secret, name it with %stls-secret and give its path under %s", v, VaultK8sPrefix, VaultTLSDir)
		case path.Dir(v) != VaultTLSDir:
			p.add(f.key, "%q must be a key of the tls-secret %s, which is mounted at %s: write %s/<key>", v, secret, VaultTLSDir, VaultTLSDir)
		default:
			*f.dst = v
		}
	}
	if secret != "" && vk.caFile == "" {
		p.add(VaultK8sPrefix+"tls-secret", "set %sca-cert to the CA file in it (%s/<key>): outrider verifies Vault's certificate against it", VaultK8sPrefix, VaultTLSDir)
	}
	vk.serverName = strings.TrimSpace(vk.ann[VaultK8sPrefix+"tls-server-name"])
	vk.skipVerify, _ = strconv.ParseBool(strings.TrimSpace(vk.ann[VaultK8sPrefix+"tls-skip-verify"]))
}

// parseDuration reads a duration as vault-k8s does: Go's syntax, or whole seconds.
func parseDuration(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, true
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// timings reads the timeouts and intervals outrider has a setting for.
func (vk *vaultK8s) timings(p *problems) {
	for _, t := range []struct {
		key string
		dst *time.Duration
	}{
		{VaultK8sPrefix + "client-timeout", &vk.timeout},
		{VaultK8sPrefix + "auth-min-backoff", &vk.minBackoff},
		{VaultK8sPrefix + "auth-max-backoff", &vk.maxBackoff},
		{VaultK8sPrefix + "template-static-secret-render-interval", &vk.poll},
	} {
		v, ok := vk.ann[t.key]
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		d, ok := parseDuration(v)
		if !ok {
			p.add(t.key, "%q is not a duration; write e.g. 30s or 5m", v)
			continue
		}
		*t.dst = d
	}
}

// mode checks agent-pre-populate-only against the sidecar mode: a classic sidecar
// keeps a Job's pod from completing, which pre-populate-only is used to avoid.
func (vk *vaultK8s) mode(view map[string]string, def string, p *problems) {
	v, ok := vk.ann[VaultK8sPrefix+"agent-pre-populate-only"]
	if b, _ := strconv.ParseBool(strings.TrimSpace(v)); !ok || !b {
		return
	}
	mode := def
	if m, has := view[AnnotationSidecarMode]; has {
		mode = strings.TrimSpace(m)
	}
	if mode == ModeClassic {
		p.add(VaultK8sPrefix+"agent-pre-populate-only", "with %s: classic the sidecar keeps running after the app exits, so a Job never completes; use %s: native (the files exist before the app starts, and the sidecar stops with the pod)", AnnotationSidecarMode, AnnotationSidecarMode)
	}
}

// killCommand matches the reload commands outrider can run without a shell: kill
// -SIG $(pidof NAME), pkill -SIG NAME, killall -SIG NAME.
var killCommand = regexp.MustCompile(`^(?:kill\s+-(?:s\s+)?([A-Za-z0-9]+)\s+(?:\$\(\s*pidof\s+([A-Za-z0-9._-]+)\s*\)|` + "`" + `\s*pidof\s+([A-Za-z0-9._-]+)\s*` + "`" + `)|(?:pkill|killall)\s+-(?:s\s+)?([A-Za-z0-9]+)\s+([A-Za-z0-9._-]+))$`)

// shWrapper matches sh -c '…' or sh -c "…" (sh, /bin/sh, bash, /bin/bash).
var shWrapper = regexp.MustCompile(`^(?:/bin/)?(?:ba)?sh\s+-c\s+(?:'([^']*)'|"([^"]*)")$`)

// parseCommand turns a vault-k8s command into a signal reload, or says why it cannot.
func parseCommand(cmd string) (*reload.Config, string) {
	inner := strings.TrimSpace(cmd)
	// sh -c '…' around one of the forms, as vault-k8s examples write it.
	if m := shWrapper.FindStringSubmatch(inner); m != nil {
		inner = strings.TrimSpace(m[1] + m[2])
	}
	m := killCommand.FindStringSubmatch(inner)
	if m == nil {
		return nil, fmt.Sprintf("%q cannot run: outrider's sidecar has no shell; write the reload as kill -HUP $(pidof <process>) or pkill -HUP <process> (a signal to the app, which outrider sends itself), or use %s: http:<URL>", cmd, AnnotationReload)
	}
	sig, proc := m[1], m[2]+m[3]
	if sig == "" {
		sig, proc = m[4], m[5]
	}
	return &reload.Config{Method: reload.MethodSignal, Signal: sig, Process: proc}, ""
}

// parseFiles reads the per-file annotations.
func (vk *vaultK8s) parseFiles(view map[string]string, p *problems) {
	ann := vk.ann
	byRaw := map[string]*vaultK8sFile{}
	var order []string
	for _, k := range sortedKeys(ann) {
		for _, prefix := range []string{VaultK8sSecretPrefix, VaultK8sTemplateFilePrefix, VaultK8sTemplatePrefix} {
			raw, ok := strings.CutPrefix(k, prefix)
			if !ok {
				continue
			}
			if raw == "" {
				p.add(k, "names no file; write %s<name>", prefix)
				break
			}
			f := byRaw[raw]
			if f == nil {
				f = &vaultK8sFile{raw: raw, annotation: k}
				byRaw[raw] = f
				order = append(order, raw)
			}
			v := ann[k]
			switch prefix {
			case VaultK8sSecretPrefix:
				f.secretPath = strings.TrimSpace(v)
				if f.secretPath == "" {
					p.add(k, "is empty; give the Vault path to read, such as secret/data/%s", raw)
				}
			case VaultK8sTemplateFilePrefix:
				f.templateFile = strings.TrimSpace(v)
				if f.template == "" {
					f.annotation = k
				}
			case VaultK8sTemplatePrefix:
				f.template = v
				f.annotation = k
				f.templateFile = "" // vault-k8s uses the template and ignores the file
				if strings.TrimSpace(v) == "" {
					p.add(k, "is empty; give a Vault Agent template such as {{ with secret \"secret/data/%s\" }}{{ .Data.data.password }}{{ end }}", raw)
				}
			}
			break
		}
	}
	if len(order) > MaxSecretFiles {
		p.add(VaultK8sSecretPrefix+"<name>", "the pod has %d secret files, more than the limit of %d", len(order), MaxSecretFiles)
		return
	}
	// Per-file attributes.
	for _, k := range sortedKeys(ann) {
		for _, prefix := range []string{VaultK8sFilePrefix, VaultK8sCommandPrefix, VaultK8sPermsPrefix, VaultK8sErrorOnMissingKeyPrefix, VaultK8sSecretVolumePath + "-", VaultK8sPreserveSecretCase + "-"} {
			raw, ok := strings.CutPrefix(k, prefix)
			if !ok || raw == "" {
				continue
			}
			f := byRaw[raw]
			if f == nil {
				p.add(k, "there is no %s%s or %s%s for it to apply to", VaultK8sSecretPrefix, raw, VaultK8sTemplatePrefix, raw)
				break
			}
			v := strings.TrimSpace(ann[k])
			switch prefix {
			case VaultK8sFilePrefix:
				f.file = v
			case VaultK8sCommandPrefix:
				f.command = v
				if v != "" {
					var msg string
					if f.reload, msg = parseCommand(v); msg != "" {
						p.add(k, "%s", msg)
					}
				}
			case VaultK8sPermsPrefix:
				f.perms = v
				if msg := checkPerms(v); msg != "" {
					p.add(k, "%s: outrider writes the file as the app's user (the first target container's runAsUser), so 0400 or 0440 lets the app read it", msg)
				}
			case VaultK8sErrorOnMissingKeyPrefix:
				b, err := strconv.ParseBool(v)
				if err != nil {
					p.add(k, "%q is not a boolean; write true or false", v)
				}
				f.missingKey = b
			case VaultK8sSecretVolumePath + "-":
				dir := view[AnnotationSecretsDir]
				if dir == "" {
					dir = DefaultSecretsDir
				}
				dir, v = path.Clean(dir), path.Clean(v)
				switch {
				case v == dir:
				case checkMountDir(v) != "":
					p.add(k, "%s", checkMountDir(v))
				case within(v, dir) || within(dir, v):
					p.add(k, "%q is nested with the secrets directory %s; give a directory apart from it", v, dir)
				default:
					// vault-k8s mounts the secrets volume there too: every file is
					// seen at every such path.
					if !slices.Contains(vk.extraMounts, v) {
						vk.extraMounts = append(vk.extraMounts, v)
					}
				}
			case VaultK8sPreserveSecretCase + "-":
				if _, err := strconv.ParseBool(v); err != nil {
					p.add(k, "%q is not a boolean; write true or false", v)
				}
			}
			break
		}
	}
	jsonDefault := strings.TrimSpace(ann[VaultK8sDefaultTemplate]) == "json"
	names := map[string]string{}
	for _, raw := range order {
		f := byRaw[raw]
		name := raw
		if !vk.preserveCase(raw) {
			name = strings.ToLower(raw)
		}
		if f.file != "" {
			name = f.file
		}
		if !fileName(name) {
			p.add(f.annotation, "the file name %q cannot be written by outrider: use letters, digits, '.', '_' and '-' (no directories), not starting with '.' (set %s%s)", name, VaultK8sFilePrefix, raw)
			continue
		}
		if other, dup := names[name]; dup {
			p.add(f.annotation, "writes the file %s, as %s does; give each file its own name", name, other)
			continue
		}
		names[name] = f.annotation
		if f.template == "" && f.templateFile != "" {
			clean := path.Clean(f.templateFile)
			switch {
			case vk.extraSecret == "":
				p.add(VaultK8sTemplateFilePrefix+raw, "%q: outrider's sidecar holds template files only from %sagent-extra-secret, mounted at %s as in vault-k8s (agent-configmap is not read); name the Secret holding it, or put the template in %s%s", f.templateFile, VaultK8sPrefix, VaultK8sExtraSecretDir, VaultK8sTemplatePrefix, raw)
				continue
			case path.Dir(clean) != VaultK8sExtraSecretDir:
				p.add(VaultK8sTemplateFilePrefix+raw, "%q must be a key of the agent-extra-secret %s, mounted at %s: write %s/<key>", f.templateFile, vk.extraSecret, VaultK8sExtraSecretDir, VaultK8sExtraSecretDir)
				continue
			}
			f.templateFile = clean
		}
		if f.template == "" && f.templateFile == "" && f.secretPath != "" {
			tmpl := DefaultVaultK8sTemplate
			if jsonDefault {
				tmpl = DefaultVaultK8sJSONTemplate
			}
			f.template = fmt.Sprintf(tmpl, f.secretPath)
		}
		f.file = name
		vk.files = append(vk.files, *f)
	}
}

func (vk *vaultK8s) preserveCase(raw string) bool {
	v, ok := vk.ann[VaultK8sPreserveSecretCase+"-"+raw]
	if !ok {
		v = vk.ann[VaultK8sPreserveSecretCase]
	}
	b, _ := strconv.ParseBool(strings.TrimSpace(v))
	return b
}

// fileOptions returns the files for parseOptions, ahead of outrider's own.
func (vk *vaultK8s) fileOptions() []fileOptions {
	if vk == nil {
		return nil
	}
	out := make([]fileOptions, 0, len(vk.files))
	for _, f := range vk.files {
		out = append(out, fileOptions{name: f.file, annotation: f.annotation, template: f.template, perms: f.perms})
	}
	return out
}

// applyConfig adds to the generated configuration what the vault-k8s annotations say
// beyond outrider's: the consul-template engine and missing-key rule of their files,
// their reloads, and the Vault client's TLS and timings. rules gets the annotations to
// blame for those fields.
func (vk *vaultK8s) applyConfig(cfg *config.Config, rules *[]blameRule) {
	if vk == nil {
		return
	}
	s := &cfg.Secrets
	var mine []blameRule
	for i, f := range vk.files {
		if i >= len(s.Files) {
			break
		}
		fc := &s.Files[i]
		fc.TemplateEngine = render.EngineConsulTemplate
		if f.template == "" {
			// Read by the sidecar from the mounted agent-extra-secret.
			fc.TemplateFile = f.templateFile
		}
		missing := f.missingKey
		fc.ErrorOnMissingKey = &missing
		prefix := fmt.Sprintf("secrets.files[%d]", i)
		if f.reload != nil {
			r := *f.reload
			fc.Reload = &r
			mine = append(mine, blameRule{prefix + ".reload", VaultK8sCommandPrefix + f.raw})
		}
		mine = append(mine, blameRule{prefix + ".mode", VaultK8sPermsPrefix + f.raw})
	}
	if len(s.Files) > 0 {
		// The CA and client files are given to the sidecar by environment
		// (vaultFileEnv): the webhook cannot read them to validate them.
		t := &s.Vault.TLS
		t.ServerName, t.InsecureSkipVerify = vk.serverName, vk.skipVerify
		mine = append(mine, blameRule{"secrets.vault.tls", VaultK8sPrefix + "tls-secret"})
		if vk.timeout > 0 {
			s.Vault.Timeout = vk.timeout
			mine = append(mine, blameRule{"secrets.vault.timeout", VaultK8sPrefix + "client-timeout"})
		}
		if vk.poll > 0 {
			s.PollInterval = vk.poll
			mine = append(mine, blameRule{"secrets.poll_interval", VaultK8sPrefix + "template-static-secret-render-interval"})
		}
		if vk.minBackoff > 0 {
			s.Retry.InitialInterval = vk.minBackoff
			mine = append(mine, blameRule{"secrets.retry.initial_interval", VaultK8sPrefix + "auth-min-backoff"})
		}
		if vk.maxBackoff > 0 {
			s.Retry.MaxInterval = vk.maxBackoff
			mine = append(mine, blameRule{"secrets.retry.max_interval", VaultK8sPrefix + "auth-max-backoff"})
		}
	}
	*rules = append(mine, *rules...)
}

// finish checks what needs the whole plan (the sidecar's user), and adds to the patch
// the shared process namespace the files' signal reloads need and the vault-k8s
// status, so that a vault-k8s injector still running beside outrider leaves the pod
// alone.
func (vk *vaultK8s) finish(pod *corev1.Pod, o *options, pl *plan) problems {
	if vk == nil {
		return nil
	}
	var p problems
	uid, gid := runAs(pod, o)
	for _, c := range []struct {
		key  string
		have int64
	}{{VaultK8sPrefix + "agent-run-as-user", uid}, {VaultK8sPrefix + "agent-run-as-group", gid}} {
		v, ok := vk.ann[c.key]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n != c.have {
			p.add(c.key, "%q: outrider runs its sidecar as %d (the first target container's user and group when it sets a non-root runAsUser, else 65532) so that the 0400 files are the app's; set the container's runAsUser/runAsGroup instead, or remove it", v, c.have)
		}
	}
	if b, _ := strconv.ParseBool(strings.TrimSpace(vk.ann[VaultK8sPrefix+"agent-run-as-same-user"])); b {
		if len(pod.Spec.Containers) == 0 || pod.Spec.Containers[0].SecurityContext == nil || pod.Spec.Containers[0].SecurityContext.RunAsUser == nil || *pod.Spec.Containers[0].SecurityContext.RunAsUser == 0 {
			p.add(VaultK8sPrefix+"agent-run-as-same-user", "needs a non-root runAsUser in the first container's securityContext, as in vault-k8s")
		}
	}
	if len(p) > 0 {
		return p
	}
	signals := false
	for _, f := range vk.files {
		signals = signals || f.reload != nil
	}
	share := (signals || (vk.shareProcess != nil && *vk.shareProcess)) && o.reloadMethod != reload.MethodSignal
	if share && pod.Spec.ShareProcessNamespace == nil {
		pl.ops = append(pl.ops, patchOp{Op: "add", Path: "/spec/shareProcessNamespace", Value: true})
	} else if signals && pod.Spec.ShareProcessNamespace != nil && !*pod.Spec.ShareProcessNamespace {
		p.add(VaultK8sCommandPrefix+"<name>", "signals a process of the app, which needs spec.shareProcessNamespace: true, but the pod sets it to false")
		return p
	}
	if vk.extraSecret != "" {
		for _, v := range pod.Spec.Volumes {
			if v.Name == VolumeVaultK8sExtraSecret {
				p.add(VaultK8sPrefix+"agent-extra-secret", "the pod already has a volume named %q; rename it", v.Name)
			}
		}
		if within(o.secretsDir, VaultK8sExtraSecretDir) || within(VaultK8sExtraSecretDir, o.secretsDir) {
			p.add(VaultK8sPrefix+"agent-extra-secret", "is mounted at %s, which overlaps the secrets directory %s; choose another secret-volume-path", VaultK8sExtraSecretDir, o.secretsDir)
		}
		if len(p) > 0 {
			return p
		}
		pl.ops = append(pl.ops, patchOp{Op: "add", Path: "/spec/volumes/-", Value: corev1.Volume{
			Name:         VolumeVaultK8sExtraSecret,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: vk.extraSecret}},
		}})
	}
	for i, dir := range vk.extraMounts {
		for _, other := range vk.extraMounts[:i] {
			if within(dir, other) || within(other, dir) {
				p.add(VaultK8sSecretVolumePath+"-<name>", "directories %s and %s are nested; give directories apart from each other", other, dir)
			}
		}
		for _, t := range o.targets {
			c := containerOf(pod, t)
			base := fmt.Sprintf("/spec/containers/%d", t.index)
			if t.init {
				base = fmt.Sprintf("/spec/initContainers/%d", t.index)
			}
			for _, m := range c.VolumeMounts {
				if path.Clean(m.MountPath) == dir {
					p.add(VaultK8sSecretVolumePath+"-<name>", "container %q already mounts volume %q at %s; remove that mount or choose another directory", c.Name, m.Name, dir)
				}
			}
			pl.ops = append(pl.ops, patchOp{Op: "add", Path: base + "/volumeMounts/-", Value: corev1.VolumeMount{Name: VolumeSecrets, MountPath: dir, ReadOnly: true}})
		}
	}
	if len(p) > 0 {
		return p
	}
	vk.vaultFileEnv(pl)
	pl.ops = append(pl.ops, patchOp{Op: "add", Path: "/metadata/annotations/" + pointerEscape(VaultK8sStatus), Value: StatusInjected})
	return nil
}

// vaultFileEnv points the Vault client of the sidecar (and of the classic init
// container) at the ca-cert, client-cert and client-key files in the mounted
// tls-secret, through the VAULT_* variables its configuration defaults to, and
// mounts agent-extra-secret in them.
func (vk *vaultK8s) vaultFileEnv(pl *plan) {
	set := map[string]string{"VAULT_CACERT": vk.caFile, "VAULT_CLIENT_CERT": vk.certFile, "VAULT_CLIENT_KEY": vk.keyFile}
	fix := func(c *corev1.Container) {
		if c.Name != SidecarName && c.Name != InitName {
			return
		}
		if vk.extraSecret != "" {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: VolumeVaultK8sExtraSecret, MountPath: VaultK8sExtraSecretDir, ReadOnly: true})
		}
		for _, name := range []string{"VAULT_CACERT", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"} {
			v := set[name]
			if v == "" {
				continue
			}
			found := false
			for i := range c.Env {
				if c.Env[i].Name == name {
					c.Env[i].Value, found = v, true
				}
			}
			if !found {
				c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: v})
			}
		}
	}
	for i := range pl.ops {
		switch v := pl.ops[i].Value.(type) {
		case corev1.Container:
			fix(&v)
			pl.ops[i].Value = v
		case []corev1.Container:
			for j := range v {
				fix(&v[j])
			}
		}
	}
}

// blame rewrites problems about an outrider annotation that a vault-k8s one was
// translated to, so that they name the annotation the user wrote.
func (vk *vaultK8s) blame(p problems) problems {
	if vk == nil || len(p) == 0 {
		return p
	}
	out := make(problems, len(p))
	for i, msg := range p {
		out[i] = msg
		key, rest, ok := strings.Cut(msg, ": ")
		if !ok {
			continue
		}
		if v, ok := vk.rename[key]; ok {
			out[i] = v + " (read as " + key + "): " + rest
		}
	}
	return out
}
