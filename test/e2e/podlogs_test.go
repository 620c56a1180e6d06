package e2e

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// criPart is the size the kubelet's runtime splits long lines at.
const criPart = 16 << 10

// podLog writes a container's log under a node's /var/log/pods the way the kubelet's
// runtime does: "<time> <stream> <P|F> <part>" lines, long lines in 16 KiB parts.
type podLog struct {
	t    *testing.T
	path string
	f    *os.File
}

func newPodLog(t *testing.T, path string) *podLog {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l := &podLog{t: t, path: path}
	l.reopen()
	t.Cleanup(func() { _ = l.f.Close() })
	return l
}

func (l *podLog) reopen() {
	l.t.Helper()
	if l.f != nil {
		_ = l.f.Close()
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		l.t.Fatal(err)
	}
	l.f = f
}

// part writes one line of the log: one write, as the runtime does.
func (l *podLog) part(stream, tag, msg string) {
	l.t.Helper()
	line := time.Now().UTC().Format(time.RFC3339Nano) + " " + stream + " " + tag + " " + msg + "\n"
	if _, err := l.f.WriteString(line); err != nil {
		l.t.Fatal(err)
	}
}

// line writes msg to stream, in parts when it is long; it returns the parts.
func (l *podLog) line(stream, msg string) {
	l.t.Helper()
	for len(msg) > criPart {
		l.part(stream, "P", msg[:criPart])
		msg = msg[criPart:]
	}
	l.part(stream, "F", msg)
}

// rotate renames the log to 0.log.<timestamp> and reopens 0.log, as the kubelet
// and its runtime do, after the runtime wrote line seq to the renamed file; it
// returns the rotated file.
func (l *podLog) rotate(n, seq int) string {
	l.t.Helper()
	rotated := fmt.Sprintf("%s.20261206-1144%02d", l.path, n)
	if err := os.Rename(l.path, rotated); err != nil {
		l.t.Fatal(err)
	}
	l.part("stdout", "F", fmt.Sprintf("seq=%d written to the renamed file before the runtime reopened", seq))
	l.reopen()
	return rotated
}

// gzipRotated compresses a rotated log and removes it, as the kubelet does with all
// but the newest.
func gzipRotated(t *testing.T, path string) {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(path + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// bigMsg is a line of n bytes that starts with its sequence number.
func bigMsg(seq, n int) string {
	head := fmt.Sprintf("seq=%d big ", seq)
	return head + strings.Repeat("x", n-len(head))
}

// TestPodLogsToLoki runs the agent as a node agent over CRI logs written the
// kubelet's way — stdout and stderr interleaved, 100 KiB lines split into 16 KiB
// parts, rotation by rename with the older rotated file gzipped — and stops it
// (SIGTERM) while a stdout line is only partly written, stderr lines after it
// already shipped. After the restart every line is in Loki exactly once, the long
// ones whole, with the stream, namespace, pod and container labels and the pod uid
// as structured metadata; and the two runs together sent exactly as many records
// as were written.
func TestPodLogsToLoki(t *testing.T) {
	loki := sharedLoki(t)
	dir := t.TempDir()
	namespace := fmt.Sprintf("e2e-pods-%d", time.Now().UnixNano()%1_000_000)
	uid := "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
	podDir := filepath.Join(dir, "pods", namespace+"_web-0_"+uid)
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`data_dir: %[1]s/data
server: {listen: "127.0.0.1:0", shutdown_timeout: 15s}
log: {level: info}
logs:
  sources:
    - name: pods
      path: %[1]s/pods/*/*/*.log
      format: cri
      path_metadata: kubernetes
      parser: {format: plain}
      multiline: {stack_traces: false}
exporters:
  loki:
    url: %[2]s
    batch: {max_bytes: 512KiB, max_wait: 200ms}
`, dir, loki.URL))
	start := time.Now().Add(-time.Minute)
	ctx := context.Background()
	sel := fmt.Sprintf(`{namespace=%q}`, namespace)

	log := newPodLog(t, filepath.Join(podDir, "app", "0.log"))
	sidecar := newPodLog(t, filepath.Join(podDir, "proxy", "0.log"))
	seq := 0
	var bigSeqs []int
	write := func(n int) {
		for range n {
			switch {
			case seq%100 == 50:
				log.line("stdout", bigMsg(seq, 100<<10))
				bigSeqs = append(bigSeqs, seq)
			case seq%5 == 0:
				log.line("stderr", fmt.Sprintf("seq=%d level=error something failed", seq))
			case seq%7 == 0:
				sidecar.line("stdout", fmt.Sprintf("seq=%d proxied GET /", seq))
			default:
				log.line("stdout", fmt.Sprintf("seq=%d served GET /orders", seq))
			}
			seq++
		}
	}
	write(1000)

	agent := startAgent(t, cfgPath)
	addr := waitListen(t, agent)
	if _, err := loki.WaitCount(ctx, sel, start, seq, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// A stdout line of which only three parts are written, then stderr lines.
	split := seq
	seq++
	big := bigMsg(split, 100<<10)
	for i := range 3 {
		log.part("stdout", "P", big[i*criPart:(i+1)*criPart])
	}
	for range 20 {
		log.line("stderr", fmt.Sprintf("seq=%d level=error while stdout is split", seq))
		seq++
	}
	if _, err := loki.WaitCount(ctx, sel, start, seq-1, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sent1 := waitSentStable(t, addr)
	if err := agent.stop(30 * time.Second); err != nil {
		t.Fatalf("agent exit: %v", err)
	}

	// The rest of the split line, while the agent is down; then rotation the
	// kubelet's way while the agent runs again.
	log.part("stdout", "F", big[3*criPart:])
	bigSeqs = append(bigSeqs, split)
	write(500)
	agent = startAgent(t, cfgPath)
	addr = waitListen(t, agent)
	var rotated []string
	for r := range 3 {
		write(300)
		if _, err := loki.WaitCount(ctx, sel, start, seq, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		rotated = append(rotated, log.rotate(r, seq))
		seq++
		if len(rotated) >= 2 {
			gzipRotated(t, rotated[len(rotated)-2])
		}
	}
	write(300)
	total := seq
	if _, err := loki.WaitCount(ctx, sel, start, total, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sent2 := waitSentStable(t, addr)

	entries, err := loki.Query(ctx, sel, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, e.Line)
	}
	if missing, dups := countSeq(t, lines, total); missing != 0 || dups != 0 {
		t.Fatalf("%d lines written: %d missing, %d duplicated in Loki", total, missing, dups)
	}
	if got := int(sent1 + sent2); got != total {
		t.Fatalf("the agent's two runs sent %d records for %d lines written: duplicates or losses", got, total)
	}

	bigs := map[int]bool{}
	for _, s := range bigSeqs {
		bigs[s] = true
	}
	for _, e := range entries {
		var s int
		if _, err := fmt.Sscanf(e.Line, "seq=%d", &s); err != nil {
			continue
		}
		wantStream := "stdout"
		if strings.Contains(e.Line, "level=error") {
			wantStream = "stderr"
		}
		wantContainer := "app"
		if strings.Contains(e.Line, "proxied") {
			wantContainer = "proxy"
		}
		if e.Labels["stream"] != wantStream || e.Labels["pod"] != "web-0" || e.Labels["container"] != wantContainer {
			t.Fatalf("seq %d: labels %v; want stream %s, pod web-0, container %s", s, e.Labels, wantStream, wantContainer)
		}
		if e.Metadata["pod_uid"] != uid {
			t.Fatalf("seq %d: structured metadata %v; want pod_uid %s", s, e.Metadata, uid)
		}
		if bigs[s] {
			if len(e.Line) != 100<<10 {
				t.Fatalf("seq %d: a 100 KiB line arrived as %d bytes", s, len(e.Line))
			}
			delete(bigs, s)
		}
	}
	if len(bigs) != 0 {
		t.Fatalf("100 KiB lines not found whole: %v", bigs)
	}
	if _, err := os.Stat(rotated[0] + ".gz"); err != nil {
		t.Fatalf("the kubelet-style gzip did not happen: %v", err)
	}
	t.Logf("%d lines (%d of 100 KiB, one split across a restart) through 3 kubelet rotations; records sent %0.f + %0.f", total, len(bigSeqs), sent1, sent2)
}

// waitSentStable returns the records the agent's Loki exporter sent, once that
// number stopped changing.
func waitSentStable(t *testing.T, addr string) float64 {
	t.Helper()
	last := -1.0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		v := metricValue(httpGet(t, "http://"+addr+"/metrics"), "outrider_exporter_sent_records_total", `exporter="loki"`)
		if v == last {
			return v
		}
		last = v
		time.Sleep(time.Second)
	}
	t.Fatalf("records sent still changing after 30s: %v", last)
	return 0
}
