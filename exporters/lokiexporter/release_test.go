package lokiexporter

import (
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/memtrim"
)

// TestReleaseDropsBuffers checks that the agent's memory release (memtrim.Release)
// makes a started exporter let go of its idle encoders and shared buffer, and that
// the next request still goes out whole.
func TestReleaseDropsBuffers(t *testing.T) {
	loki := newFakeLoki(t, nil).start()
	h := newHarness(t, testConfig(loki.srv.URL))
	a := exportertest.NewAcks()
	export(t, h.exp, batch(1, a, "one", "two"))
	if err := a.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
	h.exp.raw.mu.Lock()
	held := cap(h.exp.raw.buf)
	h.exp.raw.mu.Unlock()
	if held == 0 || len(h.exp.encoders) == 0 {
		t.Fatalf("nothing kept for reuse after a request (buffer %d bytes, %d encoders): the test proves nothing", held, len(h.exp.encoders))
	}
	if _, err := memtrim.Release(); err != nil {
		t.Fatal(err)
	}
	h.exp.raw.mu.Lock()
	held = cap(h.exp.raw.buf)
	h.exp.raw.mu.Unlock()
	if held != 0 || len(h.exp.encoders) != 0 {
		t.Errorf("after the release: buffer %d bytes, %d idle encoders; want none", held, len(h.exp.encoders))
	}
	export(t, h.exp, batch(2, a, "three"))
	if err := a.Wait(t, 2); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines(loki.delivered()), ","); got != "one,two,three" {
		t.Errorf("Loki received %s", got)
	}
}
