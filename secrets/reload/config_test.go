package reload

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestApplyDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if c.Method != MethodNone || c.Timeout != DefaultTimeout || c.MinWait != DefaultMinWait ||
		c.MaxWait != DefaultMaxWait || c.Retries == nil || *c.Retries != DefaultRetries {
		t.Errorf("defaults: %+v", c)
	}
	if c.Signal != "" || c.HTTPMethod != "" {
		t.Errorf("method-specific defaults applied to method none: %+v", c)
	}

	s := Config{Method: MethodSignal, Retries: intp(0)}
	s.ApplyDefaults()
	if s.Signal != DefaultSignal || *s.Retries != 0 {
		t.Errorf("signal defaults: %+v", s)
	}
	h := Config{Method: MethodHTTP, MinWait: 3 * time.Second}
	h.ApplyDefaults()
	if h.HTTPMethod != "POST" || h.MaxWait != 3*time.Second {
		t.Errorf("http defaults: %+v", h)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{name: "none", cfg: Config{}},
		{name: "signal by name", cfg: Config{Method: MethodSignal, Process: "nginx"}},
		{name: "signal by pid file with number", cfg: Config{Method: MethodSignal, PIDFile: "/run/app.pid", Signal: "10"}},
		{name: "http loopback v4", cfg: Config{Method: MethodHTTP, URL: "http://127.0.0.1:8080/-/reload", Headers: map[string]confval.Secret{"X-Reload": "1"}}},
		{name: "http loopback v6", cfg: Config{Method: MethodHTTP, URL: "https://[::1]:8443/reload"}},
		{name: "http localhost", cfg: Config{Method: MethodHTTP, URL: "http://localhost/reload", HTTPMethod: "PUT"}},
		{name: "http remote allowed", cfg: Config{Method: MethodHTTP, URL: "http://app:8080/reload", AllowRemote: true}},
		{name: "exec", cfg: Config{Method: MethodExec, Command: []string{"/bin/true"}}},
		{name: "unknown method", cfg: Config{Method: "pigeon"}, want: []string{"method: must be one of"}},
		{name: "signal without target", cfg: Config{Method: MethodSignal}, want: []string{"needs process"}},
		{name: "signal by pid file checked by name", cfg: Config{Method: MethodSignal, Process: "a", PIDFile: "/a.pid"}},
		{name: "bad signal", cfg: Config{Method: MethodSignal, Process: "a", Signal: "SIGKILLALL"}, want: []string{"signal: unknown signal"}},
		{name: "process with slash", cfg: Config{Method: MethodSignal, Process: "/usr/bin/nginx"}, want: []string{"process: \"/usr/bin/nginx\" is not a process name"}},
		{name: "relative pid file", cfg: Config{Method: MethodSignal, PIDFile: "run/app.pid"}, want: []string{"pid_file: \"run/app.pid\" must be an absolute path"}},
		{name: "http without url", cfg: Config{Method: MethodHTTP}, want: []string{"url: required"}},
		{name: "http remote", cfg: Config{Method: MethodHTTP, URL: "http://10.0.0.1:8080/reload"}, want: []string{"url: host \"10.0.0.1\" is not a loopback address; the app runs beside outrider, so use 127.0.0.1 or localhost, or set allow_remote: true"}},
		{name: "http remote name", cfg: Config{Method: MethodHTTP, URL: "http://app:8080/reload"}, want: []string{"not a loopback address"}},
		{name: "http bad scheme", cfg: Config{Method: MethodHTTP, URL: "ftp://127.0.0.1/x"}, want: []string{"url: must start with http://"}},
		{name: "http unparsable url keeps credentials out", cfg: Config{Method: MethodHTTP, URL: "http://u:hunter2@127.0.0.1:bad/"}, want: []string{"url: not a valid URL"}},
		{name: "http bad method and header", cfg: Config{Method: MethodHTTP, URL: "http://127.0.0.1/", HTTPMethod: "PO ST", Headers: map[string]confval.Secret{"Bad Name": "x", "X-Ok": "a\r\nb"}},
			want: []string{"http_method: \"PO ST\"", "headers: \"Bad Name\"", "headers.X-Ok: the value must not contain line breaks"}},
		{name: "exec without command", cfg: Config{Method: MethodExec}, want: []string{"command: required"}},
		{name: "exec empty program", cfg: Config{Method: MethodExec, Command: []string{" "}}, want: []string{"command[0]: the program must not be empty"}},
		{name: "fields of another method", cfg: Config{Method: MethodExec, Command: []string{"x"}, URL: "http://127.0.0.1/", Process: "nginx", AllowPID1: true},
			want: []string{"url: is only used with method http", "process: is only used with method signal", "allow_pid1: is only used with method signal"}},
		{name: "bad waits", cfg: Config{MinWait: 2 * time.Second, MaxWait: time.Second, Timeout: -1, Retries: intp(11)},
			want: []string{"max_wait: must be at least min_wait", "timeout: must be a positive duration", "retries: must be between 0 and 10"}},
		{name: "negative min wait", cfg: Config{MinWait: -1}, want: []string{"min_wait: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.ApplyDefaults()
			var p confval.Problems
			c.Validate(&p)
			err := p.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid config accepted")
			}
			mustContain(t, "error", err.Error(), tt.want...)
			mustNotContain(t, "error", err.Error(), "hunter2")
			if p.Len() != len(tt.want) {
				t.Errorf("%d problems, want %d: %v", p.Len(), len(tt.want), err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{Method: MethodHTTP, URL: "http://192.0.2.1/"}, Settings{})
	if err == nil || !confval.IsConfigError(err) {
		t.Fatalf("New accepted a remote URL: %v", err)
	}
	_, err = New(Config{Method: MethodExec, Command: []string{"/nonexistent/outrider-reload"}}, Settings{})
	if err == nil || !strings.Contains(err.Error(), "command[0]") {
		t.Fatalf("New accepted a missing program: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"SIGHUP", syscall.SIGHUP, true},
		{"hup", syscall.SIGHUP, true},
		{" SigUsr1 ", syscall.SIGUSR1, true},
		{"USR2", syscall.SIGUSR2, true},
		{"SIGTERM", syscall.SIGTERM, true},
		{"SIGINT", syscall.SIGINT, true},
		{"SIGQUIT", syscall.SIGQUIT, true},
		{"SIGWINCH", syscall.SIGWINCH, true},
		{"1", syscall.SIGHUP, true},
		{"64", syscall.Signal(64), true},
		{"0", 0, false},
		{"65", 0, false},
		{"-1", 0, false},
		{"1x", 0, false},
		{"", 0, false},
		{"SIG", 0, false},
		{"SIGKILL", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseSignal(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
	if signalName(syscall.SIGUSR1) != "SIGUSR1" || signalName(syscall.Signal(40)) != "signal 40" {
		t.Errorf("signalName: %s, %s", signalName(syscall.SIGUSR1), signalName(syscall.Signal(40)))
	}
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"SIGHUP", "usr1", "15", "0", "65", "SIGSIGHUP", " 9 ", "\x00", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err != nil {
			if sig != 0 {
				t.Fatalf("error with signal %d", sig)
			}
			return
		}
		if sig < 1 || sig > maxSignal {
			t.Fatalf("ParseSignal(%q) = %d, out of range", s, sig)
		}
	})
}
