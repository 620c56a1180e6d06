package inject

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/exporters/otlpexporter"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/receivers/otlpreceiver"
	"github.com/outrider-dev/outrider/secrets"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
	"github.com/outrider-dev/outrider/sources/tail"
)

// placeholderDSN stands in for a DSN that only the sidecar will know (it comes from a
// Secret) when the webhook validates the configuration.
const placeholderDSN = "https://00000000000000000000000000000000@sentry.invalid/1"

// blameRule attributes the configuration problems under a field path to the
// annotation the field was generated from.
type blameRule struct {
	path, annotation string
}

// agentConfig is the generated configuration of one sidecar.
type agentConfig struct {
	// yaml is delivered to the sidecar in AnnotationConfig.
	yaml []byte
	// parsed is the configuration as the agent will load it.
	parsed *config.Config
}

// buildConfig generates the sidecar's configuration from o and validates it with the
// config package, as the agent will load it. sentryKey is the public key of the
// sidecar's local Sentry endpoint. Problems are attributed to annotations.
func (o *options) buildConfig(sentryKey string) (*agentConfig, problems) {
	cfg, rules := o.configValue()
	var credProbs problems
	if o.applyCredentials(&cfg, &rules, &credProbs); len(credProbs) > 0 {
		return nil, credProbs
	}
	o.vaultK8s.applyConfig(&cfg, &rules)
	root, err := encodeYAML(cfg)
	if err != nil {
		var p problems
		p.add(AnnotationInject, "cannot encode the sidecar configuration: %v", err)
		return nil, p
	}
	if root == nil {
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	var dsnKey, dsnNode *yaml.Node
	if o.hasSentry() {
		recv := mappingValue(mappingValue(root, "receivers"), "sentry")
		recv.Content = append(recv.Content,
			scalar("!!str", "listen"), scalar("!!str", sentryListen),
			scalar("!!str", "public_key"), scalar("!!str", sentryKey))
		// The sidecar reads the DSN from the Secret mounted at SentryDir.
		dsnKey, dsnNode = scalar("!!str", "dsn_file"), scalar("!!str", path.Join(SentryDir, sentryDSNFile))
		exp := mappingValue(mappingValue(root, "exporters"), "sentry")
		exp.Content = append(exp.Content, dsnKey, dsnNode)
		rules = append(rules, blameRule{"receivers.sentry", AnnotationSentryDSNSecret}, blameRule{"exporters.sentry", AnnotationSentryDSNSecret})
	}
	delivered, err := marshalYAML(root)
	if err != nil {
		var p problems
		p.add(AnnotationInject, "cannot encode the sidecar configuration: %v", err)
		return nil, p
	}
	checked := delivered
	if dsnNode != nil {
		dsnKey.Value, dsnNode.Value = "dsn", placeholderDSN
		if checked, err = marshalYAML(root); err != nil {
			var p problems
			p.add(AnnotationInject, "cannot encode the sidecar configuration: %v", err)
			return nil, p
		}
	}
	parsed, err := config.Parse(AnnotationConfig, checked)
	if err = withoutMountedFiles(err); err != nil {
		return nil, blame(err, rules)
	}
	return &agentConfig{yaml: delivered, parsed: parsed}, nil
}

// configValue is the configuration as a config.Config holding only what differs
// from the agent's defaults, with the rules that attribute its fields to annotations
// (the most specific path first).
func (o *options) configValue() (config.Config, []blameRule) {
	var cfg config.Config
	var rules []blameRule
	rule := func(path, annotation string) { rules = append(rules, blameRule{path, annotation}) }

	cfg.DataDir = DataDir
	cfg.Identity.Service = o.service
	rule("identity", AnnotationService)
	cfg.Server.Listen = fmt.Sprintf(":%d", o.port)
	cfg.Log.Level = o.logLevel
	rule("log", AnnotationLogLevel)
	if o.memoryLimit > 0 {
		// A soft heap limit below the container's leaves room for stacks, tmpfs pages
		// and the runtime's own overhead.
		cfg.Runtime.MemoryLimit = confval.ByteSize(o.memoryLimit*8/10) &^ (1<<20 - 1)
		rule("runtime", AnnotationMemoryLimit)
	}

	for i, p := range o.logPaths {
		name := "app"
		if len(o.logPaths) > 1 {
			name = fmt.Sprintf("app-%d", i+1)
		}
		cfg.Logs.Sources = append(cfg.Logs.Sources, config.LogSource{Config: tail.Config{Name: name, Path: p}})
	}
	if o.stdout {
		cfg.Logs.Sources = append(cfg.Logs.Sources, config.LogSource{Config: stdoutSource()})
		rule(fmt.Sprintf("logs.sources[%d]", len(cfg.Logs.Sources)-1), AnnotationStdout)
	}
	rule("logs", AnnotationLogs)

	if o.lokiURL != "" {
		cfg.Exporters.Loki = &lokiexporter.Config{URL: o.lokiURL, TenantID: o.lokiTenant}
		rule("exporters.loki.tenant_id", AnnotationLokiTenant)
		rule("exporters.loki", AnnotationLokiURL)
	}
	if o.tempoEndpoint != "" {
		cfg.Exporters.OTLP = &otlpexporter.Config{Endpoint: o.tempoEndpoint}
		rule("exporters.otlp", AnnotationTempoEndpoint)
	}
	if o.metricsEndpoint != "" {
		cfg.Exporters.OTLPMetrics = &otlpexporter.MetricsConfig{Endpoint: o.metricsEndpoint}
		rule("exporters.otlp_metrics", AnnotationMetricsEndpoint)
	}
	if o.hasOTLP() {
		cfg.Receivers.OTLP = &otlpreceiver.Config{}
		rule("receivers.otlp", AnnotationInject)
	}
	if n := o.queues(); n > 0 {
		// The queues share the volume; an eighth is left for the positions files and
		// the segment being written when a queue reaches its bound.
		cfg.Queue.MaxSize = confval.ByteSize(o.queueSize.Value()*7/8/int64(n)) &^ (1<<20 - 1)
		rule("queue", AnnotationQueueSizeLimit)
	}

	if o.hasSecrets() {
		s := &cfg.Secrets
		s.Vault = vault.Config{
			Address:   o.vaultAddr,
			Namespace: o.vaultNamespace,
			Auth:      vault.AuthConfig{Method: o.authMethod, MountPath: o.authPath, Role: o.role},
		}
		if o.authMethod == vault.MethodJWT {
			s.Vault.Auth.TokenPath = vault.DefaultKubernetesTokenPath
		}
		if o.authPath == o.authMethod {
			s.Vault.Auth.MountPath = ""
		}
		rule("secrets.vault.address", AnnotationVaultAddr)
		rule("secrets.vault.namespace", AnnotationVaultNamespace)
		rule("secrets.vault.tls", AnnotationVaultCASecret)
		rule("secrets.vault.auth.role", AnnotationRole)
		rule("secrets.vault.auth.mount_path", AnnotationAuthPath)
		rule("secrets.vault.auth", AnnotationAuthMethod)
		rule("secrets.vault", AnnotationVaultAddr)
		switch o.reloadMethod {
		case reload.MethodSignal:
			s.Reload = reload.Config{Method: reload.MethodSignal, Signal: o.reloadSignal, Process: o.reloadProcess}
			rule("secrets.reload.process", AnnotationReloadProcess)
		case reload.MethodHTTP:
			s.Reload = reload.Config{Method: reload.MethodHTTP, URL: o.reloadURL}
		}
		rule("secrets.reload", AnnotationReload)
		for i, f := range o.files {
			fc := render.FileConfig{
				Path:     path.Join(o.secretsDir, f.name),
				Template: f.template,
				Source:   f.source,
				Format:   render.Format(f.format),
				Key:      f.key,
				Mode:     f.perms,
			}
			s.Files = append(s.Files, secrets.File{FileConfig: fc})
			prefix := fmt.Sprintf("secrets.files[%d]", i)
			rule(prefix+".mode", f.annotation+AnnotationSecretPermsSuffix)
			rule(prefix+".format", f.annotation+AnnotationSecretFormatSuffix)
			rule(prefix+".key", f.annotation+AnnotationSecretKeySuffix)
			rule(prefix+".path", AnnotationSecretsDir)
			rule(prefix, f.annotation)
		}
		rule("secrets", AnnotationInject)
	}
	return cfg, rules
}

// stdoutSourceName names the source of AnnotationStdout.
const stdoutSourceName = "stdout"

// stdoutSource tails the CRI log files of the pod's containers, each in its
// directory <container>/ of PodLogsDir, as the kubelet lays them out
// (<container>/<restart>.log, rotated to <restart>.log.<timestamp>, compressed to
// .gz), leaving out outrider's own. The lines are CRI log lines ("<time> <stream>
// <P|F> <message>"), and each record is labelled with its container from the path.
func stdoutSource() tail.Config {
	return tail.Config{
		Name:         stdoutSourceName,
		Path:         path.Join(PodLogsDir, "*", "*.log"),
		Format:       tail.FormatCRI,
		PathMetadata: tail.PathMetadataKubernetesContainer,
		Exclude: []string{
			path.Join(PodLogsDir, SidecarName, "*"),
			path.Join(PodLogsDir, InitName, "*"),
		},
	}
}

// queues counts the agent's durable queues: one per pushed signal (traces, logs,
// metrics, errors) that has somewhere to go.
func (o *options) queues() int {
	n := 0
	for _, on := range []bool{o.tempoEndpoint != "", o.lokiURL != "", o.metricsEndpoint != "", o.hasSentry()} {
		if on {
			n++
		}
	}
	return n
}

// marshalYAML writes a node tree with two-space indentation.
func marshalYAML(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// blame turns the config package's problems into problems naming annotations.
func blame(err error, rules []blameRule) problems {
	var ce *confval.Error
	if !errors.As(err, &ce) {
		var p problems
		p.add(AnnotationInject, "the generated sidecar configuration is invalid: %v", err)
		return p
	}
	var p problems
	for _, msg := range ce.Problems {
		field, _, _ := strings.Cut(msg, ": ")
		annotation := AnnotationInject
		if !strings.ContainsAny(field, " \t") {
			for _, r := range rules {
				if field == r.path || strings.HasPrefix(field, r.path+".") || strings.HasPrefix(field, r.path+"[") {
					annotation = r.annotation
					break
				}
			}
		}
		p.add(annotation, "the sidecar's configuration would be invalid: %s", msg)
	}
	return p
}
