package sentryreceiver

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/inflight"
)

func deepJSON(depth int) string {
	return `{"event_id":"` + eventID + `","extra":{"v":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}`
}

// TestDepthLimit sends JSON nested past max_json_depth in every place something
// decodes it: each is refused with 400 naming the limit, before decoding; the same
// shapes within the limit are stored.
func TestDepthLimit(t *testing.T) {
	cfg := testConfig()
	q := &memQueue{}
	r := startReceiver(t, cfg, Settings{Queue: q})
	deep := cfg.MaxJSONDepth + 1
	header := `{"event_id":"` + eventID + `","sdk":{"x":` + strings.Repeat("[", deep) + strings.Repeat("]", deep) + `}}`
	storeHdr := map[string]string{"X-Sentry-Auth": authValue, "Content-Type": "application/json"}
	for _, tc := range []struct {
		name   string
		path   string
		hdr    map[string]string
		body   []byte
		status int
	}{
		{"event item", "/api/1/envelope/", nil, envelope(`{}`, "event", deepJSON(100_000)), 400},
		{"event at the limit", "/api/1/envelope/", nil, envelope(`{}`, "event", deepJSON(cfg.MaxJSONDepth-2)), 200},
		{"event one past", "/api/1/envelope/", nil, envelope(`{}`, "event", deepJSON(cfg.MaxJSONDepth-1)), 400},
		{"transaction item", "/api/1/envelope/", nil, envelope(`{}`, "transaction", deepJSON(5000)), 400},
		{"unknown JSON item", "/api/1/envelope/", nil, envelope(`{}`, "some_future_type", deepJSON(5000)), 400},
		{"envelope header", "/api/1/envelope/", nil, envelope(header, "event", `{"message":"x"}`), 400},
		{"item header", "/api/1/envelope/", nil, []byte("{}\n" + `{"type":"event","x":` + strings.Repeat("[", deep) + strings.Repeat("]", deep) + "}\n{}\n"), 400},
		{"store", "/api/1/store/", storeHdr, []byte(deepJSON(100_000)), 400},
		{"attachment is not decoded", "/api/1/envelope/", nil, envelope(`{}`, "attachment", strings.Repeat("[", 5000)), 200},
		{"binary that is not JSON", "/api/1/envelope/", nil, envelope(`{}`, "replay_recording", "{"+strings.Repeat("[", 5000)+"\x00"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, r, tc.path, tc.hdr, tc.body)
			if resp.status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.status, resp.detail, tc.status)
			}
			if tc.status == 400 && !strings.Contains(resp.detail, "receivers.sentry.max_json_depth") {
				t.Errorf("detail %q does not name receivers.sentry.max_json_depth", resp.detail)
			}
		})
	}
	if got := counter(r.m.requests.WithLabelValues(endpointEnvelope, resultTooDeep)); got != 6 {
		t.Errorf("too_deep envelope requests = %v, want 6", got)
	}
}

// TestInflightLimit holds the whole inflight budget: requests wait, then are told to
// come back with 429, Retry-After and X-Sentry-Rate-Limits; a request larger than the
// budget could ever hold is refused as too large.
func TestInflightLimit(t *testing.T) {
	hold, err := startNoWait(t, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	res, ok := hold.inflight.TryAcquire(hold.inflight.Max())
	if !ok {
		t.Fatal("cannot take the budget")
	}
	resp := post(t, hold, "/api/1/envelope/", nil, eventEnvelope("waits"))
	if resp.status != 429 || resp.header.Get("Retry-After") == "" || !strings.Contains(resp.header.Get("X-Sentry-Rate-Limits"), "busy") ||
		!strings.Contains(resp.detail, "receivers.sentry.max_inflight_bytes") {
		t.Fatalf("with the budget taken: %d %v %q", resp.status, resp.header, resp.detail)
	}
	res.Release()
	if resp := post(t, hold, "/api/1/envelope/", nil, eventEnvelope("fits")); resp.status != 200 {
		t.Fatalf("after release: %d %s", resp.status, resp.detail)
	}
	// Many tiny values: 1 MiB of [0,0,...] decodes to far more than its size.
	tiny := `{"extra":{"v":[` + strings.Repeat("0,", 400_000) + `0]}}`
	if resp := post(t, hold, "/api/1/envelope/", nil, envelope(`{}`, "event", tiny)); resp.status != 413 || !strings.Contains(resp.detail, "max_inflight_bytes") {
		t.Fatalf("a request that decodes past the budget: %d %s", resp.status, resp.detail)
	}
}

// startNoWait starts a receiver whose inflight limiter refuses at once rather than
// waiting.
func startNoWait(t *testing.T, cfg Config) (*Receiver, error) {
	r := New(cfg, Settings{Queue: &memQueue{}})
	r.inflight = inflight.New(int64(cfg.MaxInflightBytes), 0)
	if err := r.Start(context.Background()); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return r, nil
}

// TestConnectionLimit opens max_connections idle connections: the next one is closed
// at once and counted; closing one lets a client in again.
func TestConnectionLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnections = 3
	r := startReceiver(t, cfg, Settings{Queue: &memQueue{}})
	var conns []net.Conn
	for range cfg.MaxConnections {
		c, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for counter(r.m.connsRefused) == 0 && time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", r.Addr().String()); err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("a connection past the limit was served")
			}
			c.Close()
		}
	}
	if counter(r.m.connsRefused) == 0 {
		t.Fatal("no connection was refused past max_connections")
	}
	for _, c := range conns {
		c.Close()
	}
	ok := false
	for !ok && time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.Addr().String()+"/api/1/envelope/", bytes.NewReader(eventEnvelope("after")))
		req.Header.Set("X-Sentry-Auth", authValue)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			ok = resp.StatusCode == 200
		}
	}
	if !ok {
		t.Fatal("no request served after the idle connections closed")
	}
}
