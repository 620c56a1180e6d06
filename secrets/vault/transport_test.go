package vault

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRT answers every request itself: the transport's own logic is under test here,
// not Vault.
type fakeRT struct {
	mu     sync.Mutex
	starts []time.Time
	answer func(*http.Request) (*http.Response, error)
}

func (f *fakeRT) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.starts = append(f.starts, time.Now())
	f.mu.Unlock()
	if f.answer != nil {
		return f.answer(req)
	}
	return status(200)(req)
}

func status(code int) func(*http.Request) (*http.Response, error) {
	return func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
	}
}

func get(t *testing.T, rt http.RoundTripper, ctx context.Context, path string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://vault.invalid"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestTransportSpacesRequests(t *testing.T) {
	const rate, n = 50.0, 15
	f := &fakeRT{}
	tr := &transport{next: f, limiter: newLimiter(rate), timeout: time.Second, metrics: NewMetrics(nil)}
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/3; i++ {
				if _, err := get(t, tr, context.Background(), "/v1/secret/data/x"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(f.starts) != n {
		t.Fatalf("%d requests sent, want %d", len(f.starts), n)
	}
	// Past the start burst the limiter hands out one token every 1/rate: the k-th
	// request cannot start before (k-startBurst)/rate after the first, however the
	// goroutines race.
	first := f.starts[0]
	for _, s := range f.starts {
		if s.Before(first) {
			first = s
		}
	}
	last := first
	for _, s := range f.starts {
		if s.After(last) {
			last = s
		}
	}
	if min := time.Duration(float64(n-startBurst) / rate * float64(time.Second)); last.Sub(first) < min-5*time.Millisecond {
		t.Fatalf("%d requests within %v; the cap allows no less than %v", n, last.Sub(first), min)
	}
}

// TestTransportStartBurst checks that a new client's first startBurst requests do not
// wait for the cap, that the requests after them are spaced 1/cap apart, and that the
// burst does not come back after a quiet time.
func TestTransportStartBurst(t *testing.T) {
	for _, tt := range []struct {
		perSecond float64
		burst     int
	}{{0.01, 1}, {1, 1}, {2, 2}, {4, 4}, {10, 4}, {1000, 4}} {
		if got := newLimiter(tt.perSecond).Burst(); got != tt.burst {
			t.Errorf("newLimiter(%v).Burst() = %d, want %d", tt.perSecond, got, tt.burst)
		}
	}
	const rate = 4.0 // without the burst, 4 requests take at least 750 ms
	f := &fakeRT{}
	tr := &transport{next: f, limiter: newLimiter(rate), timeout: time.Second, metrics: NewMetrics(nil)}
	began := time.Now()
	for range startBurst {
		if _, err := get(t, tr, context.Background(), "/v1/secret/data/x"); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("the first %d requests took %v: they waited for the cap", startBurst, took)
	}
	if b := tr.limiter.Burst(); b != 1 {
		t.Errorf("burst %d after the start, want 1", b)
	}
	time.Sleep(time.Second) // a quiet time refills one token, never more
	for range 3 {
		if _, err := get(t, tr, context.Background(), "/v1/secret/data/x"); err != nil {
			t.Fatal(err)
		}
	}
	s := f.starts[len(f.starts)-3:]
	if gap := s[2].Sub(s[0]); gap < 2*time.Second/rate-5*time.Millisecond {
		t.Errorf("3 requests after a quiet time within %v; the cap allows no less than %v", gap, 2*time.Second/rate)
	}
}

func TestTransportTimeoutExcludesRateWait(t *testing.T) {
	f := &fakeRT{answer: func(req *http.Request) (*http.Response, error) {
		select {
		case <-time.After(10 * time.Millisecond):
			return status(200)(req)
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}}
	// One request per second and a 300ms timeout: the second request waits about a
	// second for its turn, and must still get its whole timeout once sent.
	tr := &transport{next: f, limiter: newLimiter(1), timeout: 300 * time.Millisecond, metrics: NewMetrics(nil)}
	for i := 0; i < 2; i++ {
		if _, err := get(t, tr, context.Background(), "/v1/x"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

func TestTransportTimeout(t *testing.T) {
	f := &fakeRT{answer: func(req *http.Request) (*http.Response, error) {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}}
	tr := &transport{next: f, limiter: newLimiter(100), timeout: 20 * time.Millisecond, metrics: NewMetrics(nil)}
	if _, err := get(t, tr, context.Background(), "/v1/x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
}

func TestTransportWaitHonoursContext(t *testing.T) {
	tr := &transport{next: &fakeRT{}, limiter: newLimiter(0.01), timeout: time.Second, metrics: NewMetrics(nil)}
	if _, err := get(t, tr, context.Background(), "/v1/x"); err != nil { // takes the only token
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := get(t, tr, ctx, "/v1/x")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "request-rate cap") {
		t.Fatalf("err = %v, want cancelled while waiting for the cap", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = get(t, tr, ctx, "/v1/x") // the next token is 100 s away: fail now, not in a second
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestTransportMetrics(t *testing.T) {
	m := NewMetrics(nil)
	codes := map[string]int{"/v1/a": 200, "/v1/b": 404, "/v1/c": 503, "/v1/d": 429}
	f := &fakeRT{answer: func(req *http.Request) (*http.Response, error) {
		if req.URL.Path == "/v1/down" {
			return nil, errors.New("connection refused")
		}
		return status(codes[req.URL.Path])(req)
	}}
	tr := &transport{next: f, limiter: newLimiter(1e6), timeout: time.Second, metrics: m}
	ctx := withOp(context.Background(), OpRead)
	for _, p := range []string{"/v1/a", "/v1/b", "/v1/c", "/v1/d", "/v1/down"} {
		get(t, tr, ctx, p)
	}
	get(t, tr, context.Background(), "/v1/auth/token/renew-self")
	get(t, tr, context.Background(), "/v1/auth/approle/login")
	for _, tc := range []struct {
		op, result string
		want       float64
	}{
		{OpRead, ResultSuccess, 1}, {OpRead, ResultPermanent, 1}, {OpRead, ResultRetryable, 3},
		{OpTokenRenew, ResultSuccess, 1}, {OpLogin, ResultSuccess, 1},
	} {
		if got := value(t, m.requests.WithLabelValues(tc.op, tc.result)); got != tc.want {
			t.Errorf("requests{op=%s,result=%s} = %v, want %v", tc.op, tc.result, got, tc.want)
		}
	}
	if n := seriesCount(m.duration); n != 3 {
		t.Errorf("duration series = %d, want 3 (read, token_renew, login)", n)
	}
}
