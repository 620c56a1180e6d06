package tail

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

// kubeletPart is the size the kubelet's runtime (containerd, CRI-O) splits long
// lines at.
const kubeletPart = 16 << 10

// criWriter writes a container's log the way the kubelet's runtime does: one
// "<time> <stream> <P|F> <part>" line per write, long lines split into 16 KiB parts,
// and rotation by rename, new file, reopen.
type criWriter struct {
	t      testing.TB
	format string // FormatCRI, or FormatDocker for Docker's json-file
	path   string
	f      *os.File
	now    time.Time
	sent   [numStreams][]string
}

func newCRIWriter(t testing.TB, path string) *criWriter {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	w := &criWriter{t: t, format: FormatCRI, path: path, now: time.Now().UTC().Truncate(time.Second)}
	w.reopen()
	t.Cleanup(func() { _ = w.f.Close() })
	return w
}

func (w *criWriter) reopen() {
	w.t.Helper()
	if w.f != nil {
		_ = w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

// writeParts writes the given parts of one line of stream st, all but the last
// tagged P.
func (w *criWriter) writeParts(st int, parts ...string) {
	w.t.Helper()
	for i, p := range parts {
		tag := "P"
		if i == len(parts)-1 {
			tag = "F"
		}
		w.writeTagged(st, tag, p)
	}
}

// writeTagged writes one line of the log.
func (w *criWriter) writeTagged(st int, tag, part string) {
	w.t.Helper()
	w.now = w.now.Add(time.Microsecond)
	line := fmt.Sprintf("%s %s %s %s\n", w.now.Format(time.RFC3339Nano), streamNames[st], tag, part)
	if w.format == FormatDocker {
		if tag == "F" {
			part += "\n"
		}
		b, err := json.Marshal(map[string]string{"log": part, "stream": streamNames[st], "time": w.now.Format(time.RFC3339Nano)})
		if err != nil {
			w.t.Fatal(err)
		}
		line = string(b) + "\n"
	}
	if _, err := w.f.WriteString(line); err != nil {
		w.t.Fatal(err)
	}
}

// line writes msg to stream st, split as the runtime splits it.
func (w *criWriter) line(st int, msg string) {
	w.t.Helper()
	var parts []string
	for len(msg) > kubeletPart {
		parts = append(parts, msg[:kubeletPart])
		msg = msg[kubeletPart:]
	}
	w.writeParts(st, append(parts, msg)...)
	w.sent[st] = append(w.sent[st], strings.Join(append(parts, msg), ""))
}

// rotate renames the log to <name>.<timestamp> as the kubelet does, lets the
// runtime write a few more lines to the renamed file (it writes there until it
// reopens the path), and reopens. It returns the rotated file's path.
func (w *criWriter) rotate(afterRename func()) string {
	w.t.Helper()
	rotated := w.path + "." + w.now.Add(time.Duration(len(w.sent[1])+len(w.sent[2]))*time.Second).Format("20060102-150405")
	if err := os.Rename(w.path, rotated); err != nil {
		w.t.Fatal(err)
	}
	afterRename()
	w.reopen()
	return rotated
}

// gzipAway compresses path to path.gz and removes it, as the kubelet does with
// rotated logs but the newest.
func gzipAway(t testing.TB, path string) {
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

// bigLine is a line of n bytes that says which one it is.
func bigLine(tag string, n int) string {
	head := tag + " "
	return head + strings.Repeat(string(rune('a'+len(tag)%26)), n-len(head))
}

// byStream returns the lines of recs per stream, each stream in the order of the
// records' times (the order Loki shows them in), and fails on records without the
// stream label.
func byStream(t testing.TB, recs []pipeline.Record) [numStreams][]string {
	t.Helper()
	var idx [numStreams][]int
	for i, r := range recs {
		switch r.Stream.Get("stream") {
		case "stdout":
			idx[streamStdout] = append(idx[streamStdout], i)
		case "stderr":
			idx[streamStderr] = append(idx[streamStderr], i)
		default:
			t.Fatalf("record without a stream label: %.100q", r.Line)
		}
	}
	var out [numStreams][]string
	for st := range idx {
		sort.SliceStable(idx[st], func(a, b int) bool { return recs[idx[st][a]].Time.Before(recs[idx[st][b]].Time) })
		for _, i := range idx[st] {
			out[st] = append(out[st], recs[i].Line)
		}
	}
	return out
}

func equalStreams(t testing.TB, got, want [numStreams][]string) {
	t.Helper()
	for st := streamStdout; st < numStreams; st++ {
		if len(got[st]) != len(want[st]) {
			t.Fatalf("%s: got %d lines, want %d", streamNames[st], len(got[st]), len(want[st]))
		}
		for i := range got[st] {
			if got[st][i] != want[st][i] {
				t.Fatalf("%s line %d: got %.60q… (%d bytes), want %.60q… (%d bytes)", streamNames[st], i, got[st][i], len(got[st][i]), want[st][i], len(want[st][i]))
			}
		}
	}
}

// TestKubeletCRIFilesWithRotation writes a container's log as the kubelet's runtime
// does — stdout and stderr interleaved, 100 KiB lines split into 16 KiB parts — and
// rotates it the kubelet's way while writing: 0.log renamed to 0.log.<timestamp>,
// a few lines still written to the renamed file, a new 0.log, and the older rotated
// file gzipped and removed. Every line arrives exactly once, whole, with its
// stream, the runtime's time and the pod's labels.
func TestKubeletCRIFilesWithRotation(t *testing.T) {
	root := t.TempDir()
	podDir := filepath.Join(root, "shop_checkout-7d9f8_3f2b8c1e-5a4d-4b7e-9c1f-2d3e4f5a6b7c")
	w := newCRIWriter(t, filepath.Join(podDir, "app", "0.log"))
	cfg := testConfig(root)
	cfg.Path = filepath.Join(root, "*", "*", "*.log")
	cfg.Format = FormatCRI
	cfg.PathMetadata = PathMetadataKubernetes
	cfg.BatchMaxLines = 50
	noStackTraces(&cfg)
	sink := newSink(true)
	h := start(t, cfg, sink, filepath.Join(root, "positions.json"), quickRelease)

	// The kubelet rotates a file once it is over containerLogMaxSize, looking every
	// 10 s: the agent has long found each new 0.log before it is rotated in turn.
	eventually(t, "0.log followed", func() bool { return value(h.src.m.filesOpen) == 1 })
	var rotated []string
	n := 0
	write := func(count int) {
		for range count {
			n++
			switch {
			case n%97 == 0:
				w.line(streamStdout, bigLine(fmt.Sprintf("stdout-big-%05d", n), 100<<10))
			case n%89 == 0:
				w.line(streamStderr, bigLine(fmt.Sprintf("stderr-big-%05d", n), 40<<10))
			case n%3 == 0:
				w.line(streamStderr, fmt.Sprintf("stderr %05d something went wrong", n))
			default:
				w.line(streamStdout, fmt.Sprintf("stdout %05d request served", n))
			}
		}
	}
	for round := range 4 {
		write(400)
		if round == 3 {
			break
		}
		rotated = append(rotated, w.rotate(func() { write(5) }))
		eventually(t, "the new 0.log followed", func() bool { return value(h.src.m.rotations) >= float64(len(rotated)) })
		if len(rotated) >= 2 {
			// The kubelet compresses every rotated file but the newest.
			gzipAway(t, rotated[len(rotated)-2])
		}
		write(100)
	}
	want := w.sent
	total := len(want[streamStdout]) + len(want[streamStderr])
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.records()) < total && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // anything sent twice would come now
	recs := sink.records()
	equalStreams(t, byStream(t, recs), want)
	for _, r := range recs {
		if r.Stream.Get("namespace") != "shop" || r.Stream.Get("pod") != "checkout-7d9f8" || r.Stream.Get("container") != "app" {
			t.Fatalf("labels %v; want the pod's from the path", r.Stream.Labels)
		}
	}
	if got := value(h.src.m.rotations); got < 3 {
		t.Errorf("rotations = %v; want 3", got)
	}
	if got := value(h.src.m.malformed); got != 0 {
		t.Errorf("malformed lines = %v", got)
	}
	if got := value(h.src.m.lostDeleted) + value(h.src.m.lostTruncated); got != 0 {
		t.Errorf("lost bytes = %v", got)
	}
}

// TestCRIRestartInsideASplitLine stops the source while a stdout line is only
// partly written (CRI, and Docker's json-file) (its P parts read, stderr lines after them shipped), and starts
// it again: the line arrives once and whole, and no stderr line is sent twice.
func TestCRIRestartInsideASplitLine(t *testing.T) {
	for _, format := range []string{FormatCRI, FormatDocker} {
		t.Run(format, func(t *testing.T) { testRestartInsideASplitLine(t, format) })
	}
}

func testRestartInsideASplitLine(t *testing.T, format string) {
	root := t.TempDir()
	path := filepath.Join(root, "app", "0.log")
	w := newCRIWriter(t, path)
	w.format = format
	cfg := testConfig(root)
	cfg.Path = filepath.Join(root, "*", "*.log")
	cfg.Format = FormatAuto
	cfg.PathMetadata = PathMetadataKubernetesContainer
	noStackTraces(&cfg)
	positions := filepath.Join(root, "positions.json")

	w.line(streamStdout, "before")
	big := bigLine("split across the restart", 100<<10)
	parts := []string{big[:kubeletPart], big[kubeletPart : 2*kubeletPart], big[2*kubeletPart : 3*kubeletPart]}
	for _, p := range parts {
		w.writeTagged(streamStdout, "P", p)
	}
	for i := range 20 {
		w.line(streamStderr, fmt.Sprintf("stderr %02d while stdout is split", i))
	}

	first := newSink(true)
	h := start(t, cfg, first, positions)
	eventually(t, "before and the stderr lines", func() bool { return len(first.records()) == 21 })
	h.stop()
	if got := value(h.src.m.partsJoined); got != 3 {
		t.Fatalf("parts read = %v; want 3", got)
	}
	pf := readPositions(t, positions)
	if len(pf.Files) != 1 || pf.Files[0].Shipped["stderr"] <= pf.Files[0].Offset {
		t.Fatalf("positions %+v: want the offset before the split line and stderr shipped past it", pf.Files)
	}

	w.writeParts(streamStdout, big[3*kubeletPart:])
	w.line(streamStderr, "stderr after")
	w.line(streamStdout, "after")
	second := newSink(true)
	h2 := start(t, cfg, second, positions)
	eventually(t, "the split line and the lines after it", func() bool { return len(second.records()) >= 3 })
	time.Sleep(100 * time.Millisecond)
	h2.stop()

	got := byStream(t, append(first.records(), second.records()...))
	want := w.sent
	want[streamStdout] = []string{"before", big, "after"}
	equalStreams(t, got, want)
	for _, r := range second.records() {
		if r.Stream.Get("container") != "app" {
			t.Fatalf("container label %q; want app from the path", r.Stream.Get("container"))
		}
	}
}

// TestRuntimeRotationInsideASplitLine: the runtime reopened the path in the middle
// of a long line, so the renamed file ends in a part. Once the renamed file is
// quiet, that part is shipped as a line of its own; the rest arrives from the new
// file. Nothing is lost.
func TestRuntimeRotationInsideASplitLine(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "app", "0.log")
	w := newCRIWriter(t, path)
	cfg := testConfig(root)
	cfg.Path = filepath.Join(root, "*", "*.log")
	cfg.Format = FormatCRI
	noStackTraces(&cfg)
	sink := newSink(true)
	h := start(t, cfg, sink, "", quickRelease)
	eventually(t, "0.log followed", func() bool { return value(h.src.m.filesOpen) == 1 })
	w.line(streamStdout, "before")
	w.writeTagged(streamStdout, "P", "first half ")
	w.rotate(func() {})
	w.writeTagged(streamStdout, "F", "second half")
	w.line(streamStderr, "after")
	waitLines(t, sink, 4)
	time.Sleep(100 * time.Millisecond)
	got := byStream(t, sink.records())
	equalStreams(t, got, [numStreams][]string{
		streamStdout: {"before", "first half ", "second half"},
		streamStderr: {"after"},
	})
	eventually(t, "the renamed file released", func() bool { return value(h.src.m.filesOpen) == 1 })
}

func TestRuntimeFormatsSkipCompressedFiles(t *testing.T) {
	for _, tt := range []struct {
		format string
		want   bool
	}{{FormatRaw, false}, {FormatCRI, true}, {FormatDocker, true}, {FormatAuto, true}} {
		cfg := Config{Path: "/var/log/pods/*/*/*", Format: tt.format}
		s, err := New(cfg, Settings{Sink: newSink(true)})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.excluded("/var/log/pods/a_b_c/app/0.log.20261206-114401.gz"); got != tt.want {
			t.Errorf("format %s: excluded .gz = %v; want %v", tt.format, got, tt.want)
		}
		if s.excluded("/var/log/pods/a_b_c/app/0.log.20261206-114401") {
			t.Errorf("format %s: the renamed file excluded", tt.format)
		}
	}
}
