package inject

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/exporters/sentryexporter"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/secretfile"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

// CredentialsDir is where the Secrets named by the credential annotations are
// mounted in the sidecar, each at CredentialsDir/<secret>/ with only the keys used.
const CredentialsDir = "/etc/outrider-creds"

// volumeCredentialPrefix starts the names of the credential Secrets' volumes:
// outrider-cred-1, outrider-cred-2, … in the order of the Secrets' names.
const volumeCredentialPrefix = "outrider-cred-"

// Keys of the Secrets of AnnotationLokiBasicAuthSecret (a kubernetes.io/basic-auth
// Secret) and of the client-certificate annotations (a kubernetes.io/tls Secret).
const (
	basicAuthUsernameKey = "username"
	basicAuthPasswordKey = "password"
	tlsCertKey           = "tls.crt"
	tlsKeyKey            = "tls.key"
)

// credentialAnnotations pairs each credential annotation with its default's field
// and key in the injector's configuration.
func (d *Defaults) credentialAnnotations() []struct{ annotation, field, value string } {
	return []struct{ annotation, field, value string }{
		{AnnotationLokiBasicAuthSecret, "loki_basic_auth_secret", d.LokiBasicAuthSecret},
		{AnnotationLokiBearerTokenSecret, "loki_bearer_token_secret", d.LokiBearerTokenSecret},
		{AnnotationTempoHeadersSecret, "tempo_headers_secret", d.TempoHeadersSecret},
		{AnnotationLokiCASecret, "loki_ca_secret", d.LokiCASecret},
		{AnnotationTempoCASecret, "tempo_ca_secret", d.TempoCASecret},
		{AnnotationSentryCASecret, "sentry_ca_secret", d.SentryCASecret},
		{AnnotationLokiClientCertSecret, "loki_client_cert_secret", d.LokiClientCertSecret},
		{AnnotationTempoClientCertSecret, "tempo_client_cert_secret", d.TempoClientCertSecret},
		{AnnotationSentryClientCertSecret, "sentry_client_cert_secret", d.SentryClientCertSecret},
	}
}

// validateCredentials reports credential defaults that do not parse, with their
// field names.
func (d *Defaults) validateCredentials(p *confval.Problems) {
	for _, a := range d.credentialAnnotations() {
		if a.value == "" {
			continue
		}
		var probs problems
		var c credentials
		c.parse(a.annotation, a.value, &probs)
		for _, msg := range probs {
			p.Addf(a.field, "%s", strings.TrimPrefix(msg, a.annotation+": "))
		}
	}
}

// secretKey is one key of a Secret the sidecar reads.
type secretKey struct{ secret, key string }

func (s secretKey) path() string { return path.Join(CredentialsDir, s.secret, s.key) }

func (s secretKey) source() string { return fmt.Sprintf("Secret %q key %q", s.secret, s.key) }

// header is a header of the OTLP exporter whose value comes from a Secret.
type header struct {
	name string
	from secretKey
}

// tlsFiles are a backend's CA bundle and client certificate, from Secrets.
type tlsFiles struct {
	ca         *secretKey
	clientCert string // a kubernetes.io/tls Secret's name
}

// credentials are what the credential annotations say about one pod.
type credentials struct {
	lokiBasic  string // a kubernetes.io/basic-auth Secret's name
	lokiBearer *secretKey
	headers    []header
	loki       tlsFiles
	tempo      tlsFiles
	sentry     tlsFiles
	// annotations are the annotations in effect (set or defaulted), for blame.
	annotations map[string]bool
}

// parseCredentials reads the credential annotations over the defaults.
func (o *options) parseCredentials(pod *corev1.Pod, d *Defaults, p *problems) {
	c := &credentials{annotations: map[string]bool{}}
	for _, a := range d.credentialAnnotations() {
		v, ok := pod.Annotations[a.annotation]
		if !ok {
			v = a.value
		}
		v = strings.TrimSpace(v)
		if v == "" || v == "none" {
			continue
		}
		c.annotations[a.annotation] = true
		c.parse(a.annotation, v, p)
	}
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, volumeCredentialPrefix) {
			p.add(AnnotationInject, "the pod already has a volume named %q; outrider adds volumes named %s<n> for the credential Secrets, so rename it", v.Name, volumeCredentialPrefix)
		}
	}
	o.creds = c
}

// parse reads one annotation's value into c.
func (c *credentials) parse(annotation, v string, p *problems) {
	secretOnly := func() string {
		if msg := checkSecretName(v); msg != "" {
			p.add(annotation, "%q %s", v, msg)
			return ""
		}
		return v
	}
	secretAndKey := func() *secretKey {
		sel, msg := parseSecretRef(v)
		if msg != "" {
			p.add(annotation, "%s", msg)
			return nil
		}
		return &secretKey{sel.Name, sel.Key}
	}
	switch annotation {
	case AnnotationLokiBasicAuthSecret:
		c.lokiBasic = secretOnly()
	case AnnotationLokiBearerTokenSecret:
		c.lokiBearer = secretAndKey()
	case AnnotationTempoHeadersSecret:
		c.headers = parseHeaders(annotation, v, p)
	case AnnotationLokiCASecret:
		c.loki.ca = secretAndKey()
	case AnnotationTempoCASecret:
		c.tempo.ca = secretAndKey()
	case AnnotationSentryCASecret:
		c.sentry.ca = secretAndKey()
	case AnnotationLokiClientCertSecret:
		c.loki.clientCert = secretOnly()
	case AnnotationTempoClientCertSecret:
		c.tempo.clientCert = secretOnly()
	case AnnotationSentryClientCertSecret:
		c.sentry.clientCert = secretOnly()
	}
}

func checkSecretName(name string) string {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || strings.Contains(name, "/") {
		return "must be the name of a Secret of the pod's namespace, such as loki-auth"
	}
	return ""
}

// maxHeaders bounds the headers of AnnotationTempoHeadersSecret.
const maxHeaders = 16

// parseHeaders parses "<Header>=<secret>/<key>[,<Header>=<secret>/<key>]...".
func parseHeaders(annotation, v string, p *problems) []header {
	var hs []header
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		name, ref, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			p.add(annotation, "%q must be <Header>=<secret>/<key>, such as Authorization=tempo-auth/authorization (comma-separated for several)", item)
			continue
		}
		if errs := validation.IsHTTPHeaderName(name); len(errs) > 0 {
			p.add(annotation, "%q is not a header name; use letters, digits and '-'", name)
			continue
		}
		if seen[strings.ToLower(name)] {
			p.add(annotation, "header %s is listed twice; keep one", name)
			continue
		}
		seen[strings.ToLower(name)] = true
		sel, msg := parseSecretRef(ref)
		if msg != "" {
			p.add(annotation, "header %s: %s", name, msg)
			continue
		}
		hs = append(hs, header{name: name, from: secretKey{sel.Name, sel.Key}})
	}
	if len(hs) > maxHeaders {
		p.add(annotation, "lists %d headers; at most %d", len(hs), maxHeaders)
	}
	return hs
}

// clientCertKeys are the files of a client-certificate Secret.
func clientCertKeys(secret string) (cert, key secretKey) {
	return secretKey{secret, tlsCertKey}, secretKey{secret, tlsKeyKey}
}

// keys lists every Secret key the sidecar reads.
func (c *credentials) keys() []secretKey {
	if c == nil {
		return nil
	}
	var ks []secretKey
	if c.lokiBasic != "" {
		ks = append(ks, secretKey{c.lokiBasic, basicAuthUsernameKey}, secretKey{c.lokiBasic, basicAuthPasswordKey})
	}
	if c.lokiBearer != nil {
		ks = append(ks, *c.lokiBearer)
	}
	for _, h := range c.headers {
		ks = append(ks, h.from)
	}
	for _, t := range []tlsFiles{c.loki, c.tempo, c.sentry} {
		if t.ca != nil {
			ks = append(ks, *t.ca)
		}
		if t.clientCert != "" {
			cert, key := clientCertKeys(t.clientCert)
			ks = append(ks, cert, key)
		}
	}
	return ks
}

// secrets groups the keys by Secret, in the order of the Secrets' names.
func (c *credentials) secrets() (names []string, keys map[string][]string) {
	keys = map[string][]string{}
	for _, k := range c.keys() {
		if !contains(keys[k.secret], k.key) {
			keys[k.secret] = append(keys[k.secret], k.key)
		}
	}
	for name := range keys {
		names = append(names, name)
		sort.Strings(keys[name])
	}
	sort.Strings(names)
	return names, keys
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// credentialVolumes are the volumes of the credential Secrets: one per Secret, with
// only the keys the sidecar reads. A missing Secret or key keeps the pod from
// starting, with the kubelet's event naming it.
func (o *options) credentialVolumes() []corev1.Volume {
	names, keys := o.creds.secrets()
	var vs []corev1.Volume
	for i, name := range names {
		var items []corev1.KeyToPath
		for _, k := range keys[name] {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
		vs = append(vs, corev1.Volume{
			Name:         fmt.Sprintf("%s%d", volumeCredentialPrefix, i+1),
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name, Items: items}},
		})
	}
	return vs
}

// credentialMounts are the sidecar's read-only mounts of the credential Secrets.
func (o *options) credentialMounts() []corev1.VolumeMount {
	names, _ := o.creds.secrets()
	var ms []corev1.VolumeMount
	for i, name := range names {
		ms = append(ms, corev1.VolumeMount{Name: fmt.Sprintf("%s%d", volumeCredentialPrefix, i+1), MountPath: path.Join(CredentialsDir, name), ReadOnly: true})
	}
	return ms
}

// applyCredentials points the generated configuration's exporters at the mounted
// Secrets' files, with the Secret and key of each for the exporters' messages. Its
// blame rules come first, being more specific than those of the backends' URLs.
func (o *options) applyCredentials(cfg *config.Config, rules *[]blameRule, p *problems) {
	c := o.creds
	if c == nil {
		return
	}
	var mine []blameRule
	rule := func(path, annotation string) { mine = append(mine, blameRule{path, annotation}) }
	nowhere := func(annotation, what string) {
		if c.annotations[annotation] {
			p.add(annotation, "is set but %s; remove it, or say where they go", what)
		}
	}
	if l := cfg.Exporters.Loki; l != nil {
		src := secretfile.Sources{}
		if c.lokiBasic != "" {
			u, pw := secretKey{c.lokiBasic, basicAuthUsernameKey}, secretKey{c.lokiBasic, basicAuthPasswordKey}
			l.BasicAuth = lokiexporter.BasicAuth{UsernameFile: u.path(), PasswordFile: pw.path()}
			src[u.path()], src[pw.path()] = u.source(), pw.source()
			rule("exporters.loki.basic_auth", AnnotationLokiBasicAuthSecret)
			rule("exporters.loki.bearer_token", AnnotationLokiBasicAuthSecret)
		}
		if k := c.lokiBearer; k != nil {
			l.BearerTokenFile = k.path()
			src[k.path()] = k.source()
			rule("exporters.loki.bearer_token_file", AnnotationLokiBearerTokenSecret)
		}
		l.TLS = c.loki.config(src)
		rule("exporters.loki.tls.ca_file", AnnotationLokiCASecret)
		rule("exporters.loki.tls", c.loki.annotation(AnnotationLokiCASecret, AnnotationLokiClientCertSecret))
		if len(src) > 0 {
			l.CredentialSources = src
		}
	} else {
		for _, a := range []string{AnnotationLokiBasicAuthSecret, AnnotationLokiBearerTokenSecret, AnnotationLokiCASecret, AnnotationLokiClientCertSecret} {
			nowhere(a, fmt.Sprintf("logs go nowhere (set %s)", AnnotationLokiURL))
		}
	}
	if t := cfg.Exporters.OTLP; t != nil {
		src := secretfile.Sources{}
		if len(c.headers) > 0 {
			t.HeadersFromFiles = map[string]string{}
			for _, h := range c.headers {
				t.HeadersFromFiles[h.name] = h.from.path()
				src[h.from.path()] = h.from.source()
			}
			rule("exporters.otlp.headers_from_files", AnnotationTempoHeadersSecret)
		}
		t.TLS = c.tempo.config(src)
		rule("exporters.otlp.tls.ca_file", AnnotationTempoCASecret)
		rule("exporters.otlp.tls", c.tempo.annotation(AnnotationTempoCASecret, AnnotationTempoClientCertSecret))
		if len(src) > 0 {
			t.CredentialSources = src
		}
	} else {
		for _, a := range []string{AnnotationTempoHeadersSecret, AnnotationTempoCASecret, AnnotationTempoClientCertSecret} {
			nowhere(a, fmt.Sprintf("traces go nowhere (set %s)", AnnotationTempoEndpoint))
		}
	}
	if tc := c.sentry.config(secretfile.Sources{}); !tc.IsZero() {
		if o.hasSentry() {
			cfg.Exporters.Sentry = &sentryexporter.Config{TLS: tc}
			rule("exporters.sentry.tls.ca_file", AnnotationSentryCASecret)
			rule("exporters.sentry.tls", c.sentry.annotation(AnnotationSentryCASecret, AnnotationSentryClientCertSecret))
		} else {
			for _, a := range []string{AnnotationSentryCASecret, AnnotationSentryClientCertSecret} {
				nowhere(a, fmt.Sprintf("errors go nowhere (set %s)", AnnotationSentryDSNSecret))
			}
		}
	}
	*rules = append(mine, *rules...)
}

// annotation is the annotation a problem of the whole tls block is blamed on: the
// client certificate's when it is set, else the CA's.
func (t tlsFiles) annotation(ca, clientCert string) string {
	if t.clientCert != "" {
		return clientCert
	}
	return ca
}

// config is the tls block of a backend, recording the files' Secrets in src.
func (t tlsFiles) config(src secretfile.Sources) tlsconfig.Config {
	var c tlsconfig.Config
	if t.ca != nil {
		c.CAFile = t.ca.path()
		src[c.CAFile] = t.ca.source()
	}
	if t.clientCert != "" {
		cert, key := clientCertKeys(t.clientCert)
		c.CertFile, c.KeyFile = cert.path(), key.path()
		src[c.CertFile], src[c.KeyFile] = cert.source(), key.source()
	}
	return c
}

// withoutMountedFiles drops from a configuration error the problems of files under
// CredentialsDir that cannot be read: they exist only in the sidecar, where the
// Secrets are mounted. It returns nil when no other problem is left.
func withoutMountedFiles(err error) error {
	var ce *confval.Error
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	var kept confval.Problems
	for _, msg := range ce.Problems {
		if strings.Contains(msg, `cannot read "`+CredentialsDir+"/") {
			continue
		}
		kept.Addf("", "%s", msg)
	}
	return kept.Err()
}
