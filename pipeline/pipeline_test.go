package pipeline

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestSplitAcksOnceAfterAllParts(t *testing.T) {
	var (
		calls int
		got   error
	)
	parts := Split(func(err error) { calls++; got = err }, 3)
	parts[0](nil)
	parts[0](nil) // a second call of the same part is ignored
	parts[2](nil)
	if calls != 0 {
		t.Fatalf("acked after 2 of 3 parts")
	}
	boom := errors.New("boom")
	parts[1](Permanent("too_old", boom))
	if calls != 1 {
		t.Fatalf("ack called %d times, want 1", calls)
	}
	if r, ok := IsPermanent(got); !ok || r != "too_old" {
		t.Errorf("ack error = %v, want the permanent error of the failed part", got)
	}
}

func TestSplitConcurrent(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	parts := Split(func(error) { mu.Lock(); calls++; mu.Unlock() }, 100)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() { defer wg.Done(); p(nil) }()
	}
	wg.Wait()
	if calls != 1 {
		t.Fatalf("ack called %d times, want 1", calls)
	}
	if Split(nil, 2)[1] != nil || Split(func(error) {}, 0) != nil {
		t.Error("Split of nil ack or zero parts")
	}
}

func TestErrorClasses(t *testing.T) {
	base := errors.New("status 429")
	r := fmt.Errorf("push: %w", Retryable(base, 3*time.Second))
	if d, ok := RetryAfter(r); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v %v", d, ok)
	}
	if !errors.Is(r, base) {
		t.Error("Retryable does not unwrap")
	}
	if _, ok := IsPermanent(r); ok {
		t.Error("retryable error reported permanent")
	}
	if _, ok := RetryAfter(Retryable(base, 0)); ok {
		t.Error("RetryAfter without a delay")
	}
	if Permanent("x", nil) != nil || Retryable(nil, time.Second) != nil {
		t.Error("wrapping nil must give nil")
	}
}

func TestPartlyRejected(t *testing.T) {
	err := fmt.Errorf("push: %w", PartlyRejected("too_old", 2, errors.New("400")))
	if r, ok := IsPermanent(err); !ok || r != "too_old" {
		t.Errorf("IsPermanent = %q %v", r, ok)
	}
	if n := RejectedCount(err); n != 2 {
		t.Errorf("RejectedCount = %d, want 2", n)
	}
	if n := RejectedCount(Permanent("x", errors.New("y"))); n != 0 {
		t.Errorf("RejectedCount of a whole-request rejection = %d, want 0", n)
	}
	if PartlyRejected("x", 1, nil) != nil {
		t.Error("wrapping nil must give nil")
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{
		"INFO": LevelInfo, "Warning": LevelWarn, "err": LevelError, "E": LevelError, "CRITICAL": LevelFatal,
		"panic": LevelFatal, "30": LevelInfo, "50": LevelError, "dbg": LevelDebug, "TRACE": LevelTrace,
		"": LevelUnknown, "hello": LevelUnknown, "an-extremely-long-level": LevelUnknown,
	} {
		if got := ParseLevel(in); got != want {
			t.Errorf("ParseLevel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHexIDs(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"4bf92f3577b34da6a3ce929d0e0e4736", 32, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"4BF92F3577B34DA6A3CE929D0E0E4736", 32, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"4bf92f35-77b3-4da6-a3ce-929d0e0e4736", 32, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"00000000000000000000000000000000", 32, ""},
		{"4bf92f3577b34da6", 32, ""},
		{"00f067aa0ba902b7", 16, "00f067aa0ba902b7"},
		{"zzf067aa0ba902b7", 16, ""},
	}
	for _, tt := range tests {
		if got := NormalizeHexID(tt.in, tt.n); got != tt.want {
			t.Errorf("NormalizeHexID(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestNewStreamSortsLabels(t *testing.T) {
	s := NewStream(map[string]string{"pod": "p", "container": "c", "service": "s"})
	if s.Labels[0].Name != "container" || s.Labels[2].Name != "service" || s.Get("pod") != "p" || s.Get("x") != "" {
		t.Errorf("labels %v", s.Labels)
	}
}
