package main

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject"
)

// samplePod is the pod benchidle injects: one application container whose logs
// the sidecar tails, errors to Sentry through the sidecar, traces to the OTLP
// endpoint, and one KV secret from Vault, logged in with a JWT.
const samplePod = `apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  uid: 0b0f6a51-2f1e-4d7e-9d53-55a1c2f1d6a7
  annotations:
    outrider.dev/inject: "true"
    outrider.dev/role: web
    outrider.dev/auth-method: jwt
    outrider.dev/secret-db: secret/data/shop/db
    outrider.dev/logs: /var/log/app/*.log
    outrider.dev/sentry-dsn-secret: sentry/dsn
spec:
  serviceAccountName: web
  nodeName: node-1
  containers:
    - name: web
      image: registry.example.com/shop/web:1.4.2
`

// backendAddrs are where the injected sidecar finds its backends.
type backendAddrs struct {
	vault, loki, otlp string
}

// sidecar is the injected sidecar as benchidle runs it: its configuration with the
// pod's volumes mapped into the working directory and its listeners on free ports,
// and its environment.
type sidecar struct {
	// config is the configuration file's text.
	config string
	// env is the container's environment, downward-API fields resolved.
	env []string
	// volumes maps each volume's name to its directory in the working directory;
	// mounts maps the container's mount paths to the same directories.
	volumes map[string]string
	mounts  map[string]string
	// args are the container's arguments, paths mapped.
	args []string
	// server, otlpGRPC, otlpHTTP and sentry are the listen addresses (host:port).
	server, otlpGRPC, otlpHTTP, sentry string
	// sentryKey is the public key of the local Sentry endpoint.
	sentryKey string
	// secretFiles are the secret files the sidecar renders; tokenPath the JWT it
	// logs in with; dsnFile the upstream Sentry DSN; logDir where the app's logs go.
	secretFiles        []string
	tokenPath, dsnFile string
	logDir             string
}

// ports are the free loopback ports the sidecar listens on.
type ports struct{ server, otlpGRPC, otlpHTTP, sentry int }

// injectSidecar runs the sample pod through the injector, as the webhook would, and
// returns its sidecar laid out under dir.
// With pprof, the agent's server also serves /debug/pprof.
func injectSidecar(dir string, b backendAddrs, p ports, pprof bool) (*sidecar, error) {
	in, err := inject.NewInjector(inject.Defaults{
		Image:         "ghcr.io/outrider-dev/outrider:bench",
		VaultAddr:     b.vault,
		LokiURL:       b.loki,
		TempoEndpoint: b.otlp,
		AgentPort:     p.server,
	})
	if err != nil {
		return nil, fmt.Errorf("injector: %w", err)
	}
	js, err := yaml.YAMLToJSON([]byte(samplePod))
	if err != nil {
		return nil, err
	}
	pv, err := in.InjectObject(js)
	if err != nil {
		return nil, fmt.Errorf("inject the sample pod: %w", err)
	}
	if !pv.Injected {
		return nil, fmt.Errorf("the injector left the sample pod alone (%s)", pv.Result)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(pv.Object, &pod); err != nil {
		return nil, fmt.Errorf("the injected pod: %w", err)
	}
	return layOut(&pod, dir, p, pprof)
}

// sidecarName is the injected container's name.
const sidecarName = "outrider"

// layOut turns the injected pod's sidecar into one that runs on this machine: each
// volume becomes a directory under dir, the mount paths in the configuration are
// replaced by those directories, the listeners move to the ports p, and the
// downward-API variables get the pod's values.
func layOut(pod *corev1.Pod, dir string, p ports, pprof bool) (*sidecar, error) {
	var c *corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == sidecarName {
				c = &list[i]
			}
		}
	}
	if c == nil {
		return nil, fmt.Errorf("the injected pod has no %q container", sidecarName)
	}
	text := pod.Annotations[inject.AnnotationConfig]
	if text == "" {
		return nil, fmt.Errorf("the injected pod has no %s annotation", inject.AnnotationConfig)
	}
	s := &sidecar{volumes: map[string]string{}, mounts: map[string]string{}}
	for _, v := range pod.Spec.Volumes {
		s.volumes[v.Name] = filepath.Join(dir, v.Name)
	}
	for _, m := range c.VolumeMounts {
		d, ok := s.volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("mount %s names no volume %q", m.MountPath, m.Name)
		}
		if m.SubPath != "" {
			d = filepath.Join(d, m.SubPath)
		}
		s.mounts[m.MountPath] = d
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		return nil, fmt.Errorf("the injected configuration: %w", err)
	}
	cfg = remap(cfg, s.mounts).(map[string]any)
	s.server = loopback(p.server)
	s.otlpGRPC, s.otlpHTTP, s.sentry = loopback(p.otlpGRPC), loopback(p.otlpHTTP), loopback(p.sentry)
	if err := setListeners(cfg, s); err != nil {
		return nil, err
	}
	if pprof {
		cfg["server"].(map[string]any)["pprof"] = true
	}
	if err := s.readPaths(cfg); err != nil {
		return nil, err
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	s.config = string(out)
	s.env = resolveEnv(pod, c.Env)
	for _, a := range c.Args {
		s.args = append(s.args, remapPath(a, s.mounts))
	}
	if s.configPath() == "" {
		return nil, fmt.Errorf("the sidecar's arguments %q name no --config file", c.Args)
	}
	return s, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// remap replaces, in every string of v, a leading mount path by its directory.
func remap(v any, mounts map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = remap(e, mounts)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = remap(e, mounts)
		}
		return x
	case string:
		return remapPath(x, mounts)
	}
	return v
}

// remapPath maps path into the directory of the longest mount path it is under.
func remapPath(path string, mounts map[string]string) string {
	keys := make([]string, 0, len(mounts))
	for k := range mounts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		if path == k {
			return mounts[k]
		}
		if strings.HasPrefix(path, strings.TrimSuffix(k, "/")+"/") {
			return mounts[k] + path[len(strings.TrimSuffix(k, "/")):]
		}
	}
	return path
}

// section returns cfg[key] as a map, creating it when missing.
func section(cfg map[string]any, key string) (map[string]any, error) {
	v, ok := cfg[key]
	if !ok || v == nil {
		m := map[string]any{}
		cfg[key] = m
		return m, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the injected configuration's %s is not a mapping", key)
	}
	return m, nil
}

// setListeners moves the server and the receivers to s's addresses, and reads the
// Sentry endpoint's key.
func setListeners(cfg map[string]any, s *sidecar) error {
	server, err := section(cfg, "server")
	if err != nil {
		return err
	}
	server["listen"] = s.server
	receivers, err := section(cfg, "receivers")
	if err != nil {
		return err
	}
	otlp, err := section(receivers, "otlp")
	if err != nil {
		return fmt.Errorf("receivers.%w", err)
	}
	for key, addr := range map[string]string{"grpc": s.otlpGRPC, "http": s.otlpHTTP} {
		sub, err := section(otlp, key)
		if err != nil {
			return fmt.Errorf("receivers.otlp.%w", err)
		}
		sub["listen"] = addr
	}
	sentry, ok := receivers["sentry"].(map[string]any)
	if !ok {
		return fmt.Errorf("the injected configuration has no Sentry receiver")
	}
	sentry["listen"] = s.sentry
	s.sentryKey, _ = sentry["public_key"].(string)
	if s.sentryKey == "" {
		return fmt.Errorf("the injected Sentry receiver has no public_key")
	}
	return nil
}

// readPaths finds the files the benchmark provides or checks: the secret files, the
// JWT, the upstream DSN and the log directory.
func (s *sidecar) readPaths(cfg map[string]any) error {
	str := func(m any, keys ...string) string {
		for _, k := range keys {
			mm, ok := m.(map[string]any)
			if !ok {
				return ""
			}
			m = mm[k]
		}
		v, _ := m.(string)
		return v
	}
	secrets, _ := cfg["secrets"].(map[string]any)
	files, _ := secrets["files"].([]any)
	for _, f := range files {
		if p := str(f, "path"); p != "" {
			s.secretFiles = append(s.secretFiles, p)
		}
	}
	s.tokenPath = str(cfg, "secrets", "vault", "auth", "token_path")
	s.dsnFile = str(cfg, "exporters", "sentry", "dsn_file")
	logs, _ := cfg["logs"].(map[string]any)
	sources, _ := logs["sources"].([]any)
	if len(sources) > 0 {
		s.logDir = filepath.Dir(str(sources[0], "path"))
	}
	switch {
	case len(s.secretFiles) == 0:
		return fmt.Errorf("the injected configuration renders no secret file")
	case s.tokenPath == "":
		return fmt.Errorf("the injected configuration has no secrets.vault.auth.token_path")
	case s.dsnFile == "":
		return fmt.Errorf("the injected configuration has no exporters.sentry.dsn_file")
	case s.logDir == "":
		return fmt.Errorf("the injected configuration has no log source")
	}
	return nil
}

// imageHome is the home directory of the image's user (distroless nonroot, 65532),
// which the container runtime puts in HOME when the pod does not set it.
const imageHome = "/home/nonroot"

// resolveEnv returns the container's environment as KEY=value, the downward-API
// fields taken from pod, with what the container runtime adds: PATH, and HOME from
// the image's user.
func resolveEnv(pod *corev1.Pod, env []corev1.EnvVar) []string {
	fields := map[string]string{
		"metadata.name":      pod.Name,
		"metadata.namespace": pod.Namespace,
		"metadata.uid":       string(pod.UID),
		"spec.nodeName":      pod.Spec.NodeName,
	}
	out := []string{"PATH=/usr/bin:/bin", "HOME=" + imageHome}
	for _, e := range env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = fields[e.ValueFrom.FieldRef.FieldPath]
		}
		out = append(out, e.Name+"="+v)
	}
	return out
}
