package inject

// Prefix starts every annotation the injector reads or writes. An annotation under
// this prefix that is not listed here denies the pod, so that a typo never goes
// unnoticed.
const Prefix = "outrider.dev/"

// Annotations read by the injector. docs/annotations.md is generated from the doc
// comments below (go test ./inject -run TestAnnotationsDoc -update); each comment's
// last sentence says the default.
const (
	// AnnotationInject opts a pod in: "true" injects the outrider sidecar, "false" (or
	// no annotation) leaves the pod untouched. Any other value denies the pod.
	// Default: not injected.
	AnnotationInject = "outrider.dev/inject"

	// AnnotationStatus is written by the injector: "injected" marks a pod that already
	// has the sidecar, and such a pod is never injected again (a second pass returns no
	// patch). Set it yourself only to skip injection of a pod that carries its own
	// outrider. Default: written by the injector.
	AnnotationStatus = "outrider.dev/status"

	// AnnotationConfig is written by the injector: the sidecar's configuration, as the
	// YAML of `outrider agent --config`, generated from the other annotations. The
	// sidecar reads it through a downward-API volume at /etc/outrider/config.yaml. A
	// value set before injection is replaced. Default: written by the injector.
	AnnotationConfig = "outrider.dev/config"

	// AnnotationSidecarMode is "native" (an init container with restartPolicy: Always
	// and a startup probe on /readyz, Kubernetes 1.29 and later: the app containers
	// start after the first secret render and Jobs complete) or "classic" (an
	// `outrider render --once` init container plus a regular sidecar container, for
	// older clusters; a Job's pod then never completes). Default: the injector's
	// --sidecar-mode, itself "native" by default.
	AnnotationSidecarMode = "outrider.dev/sidecar-mode"

	// AnnotationSidecarOrder places the native sidecar among a service mesh's init
	// containers (Istio's istio-init/istio-validation and istio-proxy, Linkerd's
	// linkerd-init/linkerd-network-validator and linkerd-proxy): "first" puts it
	// before them, so its first Vault login and render happen before the mesh
	// redirects the pod's traffic (with a mesh CNI plugin, which redirects from the
	// start, exclude Vault's port from the redirection); "after-mesh" puts it right
	// after the mesh's native proxy, which is then ready, so Vault is reached through
	// the mesh (mTLS, mesh policies). A mesh whose proxy is a regular container
	// cannot be waited for and denies after-mesh. See docs/annotations.md, "Beside a
	// service mesh". Default: first.
	AnnotationSidecarOrder = "outrider.dev/sidecar-order"

	// AnnotationImage is the sidecar's image. Default: the injector's --image.
	AnnotationImage = "outrider.dev/image"

	// AnnotationContainer lists, comma-separated, the containers that get the secrets
	// and log mounts and the telemetry environment. It may name init containers, which
	// then run with the secrets already rendered. The first one named is the
	// container whose user the sidecar runs as and whose name labels the collected
	// logs. Default: every container of spec.containers.
	AnnotationContainer = "outrider.dev/container"

	// AnnotationService is the service name: OTEL_SERVICE_NAME of the app containers
	// and the sidecar, the service label of logs in Loki. Default: the pod's label
	// app.kubernetes.io/name, else its label app, else the first target container's
	// name.
	AnnotationService = "outrider.dev/service"

	// AnnotationLogLevel is the sidecar's own log level: debug, info, warn or error.
	// Default: info.
	AnnotationLogLevel = "outrider.dev/log-level"

	// AnnotationCPURequest is the sidecar's CPU request, a Kubernetes quantity such as
	// "10m". Default: the injector's --cpu-request.
	AnnotationCPURequest = "outrider.dev/cpu-request"

	// AnnotationCPULimit is the sidecar's CPU limit, a Kubernetes quantity such as
	// "500m". Default: the injector's --cpu-limit, itself none (a CPU limit only
	// throttles shipping).
	AnnotationCPULimit = "outrider.dev/cpu-limit"

	// AnnotationMemoryRequest is the sidecar's memory request, a Kubernetes quantity
	// such as "32Mi". Default: the injector's --memory-request.
	AnnotationMemoryRequest = "outrider.dev/memory-request"

	// AnnotationMemoryLimit is the sidecar's memory limit, a Kubernetes quantity such as
	// "128Mi"; "none" sets none. The agent's soft heap limit (runtime.memory_limit) is
	// set to 80% of it. Default: the injector's --memory-limit.
	AnnotationMemoryLimit = "outrider.dev/memory-limit"

	// AnnotationVaultAddr is Vault's URL, such as https://vault.vault:8200. Default:
	// the injector's --vault-addr.
	AnnotationVaultAddr = "outrider.dev/vault-addr"

	// AnnotationVaultNamespace is the Vault Enterprise / HCP namespace
	// (X-Vault-Namespace). Default: none.
	AnnotationVaultNamespace = "outrider.dev/vault-namespace"

	// AnnotationVaultCASecret names a Secret of the pod's namespace whose key ca.crt
	// holds the PEM CA certificates Vault's TLS certificate is checked against. It is
	// mounted read-only at /vault/tls in the sidecar and passed as VAULT_CACERT.
	// Default: the system's roots.
	AnnotationVaultCASecret = "outrider.dev/vault-ca-secret"

	// AnnotationRole is the Vault role the sidecar logs in as. Required when the pod
	// has secrets. Default: none.
	AnnotationRole = "outrider.dev/role"

	// AnnotationAuthPath is the path where the auth method is mounted in Vault, with or
	// without the "auth/" prefix ("kubernetes", "auth/k8s-prod"). Default: the auth
	// method's name.
	AnnotationAuthPath = "outrider.dev/auth-path"

	// AnnotationAuthMethod is how the sidecar logs in to Vault with the pod's
	// service-account token: "kubernetes" or "jwt". Default: kubernetes.
	AnnotationAuthMethod = "outrider.dev/auth-method"

	// AnnotationSecretPrefix, followed by a file name, renders the Vault path in the
	// value (as in `vault read`, such as secret/data/db) into <secrets-dir>/<name>,
	// written in <name>'s format. The name is made of letters, digits, '.', '_' and
	// '-'; the suffixes -format, -perms and -key belong to the annotations below.
	// Default: none.
	AnnotationSecretPrefix = "outrider.dev/secret-"

	// AnnotationTemplatePrefix, followed by a file name, renders the Go template in the
	// value into <secrets-dir>/<name>. The template names its own Vault paths:
	// {{ with secret "secret/data/db" }}{{ .Data.data.password }}{{ end }}. A name has
	// either a secret- or a template- annotation, not both. Default: none.
	AnnotationTemplatePrefix = "outrider.dev/template-"

	// AnnotationSecretFormatSuffix, after outrider.dev/secret-<name>, is the encoding
	// of the file: env, json, yaml, properties or raw (raw writes the one value named
	// by -key). Default: raw when -key is set, else env.
	AnnotationSecretFormatSuffix = "-format"

	// AnnotationSecretKeySuffix, after outrider.dev/secret-<name>, names the one value
	// the raw format writes. Default: none.
	AnnotationSecretKeySuffix = "-key"

	// AnnotationSecretPermsSuffix, after outrider.dev/secret-<name> or
	// outrider.dev/template-<name>, is the file's permission in octal, such as "0440";
	// a mode that gives "other" users access is refused. The file belongs to the
	// sidecar's user, which is the first target container's runAsUser when the pod
	// sets one (so "0400" lets the app read it), else 65532. Default: 0400.
	AnnotationSecretPermsSuffix = "-perms"

	// AnnotationSecretsDir is the directory the secret files are rendered into, an
	// in-memory volume mounted in the sidecar and in the target containers (read-only).
	// Default: /vault/secrets.
	AnnotationSecretsDir = "outrider.dev/secrets-dir"

	// AnnotationSecretsSizeLimit is the size limit of the in-memory secrets volume, a
	// Kubernetes quantity. Default: the injector's --secrets-size-limit.
	AnnotationSecretsSizeLimit = "outrider.dev/secrets-size-limit"

	// AnnotationReload is how the app is told that a secret file changed: "none";
	// "signal:<SIG>" (such as signal:HUP) sends a signal to the process named by
	// reload-process, which needs a shared process namespace (the injector sets
	// spec.shareProcessNamespace: true); "http:<URL>" sends a POST to a loopback URL
	// such as http:http://127.0.0.1:8080/-/reload. Default: none.
	AnnotationReload = "outrider.dev/reload"

	// AnnotationReloadProcess names the process that reload signal:<SIG> signals (its
	// base name, such as nginx). Default: the base name of the first target
	// container's command[0], when it has one.
	AnnotationReloadProcess = "outrider.dev/reload-process"

	// AnnotationLogs lists, comma-separated, the absolute paths (the last element may
	// be a glob) of the log files the app writes, such as
	// /var/log/app/*.log,/var/log/nginx/access.log. An emptyDir is mounted at each
	// directory in the target containers and read-only at the same path in the
	// sidecar, which tails the files to Loki. Default: no files (OTLP logs still flow).
	AnnotationLogs = "outrider.dev/logs"

	// AnnotationLogsSizeLimit is the size limit of the shared log volume, a Kubernetes
	// quantity. Beyond it the kubelet evicts the pod, so rotate the files. Default: no
	// limit.
	AnnotationLogsSizeLimit = "outrider.dev/logs-size-limit"

	// AnnotationStdout is "true" to also ship what the pod's containers write to
	// stdout and stderr: the node's pod log directory (/var/log/pods, a hostPath) is mounted
	// read-only in the sidecar at /var/log/outrider-pod, restricted with subPathExpr to
	// the pod's own directory ($(POD_NAMESPACE)_$(POD_NAME)_$(POD_UID)), and the
	// sidecar tails the CRI log files of every container but its own. The hostPath
	// makes the pod fail Pod Security "baseline" and "restricted"; where those are
	// enforced, run the node DaemonSet (deploy/node) instead. The sidecar then runs
	// with group 0, the group of the runtime's log files (root:root, mode 0640).
	// Default: false.
	AnnotationStdout = "outrider.dev/stdout"

	// AnnotationLokiURL is Loki's URL, such as http://loki.monitoring:3100. Default:
	// the injector's --loki-url.
	AnnotationLokiURL = "outrider.dev/loki-url"

	// AnnotationLokiTenant is the Loki tenant (X-Scope-OrgID). Default: none.
	AnnotationLokiTenant = "outrider.dev/loki-tenant"

	// AnnotationTempoEndpoint is the OTLP gRPC endpoint traces go to, such as
	// http://tempo.monitoring:4317. Default: the injector's --tempo-endpoint.
	AnnotationTempoEndpoint = "outrider.dev/tempo-endpoint"

	// AnnotationMetricsEndpoint is the OTLP/HTTP endpoint metrics go to: a Prometheus
	// or Mimir OTLP receiver such as
	// http://prometheus.monitoring:9090/api/v1/otlp/v1/metrics. The app containers get
	// OTEL_METRICS_EXPORTER=otlp, so that their SDK sends metrics to the sidecar, which
	// queues them and forwards them there (exporters.otlp_metrics). Without it they
	// get OTEL_METRICS_EXPORTER=none, so that SDKs stop exporting metrics instead of
	// failing; a value the container sets itself is kept. Default: the injector's
	// --metrics-endpoint, itself none.
	AnnotationMetricsEndpoint = "outrider.dev/metrics-endpoint"

	// AnnotationOTLPProtocol is the protocol the app's OpenTelemetry SDK speaks to the
	// sidecar: "http/protobuf" (OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318) or
	// "grpc" (http://127.0.0.1:4317); OTEL_EXPORTER_OTLP_PROTOCOL is set to match.
	// Default: http/protobuf.
	AnnotationOTLPProtocol = "outrider.dev/otlp-protocol"

	// AnnotationSentryDSN is refused: a DSN written in an annotation would be copied
	// in clear into outrider.dev/config. Put the DSN in a Secret and name it with
	// sentry-dsn-secret. Default: refused.
	AnnotationSentryDSN = "outrider.dev/sentry-dsn"

	// AnnotationSentryDSNSecret is "<secret>/<key>": a Secret of the pod's namespace
	// holding the upstream Sentry DSN errors are forwarded to. The Secret is mounted
	// read-only at /etc/outrider-sentry in the sidecar (and the classic init
	// container) only, which reads the DSN from there (exporters.sentry.dsn_file), so
	// it appears in no annotation and in no environment; the app containers get
	// SENTRY_DSN pointing at the sidecar instead.
	// Default: the injector's --sentry-dsn-secret, itself none.
	AnnotationSentryDSNSecret = "outrider.dev/sentry-dsn-secret"

	// AnnotationQueueSizeLimit is the size limit of the volume holding the durable
	// queues of pushed data, a Kubernetes quantity of at least 64Mi. There is one queue
	// per signal shipped (traces, logs, errors), and together they may use 7/8 of it;
	// beyond that the app's SDK is asked to retry later. Default: the injector's
	// --queue-size-limit.
	AnnotationQueueSizeLimit = "outrider.dev/queue-size-limit"
)

// Annotations of backend credentials and configuration overlays (credentials.go,
// overlay.go). They name Secrets and ConfigMaps of the pod's namespace, mounted into
// the sidecar only: no value is ever written in an annotation or in the generated
// configuration.
const (
	// AnnotationLokiBasicAuthSecret names a Secret of the pod's namespace holding
	// Loki's basic-auth credentials in its keys username and password (the type
	// kubernetes.io/basic-auth). It is mounted read-only at
	// /etc/outrider-creds/<secret> in the sidecar, which reads the files again when
	// the Secret changes. "none" turns the injector's default off. Default: the
	// injector's loki_basic_auth_secret, itself none.
	AnnotationLokiBasicAuthSecret = "outrider.dev/loki-basic-auth-secret"

	// AnnotationLokiBearerTokenSecret is "<secret>/<key>": a Secret holding the
	// bearer token sent to Loki, mounted like loki-basic-auth-secret. Default: the
	// injector's loki_bearer_token_secret, itself none.
	AnnotationLokiBearerTokenSecret = "outrider.dev/loki-bearer-token-secret"

	// AnnotationTempoHeadersSecret lists, comma-separated, headers sent with every
	// trace export and the Secret keys holding their values:
	// "Authorization=tempo-auth/authorization,X-Scope-OrgID=tempo-auth/tenant".
	// Default: the injector's tempo_headers_secret, itself none.
	AnnotationTempoHeadersSecret = "outrider.dev/tempo-headers-secret"

	// AnnotationLokiCASecret is "<secret>/<key>": a Secret holding the PEM CA
	// certificates Loki's TLS certificate is checked against (re-read when it
	// changes). Default: the injector's loki_ca_secret, else the system's roots.
	AnnotationLokiCASecret = "outrider.dev/loki-ca-secret"

	// AnnotationTempoCASecret is loki-ca-secret for the traces' OTLP endpoint.
	// Default: the injector's tempo_ca_secret, else the system's roots.
	AnnotationTempoCASecret = "outrider.dev/tempo-ca-secret"

	// AnnotationSentryCASecret is loki-ca-secret for the upstream Sentry.
	// Default: the injector's sentry_ca_secret, else the system's roots.
	AnnotationSentryCASecret = "outrider.dev/sentry-ca-secret"

	// AnnotationLokiClientCertSecret names a Secret of type kubernetes.io/tls (keys
	// tls.crt and tls.key): the client certificate presented to Loki (mutual TLS),
	// used for new connections once the Secret changes. Default: the injector's
	// loki_client_cert_secret, itself none.
	AnnotationLokiClientCertSecret = "outrider.dev/loki-client-cert-secret"

	// AnnotationTempoClientCertSecret is loki-client-cert-secret for the traces' OTLP
	// endpoint. Default: the injector's tempo_client_cert_secret, itself none.
	AnnotationTempoClientCertSecret = "outrider.dev/tempo-client-cert-secret"

	// AnnotationSentryClientCertSecret is loki-client-cert-secret for the upstream
	// Sentry. Default: the injector's sentry_client_cert_secret, itself none.
	AnnotationSentryClientCertSecret = "outrider.dev/sentry-client-cert-secret"

	// AnnotationConfigOverlay is "<configmap>" or "<configmap>/<key>" (default key
	// overlay.yaml): a ConfigMap of the pod's namespace holding an outrider
	// configuration overlay (docs/configuration.md, "Overlays"), mounted at
	// /etc/outrider-overlay/pod and merged over the generated configuration, after
	// the namespace's overlay. A change is applied without a restart; an invalid
	// overlay is reported on /readyz while the last good configuration runs. The
	// ConfigMap must exist for the pod to start. Default: none.
	AnnotationConfigOverlay = "outrider.dev/config-overlay"
)

// StatusInjected is the value of AnnotationStatus on an injected pod.
const StatusInjected = "injected"

// Values of AnnotationSidecarOrder.
const (
	OrderFirst     = "first"
	OrderAfterMesh = "after-mesh"
)

// Sidecar modes, the values of AnnotationSidecarMode.
const (
	ModeNative  = "native"
	ModeClassic = "classic"
)
