package redact

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegistryRedact(t *testing.T) {
	const v = `db-p@ss/"w0rd"`
	b64 := base64.StdEncoding.EncodeToString([]byte(v))
	basic := base64.StdEncoding.EncodeToString([]byte("app:" + v))
	tests := []struct {
		name, in, want string
	}{
		{"plain", "connecting with " + v + " now", "connecting with " + Marker + " now"},
		{"JSON line", `{"msg":"login","password":"db-p@ss/\"w0rd\""}`, `{"msg":"login","password":"` + Marker + `"}`},
		{"JSON line, PHP", `{"password":"db-p@ss\/\"w0rd\""}`, `{"password":"` + Marker + `"}`},
		{"query string", "GET /login?user=app&pass=" + url.QueryEscape(v) + "&x=1", "GET /login?user=app&pass=" + Marker + "&x=1"},
		{"base64 (the padding, which says nothing, stays)", "token=" + b64 + ";", "token=" + Marker + "=;"},
		{"basic auth header", "Authorization: Basic " + basic, "Authorization: Basic " + basic[:6] + Marker},
		{"hex dump", fmt.Sprintf("key=%x end", v), "key=" + Marker + " end"},
		{"two values", v + " and secret-two", Marker + " and " + Marker},
		{"nothing", "a perfectly ordinary line", "a perfectly ordinary line"},
	}
	r := NewRegistry(nil)
	r.Set("vault:secret/db", []string{v, "secret-two"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := r.Redact(tt.in)
			if got != tt.want || ok != (tt.in != tt.want) {
				t.Errorf("Redact(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestRegistryOwners(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	r := NewRegistry(m)
	r.SetRetention(0, 0) // TestRetention covers values kept after they are dropped
	redacted := func(s string) bool { _, ok := r.Redact(s); return ok }

	if !r.Empty() || r.Len() != 0 || redacted("anything-at-all") {
		t.Fatal("a new registry is not empty")
	}
	r.Set("a", []string{"value-one", "shared-value", "tiny", ""})
	if got := metricValue(t, m.short); got != 2 {
		t.Errorf("ignored values = %v, want 2", got)
	}
	r.Set("b", []string{"shared-value", "value-two"})
	if !redacted("value-one") || !redacted("value-two") || !redacted("shared-value") || redacted("tiny tiny") {
		t.Fatal("registered values are not all redacted")
	}
	if got := metricValue(t, m.values); got != 3 {
		t.Errorf("values gauge = %v, want 3", got)
	}
	if got := metricValue(t, m.patterns); got != float64(r.Len()) || r.Len() < 3 {
		t.Errorf("patterns gauge = %v, Len = %d", got, r.Len())
	}

	// Setting the same values again changes nothing, not even the ignored count.
	before := r.cur.Load()
	r.Set("a", []string{"shared-value", "tiny", "value-one", "value-one", ""})
	if r.cur.Load() != before {
		t.Error("setting the same values rebuilt the matcher")
	}
	if got := metricValue(t, m.short); got != 2 {
		t.Errorf("ignored values = %v after an unchanged Set, want 2", got)
	}

	// Rotation: the previous value goes, the new one comes.
	r.Set("a", []string{"value-one-rotated", "shared-value"})
	if redacted("value-one!") || !redacted("value-one-rotated") {
		t.Error("Set did not replace the owner's values")
	}
	r.Remove("b")
	if redacted("value-two") || !redacted("shared-value") {
		t.Error("Remove of b dropped a's value or kept b's own")
	}
	r.Remove("b")
	r.Set("a", nil)
	if !r.Empty() || r.Len() != 0 || redacted("shared-value") {
		t.Error("registry not empty after every owner is gone")
	}
	if got := metricValue(t, m.values); got != 0 {
		t.Errorf("values gauge = %v, want 0", got)
	}
	r.Set("c", []string{"short"})
	r.Set("c", []string{"short"})
	if !r.Empty() {
		t.Error("an owner with only short values made the registry non-empty")
	}
	if got := metricValue(t, m.short); got != 3 {
		t.Errorf("ignored values = %v after setting the same short value twice, want 3", got)
	}
	r.Set("c", []string{"short", "long-enough"})
	if got := metricValue(t, m.short); got != 4 || !redacted("long-enough") {
		t.Errorf("ignored values = %v, want 4, and long-enough registered", got)
	}
	r.Remove("c")
	if !r.Empty() {
		t.Error("registry not empty after removing c")
	}
}

func TestRedactDoesNotAllocate(t *testing.T) {
	r := NewRegistry(nil)
	line := `{"time":"2026-11-21T10:00:00.000210Z","level":"info","msg":"GET /api/orders 200","trace_id":"a5e68a192c882910436c7750dd012bb3","span_id":"9a7535dac8cea54d","request_id":"req-0000001","latency_ms":16.5}`
	check := func(name string) {
		t.Helper()
		if n := testing.AllocsPerRun(100, func() {
			if got, ok := r.Redact(line); ok || got != line {
				t.Fatalf("%s: line changed", name)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per line without a secret", name, n)
		}
	}
	check("empty")
	vals := make([]string, 100)
	for i := range vals {
		vals[i] = fmt.Sprintf("secret-%03d-value", i)
	}
	r.Set("x", vals)
	check("100 values")
}

// TestRegistryConcurrent redacts while values change; run with -race.
func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry(nil)
	r.Set("stable", []string{"stable-secret"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, ok := r.Redact("x stable-secret y")
				if !ok || got != "x "+Marker+" y" {
					t.Errorf("stable value not redacted: %q", got)
					return
				}
			}
		})
	}
	for i := range 200 {
		r.Set(fmt.Sprintf("owner-%d", i%5), []string{fmt.Sprintf("rotating-%d", i)})
		if i%7 == 0 {
			r.Remove(fmt.Sprintf("owner-%d", i%3))
		}
	}
	close(stop)
	wg.Wait()
}

// TestRetention: values dropped by a rotation or a Remove stay scrubbed for the
// retention, however many rotations follow, up to the count bound; then they go.
func TestRetention(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	r := NewRegistry(m)
	r.now = func() time.Time { return now }
	r.SetRetention(time.Hour, 5)
	redacted := func(s string) bool { _, ok := r.Redact(s); return ok }

	// Three quick rotations: the values two and three rotations old stay.
	for i := range 4 {
		r.Set("database/creds/app", []string{fmt.Sprintf("password-v%d", i)})
		now = now.Add(time.Minute)
	}
	for i := range 4 {
		if !redacted(fmt.Sprintf("backlog: password-v%d", i)) {
			t.Errorf("password-v%d is not scrubbed %d rotations later", i, 3-i)
		}
	}
	if got := metricValue(t, m.retained); got != 3 {
		t.Errorf("retained gauge = %v, want 3", got)
	}
	r.Remove("database/creds/app")
	if !redacted("password-v3") {
		t.Error("a removed value is not retained")
	}
	// Registered again while retained: held by its owner, not retained.
	r.Set("other", []string{"password-v3"})
	if got := metricValue(t, m.retained); got != 3 {
		t.Errorf("retained gauge = %v after password-v3 came back, want 3", got)
	}

	// The count bound drops the oldest first.
	for i := 4; i < 8; i++ {
		r.Set("database/creds/app", []string{fmt.Sprintf("password-v%d", i)})
		now = now.Add(time.Minute)
	}
	r.Set("database/creds/app", []string{"password-v8"})
	if redacted("password-v0") || redacted("password-v1") || !redacted("password-v2") || !redacted("password-v7") {
		t.Error("the count bound did not drop exactly the oldest values")
	}
	if got := metricValue(t, m.retainedDropped); got != 2 {
		t.Errorf("dropped counter = %v, want 2", got)
	}

	// Time: retention ends an hour after each drop, whether or not anything changes.
	now = now.Add(59 * time.Minute)
	r.Expire()
	if !redacted("password-v7") {
		t.Error("password-v7 dropped before its hour")
	}
	now = now.Add(10 * time.Minute)
	r.Set("other", []string{"password-v3"}) // unchanged: still expires
	for i := range 8 {
		if i != 3 && redacted(fmt.Sprintf("password-v%d", i)) {
			t.Errorf("password-v%d still scrubbed after its retention", i)
		}
	}
	if !redacted("password-v3") || !redacted("password-v8") {
		t.Error("held values were dropped")
	}

	// Shortening the retention applies to what is retained already.
	r.Set("database/creds/app", []string{"password-v9"})
	r.SetRetention(30*time.Second, 5)
	if !redacted("password-v8") {
		t.Error("password-v8 dropped at once by a shorter retention")
	}
	now = now.Add(31 * time.Second)
	r.Expire()
	if redacted("password-v8") {
		t.Error("password-v8 kept past the shortened retention")
	}
}
