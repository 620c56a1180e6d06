package tail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestParseRFC3339(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC, or "" for a refusal
	}{
		{"2026-12-06T11:44:01.123456789Z", "2026-12-06T11:44:01.123456789Z"},
		{"2026-12-06T11:44:01Z", "2026-12-06T11:44:01Z"},
		{"2026-12-06T11:44:01.5Z", "2026-12-06T11:44:01.5Z"},
		{"2026-12-06T12:44:01.000000001+01:00", "2026-12-06T11:44:01.000000001Z"},
		{"2026-12-06T06:14:01-05:30", "2026-12-06T11:44:01Z"},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
		{"0000-02-29T23:59:59.999999999Z", "0000-02-29T23:59:59.999999999Z"},
		{"0000-01-01T00:00:00+00:01", "-0001-12-31T23:59:00Z"},
		{"9999-12-31T23:59:59-23:59", "10000-01-01T23:58:59Z"},
		{"1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.5Z"},
		{"2026-02-29T00:00:00Z", ""},
		{"2026-13-06T11:44:01Z", ""},
		{"2026-12-06T24:00:00Z", ""},
		{"2026-12-06T11:60:00Z", ""},
		{"2026-12-06T11:44:60Z", ""},
		{"2026-12-06 11:44:01Z", ""},
		{"2026-12-06T11:44:01", ""},
		{"2026-12-06T11:44:01.Z", ""},
		{"2026-12-06T11:44:01.1234567891Z", ""},
		{"2026-12-06T11:44:01+0100", ""},
		{"2026-12-06T11:44:01Zx", ""},
		{"2026-12-06t11:44:01Z", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRFC3339([]byte(tt.in))
			if tt.want == "" {
				if ok {
					t.Fatalf("accepted: %v", got)
				}
				return
			}
			if !ok {
				t.Fatal("refused")
			}
			if s := got.UTC().Format(time.RFC3339Nano); s != tt.want {
				t.Fatalf("got %s, want %s", s, tt.want)
			}
			ref, err := time.Parse(time.RFC3339Nano, tt.in)
			if err != nil || !ref.Equal(got) {
				t.Fatalf("time.Parse says %v, %v", ref, err)
			}
		})
	}
}

// entryCase is a line of a runtime format and what it should parse to.
type entryCase struct {
	name, in string
	ok       bool
	stream   int
	partial  bool
	msg      string
}

func runEntryCases(t *testing.T, tests []entryCase, parse func([]byte) (entry, bool)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parse([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("ok = %v; want %v", ok, tt.ok)
			}
			if ok && (e.stream != tt.stream || e.partial != tt.partial || string(e.msg) != tt.msg) {
				t.Fatalf("got stream %d partial %v msg %q; want %d %v %q", e.stream, e.partial, e.msg, tt.stream, tt.partial, tt.msg)
			}
		})
	}
}

func TestParseCRI(t *testing.T) {
	tests := []entryCase{
		{"full stdout", "2026-12-06T11:44:01.123456789Z stdout F hello world", true, streamStdout, false, "hello world"},
		{"partial stderr", "2026-12-06T11:44:01.123456789Z stderr P part one ", true, streamStderr, true, "part one "},
		{"empty message", "2026-12-06T11:44:01.123456789Z stdout F ", true, streamStdout, false, ""},
		{"empty message, no space", "2026-12-06T11:44:01.123456789Z stdout F", true, streamStdout, false, ""},
		{"tag list", "2026-12-06T11:44:01.123456789Z stdout P:x:y msg", true, streamStdout, true, "msg"},
		{"message with spaces and CR", "2026-12-06T11:44:01+01:00 stderr F  a  b\r", true, streamStderr, false, " a  b\r"},
		{"bad stream", "2026-12-06T11:44:01.123456789Z stdin F x", false, 0, false, ""},
		{"bad tag", "2026-12-06T11:44:01.123456789Z stdout X x", false, 0, false, ""},
		{"tag glued to message", "2026-12-06T11:44:01.123456789Z stdout Fx", false, 0, false, ""},
		{"bad time", "2026-12-06 stdout F x", false, 0, false, ""},
		{"plain text", "hello world", false, 0, false, ""},
		{"no space", "2026-12-06T11:44:01.123456789Z", false, 0, false, ""},
	}
	runEntryCases(t, tests, parseCRI)
}

func TestParseDocker(t *testing.T) {
	tests := []entryCase{
		{"full", `{"log":"hello world\n","stream":"stdout","time":"2026-12-06T11:44:01.123456789Z"}`, true, streamStdout, false, "hello world"},
		{"partial", `{"log":"part","stream":"stderr","time":"2026-12-06T11:44:01.123456789Z"}`, true, streamStderr, true, "part"},
		{"CRLF", `{"log":"dos\r\n","stream":"stdout","time":"2026-12-06T11:44:01Z"}`, true, streamStdout, false, "dos"},
		{"escapes", `{"log":"a\"b\\c\/d\te\u00e9\ud83d\ude00\u003c\n","stream":"stdout","time":"2026-12-06T11:44:01Z"}`, true, streamStdout, false, "a\"b\\c/d\teé😀<"},
		{"lone surrogate", `{"log":"x\ud800y\n","stream":"stdout","time":"2026-12-06T11:44:01Z"}`, true, streamStdout, false, "x\uFFFDy"},
		{"other order and attrs", `{"stream":"stderr","attrs":{"tag":"a"},"time":"2026-12-06T11:44:01Z","log":"x\n"}`, true, streamStderr, false, "x"},
		{"spaces", `{ "log": "x\n", "stream": "stdout", "time": "2026-12-06T11:44:01Z" }`, true, streamStdout, false, "x"},
		{"no log", `{"stream":"stdout","time":"2026-12-06T11:44:01Z"}`, false, 0, false, ""},
		{"bad stream", `{"log":"x\n","stream":"stdin","time":"2026-12-06T11:44:01Z"}`, false, 0, false, ""},
		{"bad time", `{"log":"x\n","stream":"stdout","time":"yesterday"}`, false, 0, false, ""},
		{"cut", `{"log":"x\n","stream":"stdout","ti`, false, 0, false, ""},
		{"app json", `{"level":"info","msg":"hi"}`, false, 0, false, ""},
		{"text", `hello`, false, 0, false, ""},
	}
	runEntryCases(t, tests, func(b []byte) (entry, bool) {
		e, _, ok := parseDocker(b, nil)
		return e, ok
	})
}

func TestDetectKind(t *testing.T) {
	tests := []struct {
		line string
		want formatKind
	}{
		{"2026-12-06T11:44:01.123456789Z stdout F hello", kindCRI},
		{`{"log":"hello\n","stream":"stdout","time":"2026-12-06T11:44:01Z"}`, kindDocker},
		{`{"level":"info","msg":"hi"}`, kindRaw},
		{"2026-12-06T11:44:01Z INFO started", kindRaw},
	}
	for _, tt := range tests {
		if got := detectKind([]byte(tt.line)); got != tt.want {
			t.Errorf("detectKind(%q) = %v; want %v", tt.line, got, tt.want)
		}
	}
}

// memTailer returns a Source for cfg and a tailer of no file, for feeding bytes
// straight to the reader.
func memTailer(tb testing.TB, cfg Config) (*Source, *tailer) {
	tb.Helper()
	cfg.Path = "/var/log/pods/default_web-0_0b9c1f7e-0000-4000-8000-000000000001/app/0.log"
	cfg.BatchMaxLines = 1 << 30
	cfg.BatchMaxBytes = 1 << 40
	noStackTraces(&cfg)
	s, err := New(cfg, Settings{Sink: newSink(true), Metrics: NewMetrics(nil)})
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := s.newTailer(nil, cfg.Path, fileID{}, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return s, tr
}

// feedAll feeds data to tr in chunks of the given sizes (cycled) and returns the
// records, the joiners flushed at the end.
func feedAll(s *Source, tr *tailer, data []byte, chunks []int) []pipeline.Record {
	var out []pipeline.Record
	off := 0
	for k := 0; off < len(data); k++ {
		n := len(data) - off
		if len(chunks) > 0 {
			n = min(max(chunks[k%len(chunks)], 1), n)
		}
		used := s.feed(tr, data[off:off+n], int64(off), time.Now())
		if used != n {
			panic(fmt.Sprintf("feed used %d of %d bytes", used, n))
		}
		off += n
		out = append(out, tr.batch...)
		tr.batch = nil
	}
	s.flushJoined(tr)
	out = append(out, tr.batch...)
	tr.batch = nil
	return out
}

// runtimeLog writes messages the way a container runtime does: each split into
// parts of at most part bytes, the parts of the two streams interleaved as order
// says (bit i: stream of the i-th line written). It returns the file's bytes.
func runtimeLog(format string, msgs [numStreams][]string, part int, order []byte, t0 time.Time) []byte {
	var lines [numStreams][]string
	n := 0
	for st := streamStdout; st < numStreams; st++ {
		for _, m := range msgs[st] {
			parts := []string{}
			for len(m) > part {
				n := part
				// Docker's JSON cannot hold half a rune; keep runes whole there.
				for format == FormatDocker && n < len(m) && !utf8.RuneStart(m[n]) {
					n++
				}
				parts = append(parts, m[:n])
				m = m[n:]
			}
			parts = append(parts, m)
			for i, p := range parts {
				last := i == len(parts)-1
				ts := t0.Add(time.Duration(n) * time.Microsecond).Format(time.RFC3339Nano)
				n++
				switch format {
				case FormatCRI:
					tag := "P"
					if last {
						tag = "F"
					}
					lines[st] = append(lines[st], fmt.Sprintf("%s %s %s %s\n", ts, streamNames[st], tag, p))
				case FormatDocker:
					if last {
						p += "\n"
					}
					b, _ := json.Marshal(struct {
						Log    string `json:"log"`
						Stream string `json:"stream"`
						Time   string `json:"time"`
					}{p, streamNames[st], ts})
					lines[st] = append(lines[st], string(b)+"\n")
				}
			}
		}
	}
	var buf bytes.Buffer
	var next [numStreams]int
	for i := 0; next[streamStdout] < len(lines[streamStdout]) || next[streamStderr] < len(lines[streamStderr]); i++ {
		st := streamStdout
		if len(order) > 0 && order[(i/8)%len(order)]>>(i%8)&1 == 1 {
			st = streamStderr
		}
		if next[st] == len(lines[st]) {
			st = streamStdout + streamStderr - st
		}
		buf.WriteString(lines[st][next[st]])
		next[st]++
	}
	return buf.Bytes()
}

// checkStreams checks that recs hold exactly msgs, per stream, in order.
func checkStreams(t testing.TB, recs []pipeline.Record, msgs [numStreams][]string) {
	t.Helper()
	var got [numStreams][]string
	for _, r := range recs {
		st := streamRaw
		switch r.Stream.Get("stream") {
		case "stdout":
			st = streamStdout
		case "stderr":
			st = streamStderr
		}
		got[st] = append(got[st], r.Line)
	}
	if len(got[streamRaw]) > 0 {
		t.Fatalf("%d lines taken as malformed, first %.80q", len(got[streamRaw]), got[streamRaw][0])
	}
	for st := streamStdout; st < numStreams; st++ {
		if len(got[st]) != len(msgs[st]) {
			t.Fatalf("%s: got %d lines, want %d", streamNames[st], len(got[st]), len(msgs[st]))
		}
		for i := range got[st] {
			if want := strings.ToValidUTF8(msgs[st][i], "\uFFFD"); got[st][i] != want {
				t.Fatalf("%s line %d: got %.80q (%d bytes), want %.80q (%d bytes)", streamNames[st], i, got[st][i], len(got[st][i]), want, len(want))
			}
		}
	}
}

func TestRuntimeFormatsReassemble(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 100<<10/16) // a 100 KiB line
	msgs := [numStreams][]string{
		streamStdout: {"first", big, "", "after the big one", "ünïcödé " + big[:40000] + " ✓"},
		streamStderr: {"panic: boom", "", "goroutine 1 [running]:", big[:17000]},
	}
	t0 := time.Date(2026, 12, 6, 11, 44, 1, 0, time.UTC)
	for _, format := range []string{FormatCRI, FormatDocker, FormatAuto} {
		for _, chunk := range []int{1 << 20, 4096, 7} {
			t.Run(fmt.Sprintf("%s/%d", format, chunk), func(t *testing.T) {
				write := format
				if write == FormatAuto {
					write = FormatDocker
				}
				data := runtimeLog(write, msgs, 16<<10, []byte{0x5a, 0x33}, t0)
				s, tr := memTailer(t, Config{Format: format})
				recs := feedAll(s, tr, data, []int{chunk})
				checkStreams(t, recs, msgs)
				for _, r := range recs {
					if r.Time.Before(t0) || r.Time.After(t0.Add(time.Second)) {
						t.Fatalf("record time %v is not the runtime's", r.Time)
					}
				}
				if got := value(s.m.partsJoined); got == 0 {
					t.Fatal("no parts counted as joined")
				}
			})
		}
	}
}

func TestRuntimeFormatCutsLongLines(t *testing.T) {
	msgs := [numStreams][]string{
		streamStdout: {strings.Repeat("x", 100<<10), "next"},
		streamStderr: {strings.Repeat("y", 40<<10)},
	}
	for _, format := range []string{FormatCRI, FormatDocker} {
		t.Run(format, func(t *testing.T) {
			data := runtimeLog(format, msgs, 16<<10, []byte{0xff, 0x01}, time.Now())
			s, tr := memTailer(t, Config{Format: format, MaxLineBytes: 50 << 10})
			recs := feedAll(s, tr, data, []int{3000})
			want := msgs
			want[streamStdout] = []string{strings.Repeat("x", 50<<10), "next"}
			checkStreams(t, recs, want)
			if got := value(s.m.linesTruncated); got != 1 {
				t.Fatalf("lines truncated = %v; want 1", got)
			}
			if n := len(tr.st[streamStdout].part); cap(tr.st[streamStdout].part) > keepPartCap || n != 0 {
				t.Fatalf("the split line's buffer was kept: len %d cap %d", n, cap(tr.st[streamStdout].part))
			}
		})
	}
}

func TestRuntimeFormatMalformedLinesPassThrough(t *testing.T) {
	data := "2026-12-06T11:44:01.000000001Z stdout F one\n" +
		"not a cri line\n" +
		"2026-12-06T11:44:01.000000002Z stdout P two-a \n" +
		"2026-12-06T11:44:01.000000003Z stdout F two-b\n"
	s, tr := memTailer(t, Config{Format: FormatCRI})
	recs := feedAll(s, tr, []byte(data), nil)
	var lines []string
	for _, r := range recs {
		lines = append(lines, r.Stream.Get("stream")+":"+r.Line)
	}
	equalLines(t, lines, []string{"stdout:one", ":not a cri line", "stdout:two-a two-b"})
	if got := value(s.m.malformed); got != 1 {
		t.Fatalf("malformed = %v; want 1", got)
	}
}

func TestRuntimeFormatPathMetadata(t *testing.T) {
	s, tr := memTailer(t, Config{Format: FormatCRI, PathMetadata: PathMetadataKubernetes})
	recs := feedAll(s, tr, []byte("2026-12-06T11:44:01Z stderr F hi\n"), nil)
	if len(recs) != 1 {
		t.Fatalf("got %d records", len(recs))
	}
	r := recs[0]
	for k, want := range map[string]string{"namespace": "default", "pod": "web-0", "container": "app", "stream": "stderr", "source": "file"} {
		if got := r.Stream.Get(k); got != want {
			t.Errorf("label %s = %q; want %q", k, got, want)
		}
	}
	var uid string
	for _, m := range r.Metadata {
		if m.Name == "pod_uid" {
			uid = m.Value
		}
	}
	if uid != "0b9c1f7e-0000-4000-8000-000000000001" {
		t.Errorf("pod_uid metadata = %q", uid)
	}

	// A file outside the layout is read without those labels, and counted.
	other, err := s.newTailer(nil, "/var/log/pods/not-a-pod-dir/app/0.log", fileID{ino: 2}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs = feedAll(s, other, []byte("2026-12-06T11:44:01Z stdout F hi\n"), nil)
	if len(recs) != 1 || recs[0].Stream.Get("pod") != "" || recs[0].Stream.Get("stream") != "stdout" {
		t.Fatalf("records %+v; want one without pod labels", recs)
	}
	if got := value(s.m.pathUnmatched); got != 1 {
		t.Fatalf("path_metadata unmatched = %v; want 1", got)
	}
}

func FuzzCRI(f *testing.F) {
	f.Add([]byte("2026-12-06T11:44:01.123456789Z stdout F hello"), []byte("a\nbb\n\nccc"), uint8(3), uint8(5), []byte{0x5a})
	f.Add([]byte("2026-12-06T11:44:01+01:00 stderr P:x part"), []byte("ünï\xffcödé\r\nx"), uint8(1), uint8(1), []byte{0xff})
	f.Fuzz(func(t *testing.T, line, text []byte, part, chunk uint8, order []byte) {
		if e, ok := parseCRI(line); ok {
			if !bytes.HasSuffix(line, e.msg) {
				t.Fatalf("message %q is not the end of the line", e.msg)
			}
			ts, _, _ := bytes.Cut(line, []byte(" "))
			ref, err := time.Parse(time.RFC3339Nano, string(ts))
			if err != nil || !ref.Equal(e.time) {
				t.Fatalf("time %v; time.Parse says %v, %v", e.time, ref, err)
			}
		}
		checkReassembly(t, FormatCRI, text, part, chunk, order)
	})
}

func FuzzDocker(f *testing.F) {
	f.Add([]byte(`{"log":"hello\n","stream":"stdout","time":"2026-12-06T11:44:01.123456789Z"}`), []byte("a\nbb\n\nccc"), uint8(3), uint8(5), []byte{0x5a})
	f.Add([]byte(`{"log":"\ud83d\ude00\u0041","stream":"stderr","time":"2026-12-06T11:44:01Z","attrs":{}}`), []byte("\"\\\x01<>&\u2028"), uint8(1), uint8(1), []byte{0xff})
	f.Fuzz(func(t *testing.T, line, text []byte, part, chunk uint8, order []byte) {
		e, _, ok := parseDocker(line, nil)
		var ref struct {
			Log    *string `json:"log"`
			Stream string  `json:"stream"`
			Time   string  `json:"time"`
		}
		refOK := json.Unmarshal(line, &ref) == nil && ref.Log != nil && (ref.Stream == "stdout" || ref.Stream == "stderr")
		if refOK {
			_, err := time.Parse(time.RFC3339Nano, ref.Time)
			_, mine := parseRFC3339([]byte(ref.Time))
			refOK = err == nil && mine
		}
		if ok != refOK {
			t.Fatalf("parseDocker ok = %v; encoding/json ok = %v", ok, refOK)
		}
		if ok && utf8.Valid(line) {
			want := strings.TrimSuffix(*ref.Log, "\n")
			if want != *ref.Log {
				want = strings.TrimSuffix(want, "\r")
			}
			if string(e.msg) != want || streamNames[e.stream] != ref.Stream || e.partial != !strings.HasSuffix(*ref.Log, "\n") {
				t.Fatalf("got %q %s partial=%v; encoding/json says %q %s", e.msg, streamNames[e.stream], e.partial, *ref.Log, ref.Stream)
			}
		}
		checkReassembly(t, FormatDocker, text, part, chunk, order)
	})
}

// checkReassembly writes text's lines as a runtime log in parts of part bytes,
// stdout and stderr interleaved as order says, reads it back in chunks of chunk
// bytes, and checks that each stream's lines come back exactly, in order.
func checkReassembly(t *testing.T, format string, text []byte, part, chunk uint8, order []byte) {
	var msgs [numStreams][]string
	if format == FormatDocker {
		text = []byte(strings.ToValidUTF8(string(text), "\uFFFD"))
	}
	for i, l := range strings.Split(string(text), "\n") {
		if format == FormatDocker {
			l = strings.TrimRight(l, "\r") // docker lines lose a CR before their end, as raw lines do
		}
		msgs[streamStdout+i%2] = append(msgs[streamStdout+i%2], l)
	}
	data := runtimeLog(format, msgs, int(part)+1, order, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	s, tr := memTailer(t, Config{Format: format})
	checkStreams(t, feedAll(s, tr, data, []int{int(chunk) + 1}), msgs)
}

// TestRuntimeFormatEndlessPartBoundsMemory: a line the runtime keeps splitting
// (the application never writes its end) holds at most max_line_bytes.
func TestRuntimeFormatEndlessPartBoundsMemory(t *testing.T) {
	const maxLine = 64 << 10
	s, tr := memTailer(t, Config{Format: FormatCRI, MaxLineBytes: maxLine})
	part := "2026-12-06T11:44:01.000000001Z stdout P " + strings.Repeat("p", 16<<10) + "\n"
	var off int64
	for range 640 { // 10 MiB of parts
		s.feed(tr, []byte(part), off, time.Now())
		off += int64(len(part))
	}
	ss := tr.st[streamStdout]
	if !ss.partOn || len(ss.part) > maxLine+1 || cap(ss.part) > 2*(maxLine+1) {
		t.Fatalf("held %d bytes (cap %d) of an endless line; want at most %d", len(ss.part), cap(ss.part), maxLine+1)
	}
	if len(tr.batch) != 0 {
		t.Fatalf("%d records from an unfinished line", len(tr.batch))
	}
	recs := feedAll(s, tr, []byte("2026-12-06T11:44:02Z stdout F end\n"), nil)
	if len(recs) != 1 {
		t.Fatalf("got %d records; want 1", len(recs))
	}
	if len(recs[0].Line) != maxLine || value(s.m.linesTruncated) != 1 {
		t.Fatalf("a line of %d bytes, %v truncated; want %d bytes, 1 truncated", len(recs[0].Line), value(s.m.linesTruncated), maxLine)
	}
}
