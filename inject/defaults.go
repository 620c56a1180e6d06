package inject

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Defaults of Defaults.ApplyDefaults. The resources come from measurements of the
// agent (docs/annotations.md, "Default resources").
const (
	DefaultSidecarMode      = ModeNative
	DefaultCPURequest       = "10m"
	DefaultMemoryRequest    = "32Mi"
	DefaultMemoryLimit      = "96Mi"
	DefaultSecretsSizeLimit = "4Mi"
	DefaultQueueSizeLimit   = "256Mi"
	DefaultAgentPort        = 8686
	// MinQueueSizeLimit is the smallest queue volume: each of the two queues needs at
	// least two 8MiB segments.
	MinQueueSizeLimit = "64Mi"
)

// Defaults are the injector-wide settings, from the injector's flags or its
// configuration file. Each applies only to pods that do not set the matching
// annotation.
type Defaults struct {
	// Image is the sidecar's image (AnnotationImage); required.
	Image string `yaml:"image"`
	// SidecarMode is ModeNative or ModeClassic (AnnotationSidecarMode); default
	// native.
	SidecarMode string `yaml:"sidecar_mode"`
	// VaultAddr is Vault's URL (AnnotationVaultAddr).
	VaultAddr string `yaml:"vault_addr"`
	// LokiURL is Loki's URL (AnnotationLokiURL); logs are shipped only when it or the
	// annotation is set.
	LokiURL string `yaml:"loki_url"`
	// TempoEndpoint is the OTLP gRPC endpoint for traces (AnnotationTempoEndpoint);
	// traces are shipped only when it or the annotation is set.
	TempoEndpoint string `yaml:"tempo_endpoint"`
	// MetricsEndpoint is the OTLP/HTTP endpoint of a Prometheus or Mimir OTLP
	// receiver (AnnotationMetricsEndpoint); metrics are shipped only when it or the
	// annotation is set, and the app's SDK is told not to export them otherwise.
	MetricsEndpoint string `yaml:"metrics_endpoint"`
	// SentryDSNSecret is "<secret>/<key>", the default of
	// AnnotationSentryDSNSecret: a Secret holding the upstream Sentry DSN, which must
	// exist in the namespace of each pod that uses it. Errors are forwarded only when
	// it or the annotation is set.
	SentryDSNSecret string `yaml:"sentry_dsn_secret"`
	// SentryDSN is refused: a DSN given to the injector would be copied in clear into
	// every pod's AnnotationConfig. It is kept only to say so, and never printed.
	SentryDSN string `yaml:"sentry_dsn"`
	// CPURequest, CPULimit, MemoryRequest and MemoryLimit are the sidecar's
	// resources, as Kubernetes quantities; "" for CPULimit (the default) and "none"
	// for MemoryLimit set no limit.
	CPURequest    string `yaml:"cpu_request"`
	CPULimit      string `yaml:"cpu_limit"`
	MemoryRequest string `yaml:"memory_request"`
	MemoryLimit   string `yaml:"memory_limit"`
	// SecretsSizeLimit bounds the in-memory secrets volume (AnnotationSecretsSizeLimit).
	SecretsSizeLimit string `yaml:"secrets_size_limit"`
	// QueueSizeLimit bounds the queue volume (AnnotationQueueSizeLimit).
	QueueSizeLimit string `yaml:"queue_size_limit"`
	// VaultK8sCompat also reads the vault.hashicorp.com/* annotations of HashiCorp's
	// Vault Agent injector (vault-k8s), as docs/migrating-from-vault-k8s.md describes;
	// off by default.
	VaultK8sCompat bool `yaml:"vault_k8s_compat"`
	// LokiBasicAuthSecret, LokiBearerTokenSecret and TempoHeadersSecret are the
	// defaults of the annotations of the same names (credentials.go): Secrets of
	// each pod's namespace, which must exist where they are used.
	LokiBasicAuthSecret   string `yaml:"loki_basic_auth_secret"`
	LokiBearerTokenSecret string `yaml:"loki_bearer_token_secret"`
	TempoHeadersSecret    string `yaml:"tempo_headers_secret"`
	// LokiCASecret, TempoCASecret and SentryCASecret are the defaults of the
	// <backend>-ca-secret annotations.
	LokiCASecret   string `yaml:"loki_ca_secret"`
	TempoCASecret  string `yaml:"tempo_ca_secret"`
	SentryCASecret string `yaml:"sentry_ca_secret"`
	// LokiClientCertSecret, TempoClientCertSecret and SentryClientCertSecret are the
	// defaults of the <backend>-client-cert-secret annotations.
	LokiClientCertSecret   string `yaml:"loki_client_cert_secret"`
	TempoClientCertSecret  string `yaml:"tempo_client_cert_secret"`
	SentryClientCertSecret string `yaml:"sentry_client_cert_secret"`
	// NamespaceOverlays is "<namespace>=<configmap>[/<key>],…" ("*" for every
	// namespace not listed): the ConfigMap holding the configuration overlay of each
	// namespace's pods, mounted optionally, so a namespace without it gets none.
	NamespaceOverlays string `yaml:"namespace_overlays"`
	// AgentPort is the port of the sidecar's /metrics, /healthz and /readyz, served on
	// every address of the pod so that the kubelet can probe it; default 8686.
	AgentPort int `yaml:"agent_port"`
}

// ApplyDefaults fills zero-valued fields with their defaults.
func (d *Defaults) ApplyDefaults() {
	set := func(f *string, v string) {
		if *f == "" {
			*f = v
		}
	}
	set(&d.SidecarMode, DefaultSidecarMode)
	set(&d.CPURequest, DefaultCPURequest)
	set(&d.MemoryRequest, DefaultMemoryRequest)
	set(&d.MemoryLimit, DefaultMemoryLimit)
	set(&d.SecretsSizeLimit, DefaultSecretsSizeLimit)
	set(&d.QueueSizeLimit, DefaultQueueSizeLimit)
	if d.AgentPort == 0 {
		d.AgentPort = DefaultAgentPort
	}
}

// Validate reports every problem with its field path. Call it after ApplyDefaults.
// The URLs are checked by NewInjector, which generates a sidecar configuration from
// them.
func (d *Defaults) Validate(p *confval.Problems) {
	if d.Image == "" {
		p.Addf("image", "required: the sidecar image, such as ghcr.io/outrider-dev/outrider:v1.0.0")
	} else if msg := checkImage(d.Image); msg != "" {
		p.Addf("image", "%s", msg)
	}
	switch d.SidecarMode {
	case ModeNative, ModeClassic:
	default:
		p.Addf("sidecar_mode", "must be %q or %q, got %q", ModeNative, ModeClassic, d.SidecarMode)
	}
	for _, q := range []struct {
		field, value string
		memory, none bool
	}{
		{"cpu_request", d.CPURequest, false, false},
		{"cpu_limit", d.CPULimit, false, true},
		{"memory_request", d.MemoryRequest, true, false},
		{"memory_limit", d.MemoryLimit, true, true},
		{"secrets_size_limit", d.SecretsSizeLimit, true, false},
		{"queue_size_limit", d.QueueSizeLimit, true, false},
	} {
		if q.none && (q.value == "" || q.value == "none") {
			continue
		}
		if _, msg := parseQuantity(q.value, q.memory); msg != "" {
			p.Addf(q.field, "%s", msg)
		}
	}
	if d.SentryDSN != "" {
		p.Addf("sentry_dsn", "a DSN given to the injector (--sentry-dsn) would be copied in clear into every pod's %s annotation; put it in a Secret in each namespace and pass --sentry-dsn-secret <secret>/<key> (sentry_dsn_secret) instead", AnnotationConfig)
	}
	if d.SentryDSNSecret != "" {
		if _, msg := parseSecretRef(d.SentryDSNSecret); msg != "" {
			p.Addf("sentry_dsn_secret", "%s", msg)
		}
	}
	d.validateCredentials(p)
	validateNamespaceOverlays(p, d.NamespaceOverlays)
	if d.AgentPort < 1 || d.AgentPort > 65535 {
		p.Addf("agent_port", "must be a port between 1 and 65535, got %d", d.AgentPort)
	}
}

var (
	maxMemory = resource.MustParse("1Pi")
	maxCPU    = resource.MustParse("1000")
)

// parseQuantity parses a Kubernetes quantity that must be positive; memory quantities
// must be whole bytes. It returns a message saying what to write instead.
func parseQuantity(s string, memory bool) (resource.Quantity, string) {
	example := `"100m" or "0.5"`
	if memory {
		example = `"64Mi" or "1Gi"`
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, fmt.Sprintf("%q is not a Kubernetes quantity; write e.g. %s", s, example)
	}
	if q.Sign() <= 0 {
		return q, fmt.Sprintf("%q must be positive, e.g. %s", s, example)
	}
	if memory {
		if q.Cmp(maxMemory) >= 0 || q.MilliValue()%1000 != 0 {
			return q, fmt.Sprintf("%q is not a whole number of bytes below 1Pi; write e.g. %s", s, example)
		}
	} else if q.Cmp(maxCPU) > 0 || q.MilliValue() < 1 {
		return q, fmt.Sprintf("%q is out of range; write between 1m and 1000 CPUs, e.g. %s", s, example)
	}
	return q, ""
}
