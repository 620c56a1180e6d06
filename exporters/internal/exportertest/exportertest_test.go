package exportertest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAcksConcurrentWaiters(t *testing.T) {
	a := NewAcks()
	boom := errors.New("boom")
	t.Run("waiters", func(t *testing.T) {
		for id := range 3 {
			t.Run(fmt.Sprint(id), func(t *testing.T) {
				t.Parallel()
				want := error(nil)
				if id == 1 {
					want = boom
				}
				if err := a.Wait(t, id); err != want {
					t.Errorf("batch %d acknowledged with %v, want %v", id, err, want)
				}
			})
		}
		// The parallel waiters run once this function returns; acknowledge meanwhile.
		go func() {
			for id := range 3 {
				var err error
				if id == 1 {
					err = boom
				}
				a.Func(id)(err)
			}
		}()
	})
	if a.Count() != 3 || len(a.Get(1)) != 1 || a.Get(7) != nil {
		t.Errorf("count %d, batch 1 %v, batch 7 %v", a.Count(), a.Get(1), a.Get(7))
	}
}

func TestMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"exporter"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("a").Add(2)
	c.WithLabelValues("b").Add(5)
	g.Set(3)
	h.Observe(1)
	h.Observe(2)
	tests := []struct {
		name   string
		family string
		want   map[string]string
		value  float64
	}{
		{"counter by label", "c_total", map[string]string{"exporter": "b"}, 5},
		{"no such label value", "c_total", map[string]string{"exporter": "z"}, 0},
		{"gauge", "g", nil, 3},
		{"histogram count", "h", nil, 2},
		{"no such family", "nope", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := Metric(t, reg, tt.family, tt.want); v != tt.value {
				t.Errorf("Metric = %v, want %v", v, tt.value)
			}
		})
	}
}

func TestLogBuffer(t *testing.T) {
	var l LogBuffer
	if l.Lines() != nil {
		t.Fatalf("empty buffer has lines %q", l.Lines())
	}
	l.Logger().Info("one", "k", 1)
	l.Logger().Warn("two")
	if lines := l.Lines(); len(lines) != 2 {
		t.Errorf("lines %q, want 2", lines)
	}
}

// TestSentBody sends requests over a real connection: one whose client goes away
// before the body it announced is whole, one whose whole body is 5 bytes.
func TestSentBody(t *testing.T) {
	type seen struct {
		n         int
		abandoned bool
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := NewSentBody(r.Body)
		b, _ := io.ReadAll(in)
		got <- seen{len(b), in.Abandoned()}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, req string
		want      seen
	}{
		{"cut short", "Content-Length: 100\r\n\r\nhello", seen{5, true}},
		{"whole", "Content-Length: 5\r\n\r\nhello", seen{5, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\n"+tc.req); err != nil {
				t.Fatal(err)
			}
			if tc.want.abandoned {
				// Close the write side: the server reads EOF 95 bytes early.
				if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case s := <-got:
				if s != tc.want {
					t.Errorf("read %d bytes, abandoned %v; want %d, %v", s.n, s.abandoned, tc.want.n, tc.want.abandoned)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the handler never finished reading")
			}
		})
	}
}
