package exporterhelper

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/pipeline"
)

// fakeClock records the delays a Retrier asks for and advances instead of sleeping.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	delays []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delays = append(c.delays, d)
	c.t = c.t.Add(d)
	return nil
}

func newTestRetrier(t *testing.T, cfg RetryConfig) (*Retrier, *fakeClock, *Metrics) {
	t.Helper()
	cfg.ApplyDefaults()
	m := NewMetrics(nil)
	r, err := NewRetrier(cfg, time.Second, Settings{Name: "test", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r.sleep, r.now, r.rand = clk.sleep, clk.now, func() float64 { return 0.5 }
	return r, clk, m
}

// script returns an attempt function that returns errs in turn, then nil.
func script(errs ...error) (func(context.Context) error, *int) {
	n := 0
	return func(context.Context) error {
		n++
		if n <= len(errs) {
			return errs[n-1]
		}
		return nil
	}, &n
}

func TestRetrier(t *testing.T) {
	boom := errors.New("connection refused")
	bad := pipeline.Permanent("bad_request", errors.New("400"))
	cases := []struct {
		name     string
		cfg      RetryConfig
		errs     []error
		attempts int
		perm     string // wanted permanent reason; "" wants success
		delays   func(t *testing.T, d []time.Duration)
	}{
		{name: "first try", attempts: 1},
		{name: "retry then success", errs: []error{boom, boom, pipeline.Retryable(boom, 0)}, attempts: 4,
			cfg: RetryConfig{InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second},
			delays: func(t *testing.T, d []time.Duration) {
				if len(d) != 3 {
					t.Fatalf("delays %v", d)
				}
				for i, x := range d {
					if x < 100*time.Millisecond || x > time.Second {
						t.Errorf("delay %d = %v outside [initial, max]", i, x)
					}
				}
				if d[2] <= d[0] {
					t.Errorf("delays did not grow: %v", d)
				}
			}},
		{name: "permanent not retried", errs: []error{bad}, attempts: 1, perm: "bad_request",
			delays: func(t *testing.T, d []time.Duration) {
				if len(d) != 0 {
					t.Fatalf("slept %v before giving up on a permanent error", d)
				}
			}},
		{name: "retry-after honoured", errs: []error{pipeline.Retryable(boom, 7*time.Second)}, attempts: 2,
			delays: func(t *testing.T, d []time.Duration) {
				if len(d) != 1 || d[0] != 7*time.Second {
					t.Fatalf("delays %v, want [7s]", d)
				}
			}},
		{name: "retry-after capped", cfg: RetryConfig{MaxRetryAfter: time.Minute},
			errs: []error{pipeline.Retryable(boom, time.Hour)}, attempts: 2,
			delays: func(t *testing.T, d []time.Duration) {
				if len(d) != 1 || d[0] != time.Minute {
					t.Fatalf("delays %v, want [1m]", d)
				}
			}},
		{name: "max elapsed", cfg: RetryConfig{InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsed: 5 * time.Second},
			errs: []error{boom, boom, boom, boom, boom, boom, boom, boom, boom}, attempts: 6, perm: ReasonRetriesExhausted}, // attempts at 0s, 1s, …, 5s
		{name: "unlimited by default", cfg: RetryConfig{InitialInterval: time.Hour, MaxInterval: time.Hour},
			errs: make([]error, 0, 50), attempts: 51},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "unlimited by default" {
				for range 50 {
					tc.errs = append(tc.errs, boom)
				}
			}
			r, clk, m := newTestRetrier(t, tc.cfg)
			attempt, n := script(tc.errs...)
			err := r.Do(context.Background(), attempt)
			if *n != tc.attempts {
				t.Errorf("%d attempts, want %d", *n, tc.attempts)
			}
			reason, perm := pipeline.IsPermanent(err)
			switch {
			case tc.perm == "" && err != nil:
				t.Fatalf("Do = %v, want success", err)
			case tc.perm != "" && (!perm || reason != tc.perm):
				t.Fatalf("Do = %v, want permanent %q", err, tc.perm)
			}
			if tc.delays != nil {
				tc.delays(t, clk.delays)
			}
			retries := value(t, m.retries.WithLabelValues("test"))
			if int(retries) != len(clk.delays) {
				t.Errorf("retries metric %v, slept %d times", retries, len(clk.delays))
			}
			var ok, retry, permN float64
			ok = value(t, m.requests.WithLabelValues("test", ResultSuccess))
			retry = value(t, m.requests.WithLabelValues("test", ResultRetry))
			permN = value(t, m.requests.WithLabelValues("test", ResultPermanent))
			if int(ok+retry+permN) != tc.attempts {
				t.Errorf("requests metric %v+%v+%v, want %d attempts", ok, retry, permN, tc.attempts)
			}
			if d := value(t, m.requestDuration.WithLabelValues("test", ResultRetry).(prometheus.Metric)); d != retry {
				t.Errorf("duration observations %v, retry attempts %v", d, retry)
			}
		})
	}
}

func TestRetrierStopsOnContext(t *testing.T) {
	r, _, _ := newTestRetrier(t, RetryConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := r.Do(ctx, func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return errors.New("503")
	})
	if calls != 3 {
		t.Fatalf("%d attempts after cancel, want 3", calls)
	}
	if _, perm := pipeline.IsPermanent(err); perm || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want a non-permanent error wrapping context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not carry the last attempt's error", err)
	}
}

func TestRetrierRealSleepStopsOnContext(t *testing.T) {
	cfg := RetryConfig{InitialInterval: time.Hour, MaxInterval: time.Hour}
	cfg.ApplyDefaults()
	r, err := NewRetrier(cfg, time.Second, Settings{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Do(ctx, func(context.Context) error { return errors.New("down") }) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do kept sleeping after its context was cancelled")
	}
}

func TestRetrierAttemptTimeout(t *testing.T) {
	cfg := RetryConfig{}
	cfg.ApplyDefaults()
	r, err := NewRetrier(cfg, 50*time.Millisecond, Settings{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(0, 0)}
	r.sleep = clk.sleep
	calls := 0
	err = r.Do(context.Background(), func(ctx context.Context) error {
		calls++
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > 50*time.Millisecond {
			t.Errorf("attempt deadline %v (set %v), want within the 50ms timeout", dl, ok)
		}
		if calls == 1 {
			<-ctx.Done() // a backend that never answers
			return pipeline.Retryable(ctx.Err(), 0)
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Do = %v after %d calls; a timed-out attempt must be retried", err, calls)
	}
}

func TestNewRetrierValidates(t *testing.T) {
	_, err := NewRetrier(RetryConfig{}, 0, Settings{})
	if err == nil || !strings.Contains(err.Error(), "retry.initial_interval") || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("NewRetrier with zero config = %v", err)
	}
}

func TestRetrierLogsSparingly(t *testing.T) {
	logs := &exportertest.LogBuffer{}
	cfg := RetryConfig{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}
	cfg.ApplyDefaults()
	r, err := NewRetrier(cfg, time.Second, Settings{Name: "test", Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r.sleep, r.now = clk.sleep, clk.now
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = errors.New("connection refused")
	}
	attempt, _ := script(errs...)
	if err := r.Do(context.Background(), attempt); err != nil {
		t.Fatal(err)
	}
	lines := logs.Lines()
	if len(lines) != 2 || !strings.Contains(lines[0], "will retry") || !strings.Contains(lines[0], "connection refused") ||
		!strings.Contains(lines[1], "succeeded after retries") {
		t.Fatalf("100 failures within 100ms logged %d lines, want one warning and one recovery: %q", len(lines), lines)
	}
}
