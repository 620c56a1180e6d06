package tail

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/outrider-dev/outrider/internal/strarena"
)

// splitAll feeds chunks to a fresh splitter and returns the lines it produced.
func splitAll(t testing.TB, s *lineSplitter, chunks ...[]byte) (lines []string, cuts int) {
	var arena strarena.Arena
	t.Helper()
	for _, c := range chunks {
		for used := 0; used < len(c); {
			line, cut, n, ok := s.next(c[used:])
			if n <= 0 {
				t.Fatalf("next consumed %d bytes of %d", n, len(c)-used)
			}
			used += n
			if !ok {
				if used != len(c) {
					t.Fatalf("next reported no line but left %d bytes", len(c)-used)
				}
				break
			}
			if cut {
				cuts++
			}
			str, _ := lineString(&arena, line, s.max)
			lines = append(lines, str)
		}
	}
	return lines, cuts
}

func TestLineSplitter(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		chunks   []string
		want     []string
		wantCuts int
	}{
		{"lines in one chunk", 100, []string{"a\nbb\n\nccc\n"}, []string{"a", "bb", "", "ccc"}, 0},
		{"line across chunks", 100, []string{"ab", "c", "d\ne", "f\n"}, []string{"abcd", "ef"}, 0},
		{"crlf", 100, []string{"a\r\nb\r", "\n"}, []string{"a", "b"}, 0},
		{"no newline is held", 100, []string{"abc"}, nil, 0},
		{"long line cut, rest dropped", 4, []string{"abcdefgh\nxy\n"}, []string{"abcd", "xy"}, 1},
		{"long line across chunks", 4, []string{"abc", "defg", "hij\nk\n"}, []string{"abcd", "k"}, 1},
		{"exactly max with cr", 3, []string{"abc\r\n"}, []string{"abc"}, 0},
		{"cut at rune boundary", 4, []string{"abcé\n"}, []string{"abc"}, 1},
		{"invalid utf8 replaced", 100, []string{"a\xffb\xfe\xfdc\n"}, []string{"a\uFFFDb\uFFFDc"}, 0},
		{"replacement does not exceed max", 4, []string{"\xff\xfea\xff\n"}, []string{"\uFFFDa"}, 0},
		{"nul bytes kept", 100, []string{"a\x00b\n"}, []string{"a\x00b"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &lineSplitter{max: tt.max}
			var chunks [][]byte
			for _, c := range tt.chunks {
				chunks = append(chunks, []byte(c))
			}
			got, cuts := splitAll(t, s, chunks...)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("lines %q; want %q", got, tt.want)
			}
			if cuts != tt.wantCuts {
				t.Errorf("cut %d lines; want %d", cuts, tt.wantCuts)
			}
		})
	}
}

func TestLineSplitterFlush(t *testing.T) {
	s := &lineSplitter{max: 100}
	if got, _ := splitAll(t, s, []byte("abc")); len(got) != 0 {
		t.Fatalf("lines %q before a newline", got)
	}
	line, cut, ok := s.flush()
	if !ok || cut || string(line) != "abc" {
		t.Fatalf("flush = %q, %v, %v; want abc", line, cut, ok)
	}
	if _, _, ok := s.flush(); ok {
		t.Fatal("second flush returned a line")
	}
	// The newline that ends the flushed line does not make an empty line.
	if got, _ := splitAll(t, s, []byte("\nnext\n")); strings.Join(got, "|") != "next" {
		t.Fatalf("lines after flush %q; want [next]", got)
	}

	// The rest of an over-long flushed line is dropped up to its newline.
	s = &lineSplitter{max: 3}
	splitAll(t, s, []byte("abcdef"))
	line, cut, ok = s.flush()
	if !ok || !cut || string(line) != "abc" {
		t.Fatalf("flush = %q, %v, %v; want abc, cut", line, cut, ok)
	}
	if got, _ := splitAll(t, s, []byte("ghi\nok\n")); strings.Join(got, "|") != "ok" {
		t.Fatalf("lines after flushing a cut line %q; want [ok]", got)
	}
}

func FuzzLineSplitter(f *testing.F) {
	f.Add([]byte("a\nbb\r\n\nccc"), uint8(4), []byte{1, 3, 200})
	f.Add([]byte("\xff\xfe\x00\n\xe2\x82\xac\xe2\x82\n"), uint8(2), []byte{0, 1, 2})
	f.Add(bytes.Repeat([]byte("é"), 100), uint8(7), []byte{5, 130})
	f.Fuzz(func(t *testing.T, data []byte, maxLine uint8, cuts []byte) {
		max := int(maxLine%64) + 1
		s := &lineSplitter{max: max}
		var lines []string
		var arena strarena.Arena
		flushes := 0
		for pos, ci := 0, 0; pos < len(data); ci++ {
			n := len(data) - pos
			flush := false
			if ci < len(cuts) {
				n = min(n, int(cuts[ci]&0x3f)+1)
				flush = cuts[ci]&0x80 != 0
			}
			chunk := data[pos : pos+n]
			pos += n
			for used := 0; used < len(chunk); {
				line, _, k, ok := s.next(chunk[used:])
				if k <= 0 || used+k > len(chunk) {
					t.Fatalf("next consumed %d of %d bytes", k, len(chunk)-used)
				}
				used += k
				if !ok {
					break
				}
				if len(line) > max {
					t.Fatalf("line of %d bytes over max %d", len(line), max)
				}
				str, _ := lineString(&arena, line, max)
				lines = append(lines, str)
			}
			if flush {
				if line, _, ok := s.flush(); ok {
					flushes++
					if len(line) > max {
						t.Fatalf("flushed line of %d bytes over max %d", len(line), max)
					}
					str, _ := lineString(&arena, line, max)
					lines = append(lines, str)
				}
			}
		}
		for i, l := range lines {
			if len(l) > max || !utf8.ValidString(l) {
				t.Fatalf("line %d %q: %d bytes, valid %v; max %d", i, l, len(l), utf8.ValidString(l), max)
			}
		}
		if want := bytes.Count(data, []byte{'\n'}); len(lines) > want+flushes {
			t.Fatalf("%d lines from %d newlines and %d flushes", len(lines), want, flushes)
		}
		// Without flushes, over-long lines, CRs or bad UTF-8, the lines are the input.
		if flushes == 0 && !bytes.ContainsRune(data, '\r') && utf8.Valid(data) {
			whole := data[:bytes.LastIndexByte(data, '\n')+1]
			short := true
			for _, l := range bytes.Split(whole, []byte{'\n'}) {
				short = short && len(l) <= max
			}
			if short {
				var b strings.Builder
				for _, l := range lines {
					b.WriteString(l)
					b.WriteByte('\n')
				}
				if b.String() != string(whole) {
					t.Fatalf("lines %q do not rebuild the input %q", lines, whole)
				}
			}
		}
	})
}

// TestLineString checks that valid lines are copied into the arena's shared
// block, and that invalid UTF-8 is replaced.
func TestLineString(t *testing.T) {
	var a strarena.Arena
	buf := []byte("first line")
	x, bad := lineString(&a, buf, 100)
	copy(buf, "other line")
	y, _ := lineString(&a, buf, 100)
	if bad || x != "first line" || y != "other line" {
		t.Fatalf("got %q, %q (invalid %v): the first line must keep its bytes", x, y, bad)
	}
	if unsafe.StringData(y) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(x)), len(x))) {
		t.Fatal("two short lines are not consecutive in one block")
	}
	if s, bad := lineString(&a, []byte("a\xffb"), 10); !bad || s != "a\uFFFDb" {
		t.Fatalf("invalid UTF-8: %q %v", s, bad)
	}
	if s, bad := lineString(&a, []byte("ab\xff\xffcd"), 5); !bad || s != "ab\uFFFD" {
		t.Fatalf("invalid UTF-8 cut at 5 bytes: %q %v", s, bad)
	}
}
