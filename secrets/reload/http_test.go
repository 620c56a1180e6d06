package reload

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// app is an application's reload endpoint on 127.0.0.1.
type app struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func newApp(t *testing.T, h http.HandlerFunc) *app {
	a := &app{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests = append(a.requests, r.Clone(context.Background()))
		a.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *app) got() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.requests...)
}

func httpConfig(url string) Config {
	return Config{Method: MethodHTTP, URL: url, Headers: map[string]confval.Secret{"X-Reload": "1", "Authorization": "Bearer s3cr3t-header"}}
}

func TestHTTPReload(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := newHarness()
	r := h.newReloader(t, httpConfig(a.URL+"/-/reload"))
	out, err := r.ReloadNow(context.Background())
	if err != nil || !out.OK || out.Targets != 1 || out.Method != MethodHTTP {
		t.Fatalf("ReloadNow = %+v, %v", out, err)
	}
	reqs := a.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if req.Method != http.MethodPost || req.URL.Path != "/-/reload" || req.Header.Get("X-Reload") != "1" ||
		req.Header.Get("Authorization") != "Bearer s3cr3t-header" {
		t.Errorf("request %s %s %v", req.Method, req.URL, req.Header)
	}
	mustContain(t, "target", out.Target, "POST http://127.0.0.1:")
	mustNotContain(t, "logs and audit", h.logs.String()+auditText(h), "s3cr3t-header")
	if h.reloads(t, MethodHTTP, ResultOK) != 1 {
		t.Error("success not counted")
	}
}

func auditText(h *harness) string {
	var b strings.Builder
	for _, e := range h.audit.list() {
		b.WriteString(e.Path + " " + e.Detail + " " + e.Error + " " + e.Outcome + "\n")
	}
	return b.String()
}

func TestHTTPFailures(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "config invalid: line 3\nsecond line", http.StatusInternalServerError)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/redirect":
			http.Redirect(w, r, "http://192.0.2.1/reload", http.StatusFound)
		case "/big":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(strings.Repeat("x", 100000)))
		}
	})
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	withCreds := strings.Replace(a.URL, "http://", "http://user:hunter2@", 1)
	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		want    []string
	}{
		{"500", a.URL + "/fail?token=q5ecret", 0, []string{"answered 500 Internal Server Error", "config invalid: line 3 second line"}},
		{"timeout", a.URL + "/slow", 200 * time.Millisecond, []string{"timed out after 200ms", "raise timeout"}},
		{"redirect not followed", a.URL + "/redirect", 0, []string{"answered 302", "redirects are not followed"}},
		{"long body bounded", a.URL + "/big", 0, []string{"answered 503", "xxx…"}},
		{"refused", closed + "/reload", 0, []string{"connection refused", "check that the app is running"}},
		{"credentials hidden", withCreds + "/fail?token=q5ecret", 0, []string{"answered 500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := httpConfig(tt.url)
			cfg.Timeout = tt.timeout
			h := newHarness()
			r := h.newReloader(t, cfg)
			out, err := r.ReloadNow(context.Background())
			if err == nil || out.OK {
				t.Fatalf("ReloadNow succeeded: %+v", out)
			}
			mustContain(t, "error", err.Error(), tt.want...)
			if len(err.Error()) > 600 {
				t.Errorf("error of %d bytes", len(err.Error()))
			}
			mustNotContain(t, "error, logs and audit", err.Error()+h.logs.String()+auditText(h), "hunter2", "q5ecret", "s3cr3t-header")
			if h.reloads(t, MethodHTTP, ResultError) != 1 {
				t.Error("failure not counted")
			}
		})
	}
}
