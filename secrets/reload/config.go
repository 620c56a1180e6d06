package reload

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Values of Config.Method.
const (
	MethodNone   = "none"
	MethodSignal = "signal"
	MethodHTTP   = "http"
	MethodExec   = "exec"
)

// Defaults applied by Config.ApplyDefaults.
const (
	DefaultMethod     = MethodNone
	DefaultSignal     = "SIGHUP"
	DefaultHTTPMethod = "POST"
	DefaultTimeout    = 10 * time.Second
	DefaultMinWait    = 100 * time.Millisecond
	DefaultMaxWait    = time.Second
	DefaultRetries    = 3
)

// maxRetries bounds Config.Retries: a reload that fails this often will not succeed
// by being asked again.
const maxRetries = 10

// Config says how to tell the application to reload, and how changes are coalesced.
type Config struct {
	// Method is signal, http, exec or none (default: none, nothing is reloaded).
	Method string `yaml:"method"`

	// Signal is the signal sent with method signal: a name (SIGHUP, SIGUSR1,
	// SIGUSR2, SIGTERM, SIGINT, SIGQUIT, SIGWINCH; the SIG prefix and case are
	// optional) or a number from 1 to 64. Default SIGHUP.
	Signal string `yaml:"signal"`
	// Process names the processes to signal: every live process whose
	// /proc/PID/comm, or the base name of its argv[0], equals it. Names longer
	// than 15 characters match argv[0] only, because the kernel truncates comm.
	// Seeing the application's processes needs a shared process namespace
	// (Kubernetes: shareProcessNamespace: true; docker compose: pid: "service:app").
	// Method signal needs Process, PIDFile or both.
	Process string `yaml:"process"`
	// PIDFile is the absolute path of a file holding the process id to signal,
	// read again at every reload. The id must be one of outrider's process
	// namespace (shared with the application). With Process also set, the process
	// is signalled only if it has that name: a safeguard against a stale pid file
	// or one written in another namespace.
	PIDFile string `yaml:"pid_file"`
	// AllowPID1 allows signalling PID 1 of outrider's process namespace. It is off
	// by default because PID 1 is usually the pod's pause process or an init; turn
	// it on when the application itself is PID 1 (docker compose with
	// pid: "service:app"). outrider never signals itself.
	AllowPID1 bool `yaml:"allow_pid1"`

	// URL is the application's reload endpoint for method http. It must be on a
	// loopback address (127.0.0.0/8, ::1, localhost) unless AllowRemote is set.
	URL string `yaml:"url"`
	// HTTPMethod is the request method (default POST).
	HTTPMethod string `yaml:"http_method"`
	// Headers are added to the request. Their values are secrets: they are never
	// logged.
	Headers map[string]confval.Secret `yaml:"headers"`
	// AllowRemote allows a URL that is not on a loopback address.
	AllowRemote bool `yaml:"allow_remote"`

	// Command is run for method exec: the program and its arguments, without a
	// shell (write ["/bin/sh", "-c", "..."] for one). It runs in its own process
	// group with outrider's environment minus every VAULT_* variable, plus
	// OUTRIDER_RELOAD_NAME and OUTRIDER_RELOAD_REASONS (the changed files, one per
	// line). A non-zero exit is a failed reload; when the command exits or times
	// out, whatever is left of its process group is killed.
	Command []string `yaml:"command"`

	// Timeout bounds one HTTP request or command run (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MinWait is the quiet period: a reload happens MinWait after the last change
	// (default 100ms) …
	MinWait time.Duration `yaml:"min_wait"`
	// MaxWait … but at most MaxWait after the first change not yet reloaded
	// (default 1s). It is also the first delay before a failed reload is retried.
	MaxWait time.Duration `yaml:"max_wait"`
	// Retries is how many times a failed reload is tried again, with jittered
	// exponential backoff starting at MaxWait, before it is reported as failed
	// (default 3; 0 reports the first failure).
	Retries *int `yaml:"retries"`
}

// ApplyDefaults fills zero-valued fields with their defaults. Method-specific
// defaults (signal, http_method) are applied only for their method.
func (c *Config) ApplyDefaults() {
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	switch c.Method {
	case MethodSignal:
		if c.Signal == "" {
			c.Signal = DefaultSignal
		}
	case MethodHTTP:
		if c.HTTPMethod == "" {
			c.HTTPMethod = DefaultHTTPMethod
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MinWait == 0 {
		c.MinWait = DefaultMinWait
	}
	if c.MaxWait == 0 {
		c.MaxWait = max(DefaultMaxWait, c.MinWait)
	}
	if c.Retries == nil {
		n := DefaultRetries
		c.Retries = &n
	}
}

// Validate records every problem of c in p, with field paths relative to the reload
// section. Call it after ApplyDefaults.
func (c *Config) Validate(p *confval.Problems) {
	switch c.Method {
	case MethodNone, MethodSignal, MethodHTTP, MethodExec:
	default:
		p.Addf("method", "must be one of signal, http, exec or none; got %q", c.Method)
	}
	c.validateSignal(p)
	c.validateHTTP(p)
	c.validateExec(p)
	if c.Timeout <= 0 {
		p.Addf("timeout", "must be a positive duration such as \"10s\"; got %s", c.Timeout)
	}
	if c.MinWait < 0 {
		p.Addf("min_wait", "must not be negative; got %s", c.MinWait)
	}
	switch {
	case c.MaxWait <= 0:
		p.Addf("max_wait", "must be a positive duration such as \"1s\"; got %s", c.MaxWait)
	case c.MaxWait < c.MinWait:
		p.Addf("max_wait", "must be at least min_wait (%s); got %s", c.MinWait, c.MaxWait)
	}
	if c.Retries != nil && (*c.Retries < 0 || *c.Retries > maxRetries) {
		p.Addf("retries", "must be between 0 and %d; got %d", maxRetries, *c.Retries)
	}
}

// onlyFor reports a field set for a method that does not use it: most likely a
// mistake in the method or in the field's indentation.
func (c *Config) onlyFor(p *confval.Problems, method, field string, set bool) {
	if set && c.Method != method {
		p.Addf(field, "is only used with method %s (method is %s); remove it or set method: %s", method, c.Method, method)
	}
}

func (c *Config) validateSignal(p *confval.Problems) {
	c.onlyFor(p, MethodSignal, "signal", c.Signal != "")
	c.onlyFor(p, MethodSignal, "process", c.Process != "")
	c.onlyFor(p, MethodSignal, "pid_file", c.PIDFile != "")
	c.onlyFor(p, MethodSignal, "allow_pid1", c.AllowPID1)
	if c.Method != MethodSignal {
		return
	}
	if _, err := ParseSignal(c.Signal); err != nil {
		p.Addf("signal", "%v", err)
	}
	if c.Process == "" && c.PIDFile == "" {
		p.Addf("", "method signal needs process (a process name such as nginx) or pid_file (such as /run/app.pid)")
	}
	if c.Process != "" && (strings.ContainsAny(c.Process, "/\x00\n") || strings.TrimSpace(c.Process) != c.Process) {
		p.Addf("process", "%q is not a process name; give the program's base name, such as nginx", c.Process)
	}
	if c.PIDFile != "" && !filepath.IsAbs(c.PIDFile) {
		p.Addf("pid_file", "%q must be an absolute path, such as /run/app.pid", c.PIDFile)
	}
}

func (c *Config) validateHTTP(p *confval.Problems) {
	c.onlyFor(p, MethodHTTP, "url", c.URL != "")
	c.onlyFor(p, MethodHTTP, "http_method", c.HTTPMethod != "")
	c.onlyFor(p, MethodHTTP, "headers", len(c.Headers) > 0)
	c.onlyFor(p, MethodHTTP, "allow_remote", c.AllowRemote)
	if c.Method != MethodHTTP {
		return
	}
	if c.URL == "" {
		p.Addf("url", "required with method http: the app's reload endpoint, such as http://127.0.0.1:8080/-/reload")
	} else if u, err := url.Parse(c.URL); err != nil {
		p.Addf("url", "not a valid URL: %v", redactURLError(err))
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			p.Addf("url", "must start with http:// or https://; got scheme %q", u.Scheme)
		case u.Hostname() == "":
			p.Addf("url", "has no host; write e.g. http://127.0.0.1:8080/-/reload")
		case !c.AllowRemote && !isLoopbackHost(u.Hostname()):
			p.Addf("url", "host %q is not a loopback address; the app runs beside outrider, so use 127.0.0.1 or localhost, or set allow_remote: true", u.Hostname())
		}
	}
	if !isToken(c.HTTPMethod) {
		p.Addf("http_method", "%q is not a valid HTTP method; use e.g. POST, PUT or GET", c.HTTPMethod)
	}
	for _, k := range sortedKeys(c.Headers) {
		if !isToken(k) {
			p.Addf("headers", "%q is not a valid header name", k)
		}
		if strings.ContainsAny(c.Headers[k].Reveal(), "\r\n\x00") {
			p.Addf("headers."+k, "the value must not contain line breaks or NUL bytes")
		}
	}
}

func (c *Config) validateExec(p *confval.Problems) {
	c.onlyFor(p, MethodExec, "command", len(c.Command) > 0)
	if c.Method != MethodExec {
		return
	}
	switch {
	case len(c.Command) == 0:
		p.Addf("command", "required with method exec: the program and its arguments, such as [\"/usr/sbin/nginx\", \"-s\", \"reload\"]")
	case strings.TrimSpace(c.Command[0]) == "":
		p.Addf("command[0]", "the program must not be empty")
	}
}

// isLoopbackHost reports whether host (without port or brackets) is a loopback IP
// address or "localhost".
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isToken reports whether s is an RFC 9110 token (a header name or method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// redactURLError drops the URL (which may hold credentials) from a url.Parse error.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s", ue.Err)
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
