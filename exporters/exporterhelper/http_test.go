package exporterhelper

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestNewHTTPClient(t *testing.T) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	c := NewHTTPClient(tlsCfg, 3)
	defer c.CloseIdleConnections()
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T, want *http.Transport", c.Transport)
	}
	if tr.TLSClientConfig != tlsCfg || tr.MaxIdleConns != 6 || tr.MaxIdleConnsPerHost != 6 ||
		tr.Proxy == nil || !tr.ForceAttemptHTTP2 {
		t.Errorf("transport %+v", tr)
	}

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	resp, err := c.Post(srv.URL+"/push", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	CloseBody(resp.Body)
	if resp.StatusCode != http.StatusFound || hits.Load() != 1 {
		t.Errorf("status %d after %d requests; a redirect must reach the caller unfollowed", resp.StatusCode, hits.Load())
	}
}

func TestRequestBody(t *testing.T) {
	t.Run("closed by the transport", func(t *testing.T) {
		got := make(chan string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- string(b)
		}))
		defer srv.Close()
		c := NewHTTPClient(nil, 1)
		defer c.CloseIdleConnections()
		rb := NewRequestBody([]byte("payload"))
		req, err := http.NewRequest(http.MethodPost, srv.URL, rb)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		CloseBody(resp.Body)
		if !rb.Wait() {
			t.Error("Wait = false after the request finished")
		}
		if b := <-got; b != "payload" {
			t.Errorf("server read %q", b)
		}
	})
	t.Run("never closed", func(t *testing.T) {
		rb := NewRequestBody([]byte("x"))
		if rb.wait(time.Millisecond) {
			t.Error("wait = true for a body nobody closed")
		}
	})
	t.Run("closed twice", func(t *testing.T) {
		rb := NewRequestBody(nil)
		for range 2 {
			if err := rb.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if !rb.Wait() {
			t.Error("a closed body did not report it")
		}
	})
}

// failingReader returns its data, then err.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadBody(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		r       io.Reader
		want    string
		cut     bool
		wantErr error
	}{
		{"nil", nil, "", false, nil},
		{"empty", strings.NewReader(""), "", false, nil},
		{"short", strings.NewReader("abc"), "abc", false, nil},
		{"exactly the limit", strings.NewReader("abcdefgh"), "abcdefgh", false, nil},
		{"longer", strings.NewReader("abcdefghi"), "abcdefgh", true, nil},
		{"read error", &failingReader{data: "ab", err: boom}, "ab", false, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, cut, err := ReadBody(tt.r, 8)
			if string(b) != tt.want || cut != tt.cut || !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadBody = %q, %v, %v; want %q, %v, %v", b, cut, err, tt.want, tt.cut, tt.wantErr)
			}
		})
	}
}

// countingBody counts the bytes read from it and whether it was closed.
type countingBody struct {
	io.Reader
	read   int
	closed bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error { b.closed = true; return nil }

func TestCloseBody(t *testing.T) {
	tests := []struct {
		name string
		size int
		want int
	}{
		{"short body drained", 100, 100},
		{"long body drained up to the cap", 1 << 20, maxDrain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &countingBody{Reader: strings.NewReader(strings.Repeat("x", tt.size))}
			CloseBody(b)
			if b.read != tt.want || !b.closed {
				t.Errorf("read %d bytes, closed %v; want %d, true", b.read, b.closed, tt.want)
			}
		})
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[int]string{503: "503 Service Unavailable", 429: "429 Too Many Requests", 599: "599"} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in    string
		want  time.Duration
		valid bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(time.Hour).Format(http.TimeFormat), time.Hour, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999", time.Duration(int64(1<<62) / int64(time.Second) * int64(time.Second)), true},
	}
	for _, tt := range tests {
		if got, ok := ParseRetryAfter(tt.in, now); got != tt.want || ok != tt.valid {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.valid)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "999999999999999999999", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func TestStatusPolicyClassify(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &StatusPolicy{
		AuthHint:       "check the token",
		NotFoundReason: "not_found",
		NotFoundHint:   "check the path",
		TooLargeHint:   "send less",
		RedirectHint:   "fix the url",
	}
	type want struct {
		ok        bool
		permanent string // reason; "" means retryable
		after     time.Duration
		message   string
	}
	tests := []struct {
		name       string
		code       int
		retryAfter string
		rejected   func(error) error
		want       want
	}{
		{"200", 200, "", nil, want{ok: true}},
		{"204", 204, "", nil, want{ok: true}},
		{"429 seconds", 429, "7", nil, want{after: 7 * time.Second, message: "failed"}},
		{"429 date", 429, now.Add(90 * time.Second).Format(http.TimeFormat), nil, want{after: 90 * time.Second, message: "failed"}},
		{"429 invalid retry-after", 429, "soon", nil, want{message: "failed"}},
		{"500", 500, "", nil, want{message: "failed"}},
		{"503 retry-after", 503, "3", nil, want{after: 3 * time.Second, message: "failed"}},
		{"599", 599, "", nil, want{message: "failed"}},
		{"401", 401, "", nil, want{permanent: ReasonUnauthorized, message: "failed; check the token"}},
		{"403", 403, "", nil, want{permanent: ReasonUnauthorized, message: "failed; check the token"}},
		{"404", 404, "", nil, want{permanent: "not_found", message: "failed; check the path"}},
		{"405", 405, "", nil, want{permanent: "not_found", message: "failed; check the path"}},
		{"413", 413, "", nil, want{permanent: ReasonTooLarge, message: "failed; send less"}},
		{"400", 400, "", nil, want{permanent: ReasonBadRequest, message: "failed"}},
		{"422 retry-after ignored", 422, "5", nil, want{permanent: ReasonBadRequest, message: "failed"}},
		{"400 by rejected", 400, "", func(err error) error { return pipeline.Permanent("own", err) }, want{permanent: "own", message: "failed"}},
		{"401 not by rejected", 401, "", func(err error) error { return pipeline.Permanent("own", err) }, want{permanent: ReasonUnauthorized, message: "failed; check the token"}},
		{"302", 302, "", nil, want{message: "failed; fix the url"}},
		{"101", 101, "", nil, want{message: "failed; fix the url"}},
	}
	base := errors.New("failed")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			err := p.Classify(tt.code, h, now, base, tt.rejected)
			if tt.want.ok {
				if err != nil {
					t.Fatalf("Classify = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, base) {
				t.Fatalf("Classify = %v, which does not wrap the response's error", err)
			}
			reason, perm := pipeline.IsPermanent(err)
			switch {
			case tt.want.permanent != "" && (!perm || reason != tt.want.permanent):
				t.Fatalf("Classify = %v, want permanent %q", err, tt.want.permanent)
			case tt.want.permanent == "" && perm:
				t.Fatalf("Classify = %v, want retryable", err)
			}
			if after, _ := pipeline.RetryAfter(err); after != tt.want.after {
				t.Errorf("retry after %v, want %v", after, tt.want.after)
			}
			if !strings.HasSuffix(err.Error(), ": "+tt.want.message) {
				t.Errorf("message %q, want it to end in %q", err, tt.want.message)
			}
		})
	}
}
