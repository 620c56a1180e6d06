package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/inject"
)

// injectFlags are the flags of `outrider inject`.
type injectFlags struct {
	config          string
	listen          string
	certFile        string
	keyFile         string
	shutdownTimeout time.Duration
	drainDelay      time.Duration
	logLevel        string
	logFormat       string
	defaults        inject.Defaults

	selfSigned    bool
	outDir        string
	service       string
	namespace     string
	extraNames    string
	validity      time.Duration
	webhookConfig string
	caSecret      string
	caValidity    time.Duration
	caRenewBefore time.Duration
	kubeServer    string
	kubeTokenFile string
	kubeCAFile    string

	file string
}

func (f *injectFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML file with the injector's defaults (image, sidecar_mode, vault_addr, loki_url, tempo_endpoint, metrics_endpoint, sentry_dsn_secret, cpu_request, cpu_limit, memory_request, memory_limit, secrets_size_limit, queue_size_limit, agent_port, vault_k8s_compat, the credential Secrets loki_basic_auth_secret, loki_bearer_token_secret, tempo_headers_secret, {loki,tempo,sentry}_ca_secret, {loki,tempo,sentry}_client_cert_secret, and namespace_overlays); flags given on the command line win")
	fs.StringVar(&f.listen, "listen", ":8443", "HTTPS address of /mutate, /healthz and /metrics")
	fs.StringVar(&f.certFile, "tls-cert", "/etc/outrider-injector/tls/tls.crt", "serving certificate (PEM, with its chain); re-read when it changes")
	fs.StringVar(&f.keyFile, "tls-key", "/etc/outrider-injector/tls/tls.key", "serving certificate's private key (PEM); re-read when it changes")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for requests in flight")
	fs.DurationVar(&f.drainDelay, "drain-delay", 5*time.Second, "how long SIGTERM keeps serving, with /healthz failing, so the replica leaves the Service first")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "json or text")

	d := &f.defaults
	fs.StringVar(&d.Image, "image", "ghcr.io/outrider-dev/outrider:"+version, "sidecar image ("+inject.AnnotationImage+")")
	fs.StringVar(&d.SidecarMode, "sidecar-mode", inject.DefaultSidecarMode, "native or classic ("+inject.AnnotationSidecarMode+")")
	fs.StringVar(&d.VaultAddr, "vault-addr", "", "Vault's URL ("+inject.AnnotationVaultAddr+")")
	fs.StringVar(&d.LokiURL, "loki-url", "", "Loki's URL ("+inject.AnnotationLokiURL+"); logs are shipped only when set")
	fs.StringVar(&d.TempoEndpoint, "tempo-endpoint", "", "OTLP gRPC endpoint for traces ("+inject.AnnotationTempoEndpoint+"); traces are shipped only when set")
	fs.StringVar(&d.MetricsEndpoint, "metrics-endpoint", "", "OTLP/HTTP endpoint of a Prometheus or Mimir OTLP receiver ("+inject.AnnotationMetricsEndpoint+"); metrics are shipped only when set, and apps get OTEL_METRICS_EXPORTER=none otherwise")
	fs.StringVar(&d.SentryDSNSecret, "sentry-dsn-secret", "", "<secret>/<key>: the Secret, in each pod's namespace, holding the upstream Sentry DSN ("+inject.AnnotationSentryDSNSecret+")")
	fs.StringVar(&d.SentryDSN, "sentry-dsn", "", "refused: the DSN would be copied into every pod's annotations; use --sentry-dsn-secret")
	fs.StringVar(&d.CPURequest, "cpu-request", inject.DefaultCPURequest, "sidecar CPU request ("+inject.AnnotationCPURequest+")")
	fs.StringVar(&d.CPULimit, "cpu-limit", "", "sidecar CPU limit, none by default ("+inject.AnnotationCPULimit+")")
	fs.StringVar(&d.MemoryRequest, "memory-request", inject.DefaultMemoryRequest, "sidecar memory request ("+inject.AnnotationMemoryRequest+")")
	fs.StringVar(&d.MemoryLimit, "memory-limit", inject.DefaultMemoryLimit, "sidecar memory limit, or none ("+inject.AnnotationMemoryLimit+")")
	fs.StringVar(&d.SecretsSizeLimit, "secrets-size-limit", inject.DefaultSecretsSizeLimit, "size limit of the in-memory secrets volume ("+inject.AnnotationSecretsSizeLimit+")")
	fs.StringVar(&d.QueueSizeLimit, "queue-size-limit", inject.DefaultQueueSizeLimit, "size limit of the queue volume ("+inject.AnnotationQueueSizeLimit+")")
	fs.IntVar(&d.AgentPort, "agent-port", inject.DefaultAgentPort, "port of the sidecar's /metrics, /healthz and /readyz")
	for _, c := range []struct {
		v          *string
		name, help string
	}{
		{&d.LokiBasicAuthSecret, "loki-basic-auth-secret", "<secret>: a kubernetes.io/basic-auth Secret (username, password) in each pod's namespace, for Loki (" + inject.AnnotationLokiBasicAuthSecret + ")"},
		{&d.LokiBearerTokenSecret, "loki-bearer-token-secret", "<secret>/<key>: Loki's bearer token (" + inject.AnnotationLokiBearerTokenSecret + ")"},
		{&d.TempoHeadersSecret, "tempo-headers-secret", "<Header>=<secret>/<key>,…: headers of the trace exports (" + inject.AnnotationTempoHeadersSecret + ")"},
		{&d.LokiCASecret, "loki-ca-secret", "<secret>/<key>: the CA bundle Loki's certificate is checked against (" + inject.AnnotationLokiCASecret + ")"},
		{&d.TempoCASecret, "tempo-ca-secret", "<secret>/<key>: the CA bundle of the traces' endpoint (" + inject.AnnotationTempoCASecret + ")"},
		{&d.SentryCASecret, "sentry-ca-secret", "<secret>/<key>: the CA bundle of the upstream Sentry (" + inject.AnnotationSentryCASecret + ")"},
		{&d.LokiClientCertSecret, "loki-client-cert-secret", "<secret>: a kubernetes.io/tls Secret, the client certificate for Loki (" + inject.AnnotationLokiClientCertSecret + ")"},
		{&d.TempoClientCertSecret, "tempo-client-cert-secret", "<secret>: the client certificate for the traces' endpoint (" + inject.AnnotationTempoClientCertSecret + ")"},
		{&d.SentryClientCertSecret, "sentry-client-cert-secret", "<secret>: the client certificate for the upstream Sentry (" + inject.AnnotationSentryClientCertSecret + ")"},
		{&d.NamespaceOverlays, "namespace-overlays", "<namespace>=<configmap>[/<key>],… (\"*\": every other namespace): the ConfigMap holding each namespace's configuration overlay"},
	} {
		fs.StringVar(c.v, c.name, "", c.help)
	}
	fs.BoolVar(&d.VaultK8sCompat, "vault-k8s-compat", false, "also read vault-k8s's vault.hashicorp.com/* annotations (docs/migrating-from-vault-k8s.md); config key vault_k8s_compat")

	fs.StringVar(&f.file, "f", "", "print the objects of this YAML file (\"-\": standard input) with their pods injected, as the webhook would inject them, and exit; Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs, several documents or a List")
	fs.StringVar(&f.file, "filename", "", "same as -f")
	fs.BoolVar(&f.selfSigned, "self-signed", false, "generate a CA and a serving certificate for the Service into --out-dir, print the base64 caBundle, and exit")
	fs.StringVar(&f.outDir, "out-dir", "", "with --self-signed: where to write ca.crt, tls.crt and tls.key (kept when still valid for the names)")
	fs.StringVar(&f.service, "service", "outrider-injector", "with --self-signed: the webhook's Service name")
	fs.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "with --self-signed: the Service's namespace, and the --ca-secret's (default $POD_NAMESPACE, else the pod's namespace in a cluster)")
	fs.StringVar(&f.extraNames, "extra-names", "", "with --self-signed: more DNS names or IP addresses for the certificate, comma-separated")
	fs.DurationVar(&f.validity, "validity", 2*365*24*time.Hour, "with --self-signed: how long the certificates are valid")
	fs.StringVar(&f.webhookConfig, "webhook-config", "", "with --self-signed: also add the CA to the caBundle of every webhook of this MutatingWebhookConfiguration, through the API server")
	fs.StringVar(&f.caSecret, "ca-secret", "", "with --self-signed: share one CA among the replicas, kept in this Secret of --namespace (read, or created when missing, through the API server); the serving certificate is issued by it")
	fs.DurationVar(&f.caValidity, "ca-validity", 5*365*24*time.Hour, "with --ca-secret: how long a new CA is valid")
	fs.DurationVar(&f.caRenewBefore, "ca-renew-before", 365*24*time.Hour, "with --ca-secret: replace the CA in the Secret when it expires within this; the caBundle keeps the old CA until it expires")
	fs.StringVar(&f.kubeServer, "kube-server", "", "with --webhook-config: API server URL (default: in-cluster)")
	fs.StringVar(&f.kubeTokenFile, "kube-token-file", "", "with --kube-server: file holding the bearer token")
	fs.StringVar(&f.kubeCAFile, "kube-ca-file", "", "with --kube-server: the API server's CA certificates")
}

// runInject runs the admission webhook, or with --self-signed makes its certificates.
func runInject(args []string, stdout, stderr io.Writer) int {
	var f injectFlags
	fs := flag.NewFlagSet("outrider inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "outrider inject: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if f.file != "" {
		if f.selfSigned {
			fmt.Fprintln(stderr, "outrider inject: -f and --self-signed are exclusive")
			return exitUsage
		}
		return injectFile(fs, &f, os.Stdin, stdout, stderr)
	}
	if f.selfSigned {
		return runSelfSigned(&f, stdout, stderr)
	}
	defaults, err := injectDefaults(fs, &f)
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject: %v\n", err)
		return exitUsage
	}
	injector, err := inject.NewInjector(defaults)
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject: invalid defaults: %v\n", err)
		return exitUsage
	}
	switch f.logLevel {
	case "debug", "info", "warn", "error":
	default:
		fmt.Fprintf(stderr, "outrider inject: --log-level must be debug, info, warn or error, got %q\n", f.logLevel)
		return exitUsage
	}
	if f.logFormat != "json" && f.logFormat != "text" {
		fmt.Fprintf(stderr, "outrider inject: --log-format must be json or text, got %q\n", f.logFormat)
		return exitUsage
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(f.logLevel)) // checked above
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewJSONHandler(stderr, opts)
	if f.logFormat == "text" {
		handler = slog.NewTextHandler(stderr, opts)
	}
	logger := slog.New(handler).With("component", "inject")

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := inject.NewMetrics(reg)
	srv, err := inject.NewServer(inject.ServerConfig{
		Listen:          f.listen,
		CertFile:        f.certFile,
		KeyFile:         f.keyFile,
		ShutdownTimeout: f.shutdownTimeout,
		DrainDelay:      f.drainDelay,
	}, inject.NewHandler(injector, metrics, logger), reg, metrics, logger)
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject: %v\n", err)
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		logger.Error("injector failed", "error", err)
		return exitFailed
	}
	return exitOK
}

// injectDefaults reads --config, then lets the flags given on the command line
// override it.
func injectDefaults(fs *flag.FlagSet, f *injectFlags) (inject.Defaults, error) {
	if f.config == "" {
		return f.defaults, nil
	}
	data, err := config.ReadFile(f.config) // at most config.MaxBytes
	if err != nil {
		return inject.Defaults{}, fmt.Errorf("--config: %w", err)
	}
	var d inject.Defaults
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && err != io.EOF {
		return inject.Defaults{}, fmt.Errorf("--config %s: %w", f.config, err)
	}
	flagFields := overrides(&d, &f.defaults)
	fs.Visit(func(fl *flag.Flag) {
		if set, ok := flagFields[fl.Name]; ok {
			set()
		}
	})
	if d.Image == "" {
		d.Image = f.defaults.Image
	}
	return d, nil
}

// overrides maps the name of each flag of a Defaults field to a function copying that
// field from the flags' values to d.
func overrides(d, flags *inject.Defaults) map[string]func() {
	return map[string]func(){
		"image":              func() { d.Image = flags.Image },
		"sidecar-mode":       func() { d.SidecarMode = flags.SidecarMode },
		"vault-addr":         func() { d.VaultAddr = flags.VaultAddr },
		"loki-url":           func() { d.LokiURL = flags.LokiURL },
		"tempo-endpoint":     func() { d.TempoEndpoint = flags.TempoEndpoint },
		"metrics-endpoint":   func() { d.MetricsEndpoint = flags.MetricsEndpoint },
		"sentry-dsn":         func() { d.SentryDSN = flags.SentryDSN },
		"sentry-dsn-secret":  func() { d.SentryDSNSecret = flags.SentryDSNSecret },
		"cpu-request":        func() { d.CPURequest = flags.CPURequest },
		"cpu-limit":          func() { d.CPULimit = flags.CPULimit },
		"memory-request":     func() { d.MemoryRequest = flags.MemoryRequest },
		"memory-limit":       func() { d.MemoryLimit = flags.MemoryLimit },
		"secrets-size-limit": func() { d.SecretsSizeLimit = flags.SecretsSizeLimit },
		"queue-size-limit":   func() { d.QueueSizeLimit = flags.QueueSizeLimit },
		"agent-port":         func() { d.AgentPort = flags.AgentPort },
		"vault-k8s-compat":   func() { d.VaultK8sCompat = flags.VaultK8sCompat },

		"loki-basic-auth-secret":    func() { d.LokiBasicAuthSecret = flags.LokiBasicAuthSecret },
		"loki-bearer-token-secret":  func() { d.LokiBearerTokenSecret = flags.LokiBearerTokenSecret },
		"tempo-headers-secret":      func() { d.TempoHeadersSecret = flags.TempoHeadersSecret },
		"loki-ca-secret":            func() { d.LokiCASecret = flags.LokiCASecret },
		"tempo-ca-secret":           func() { d.TempoCASecret = flags.TempoCASecret },
		"sentry-ca-secret":          func() { d.SentryCASecret = flags.SentryCASecret },
		"loki-client-cert-secret":   func() { d.LokiClientCertSecret = flags.LokiClientCertSecret },
		"tempo-client-cert-secret":  func() { d.TempoClientCertSecret = flags.TempoClientCertSecret },
		"sentry-client-cert-secret": func() { d.SentryClientCertSecret = flags.SentryClientCertSecret },
		"namespace-overlays":        func() { d.NamespaceOverlays = flags.NamespaceOverlays },
	}
}

// runSelfSigned writes (or keeps) the certificates, prints the base64 CA bundle and,
// with --webhook-config, adds the CA to the webhook configuration. With --ca-secret
// the CA comes from (or goes to) that Secret, shared by the replicas.
func runSelfSigned(f *injectFlags, stdout, stderr io.Writer) int {
	if f.namespace == "" && f.caSecret != "" && f.kubeServer == "" {
		if ns, err := inject.InClusterNamespace(); err == nil {
			f.namespace = ns
		}
	}
	if f.outDir == "" || f.service == "" || f.namespace == "" {
		fmt.Fprintln(stderr, "outrider inject --self-signed: --out-dir, --service and --namespace are required")
		return exitUsage
	}
	if f.caSecret != "" && f.caValidity <= f.caRenewBefore+time.Hour {
		fmt.Fprintf(stderr, "outrider inject --self-signed: --ca-validity (%s) must be longer than --ca-renew-before (%s) plus an hour\n", f.caValidity, f.caRenewBefore)
		return exitUsage
	}
	names := inject.ServiceDNSNames(f.service, f.namespace)
	for _, n := range bytes.Split([]byte(f.extraNames), []byte(",")) {
		if s := string(bytes.TrimSpace(n)); s != "" {
			names = append(names, s)
		}
	}
	var client *inject.KubeClient
	if f.webhookConfig != "" || f.caSecret != "" {
		var err error
		if f.kubeServer != "" {
			client, err = inject.NewKubeClient(f.kubeServer, f.kubeTokenFile, f.kubeCAFile)
		} else {
			client, err = inject.InClusterKubeClient()
		}
		if err != nil {
			fmt.Fprintf(stderr, "outrider inject --self-signed: %v\n", err)
			return exitUsage
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	now := time.Now()
	var (
		certs  *inject.Certificates
		reused bool
		err    error
	)
	if f.caSecret != "" {
		ca, outcome, err := client.LoadOrCreateCA(ctx, f.namespace, f.caSecret, f.caValidity, f.caRenewBefore, now)
		if err != nil {
			fmt.Fprintf(stderr, "outrider inject --self-signed: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stderr, "outrider inject: CA of Secret %s/%s %s (expires %s)\n", f.namespace, f.caSecret, outcome, ca.NotAfter().UTC().Format(time.RFC3339))
		certs, reused, err = inject.LoadOrIssueCertificates(f.outDir, ca, names, f.validity, now)
		if err != nil {
			fmt.Fprintf(stderr, "outrider inject --self-signed: %v\n", err)
			return exitFailed
		}
	} else {
		certs, reused, err = inject.LoadOrGenerateCertificates(f.outDir, names, f.validity, now)
		if err != nil {
			fmt.Fprintf(stderr, "outrider inject --self-signed: %v\n", err)
			return exitFailed
		}
	}
	switch {
	case reused:
		fmt.Fprintf(stderr, "outrider inject: kept the certificates in %s\n", f.outDir)
	case f.caSecret != "":
		fmt.Fprintf(stderr, "outrider inject: wrote a serving certificate for %v, issued by the shared CA, to %s\n", names, f.outDir)
	default:
		fmt.Fprintf(stderr, "outrider inject: wrote a new CA and serving certificate for %v to %s\n", names, f.outDir)
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(certs.CA))
	if f.webhookConfig == "" {
		return exitOK
	}
	n, err := client.PatchCABundle(ctx, f.webhookConfig, certs.CA, now)
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject --self-signed: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "outrider inject: added the CA to the caBundle of %d webhooks of MutatingWebhookConfiguration %s\n", n, f.webhookConfig)
	return exitOK
}
