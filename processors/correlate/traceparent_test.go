package correlate

import (
	"regexp"
	"strings"
	"testing"
)

const (
	tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	sid = "00f067aa0ba902b7"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ok      bool
		sampled bool
	}{
		{"sampled", "00-" + tid + "-" + sid + "-01", true, true},
		{"not sampled", "00-" + tid + "-" + sid + "-00", true, false},
		{"other flags keep sampled bit", "00-" + tid + "-" + sid + "-03", true, true},
		{"flags without sampled bit", "00-" + tid + "-" + sid + "-02", true, false},
		{"surrounding whitespace", " \t00-" + tid + "-" + sid + "-01\t ", true, true},
		{"future version exact length", "01-" + tid + "-" + sid + "-01", true, true},
		{"future version with more fields", "cc-" + tid + "-" + sid + "-01-what-the-future-holds", true, true},
		// The fields a later version adds are not read, whatever bytes they hold.
		{"future version, a line break in its fields", "01-" + tid + "-" + sid + "-00-\n", true, false},
		{"future version longer without dash", "cc-" + tid + "-" + sid + "-01what", false, false},
		{"version 00 longer", "00-" + tid + "-" + sid + "-01-extra", false, false},
		{"version ff", "ff-" + tid + "-" + sid + "-01", false, false},
		{"uppercase version", "0A-" + tid + "-" + sid + "-01", false, false},
		{"uppercase trace id", "00-" + strings.ToUpper(tid) + "-" + sid + "-01", false, false},
		{"uppercase span id", "00-" + tid + "-00F067AA0BA902B7-01", false, false},
		{"uppercase flags", "00-" + tid + "-" + sid + "-0A", false, false},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-" + sid + "-01", false, false},
		{"zero span id", "00-" + tid + "-" + strings.Repeat("0", 16) + "-01", false, false},
		{"short trace id", "00-" + tid[1:] + "-" + sid + "-01", false, false},
		{"long span id", "00-" + tid + "-" + sid + "0-01", false, false},
		{"non-hex", "00-" + tid[:31] + "g-" + sid + "-01", false, false},
		{"wrong separator", "00_" + tid + "-" + sid + "-01", false, false},
		{"missing flags", "00-" + tid + "-" + sid, false, false},
		{"empty", "", false, false},
		{"garbage", "hello", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotT, gotS, sampled, ok := ParseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("ParseTraceparent(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			if !ok {
				if gotT != "" || gotS != "" || sampled {
					t.Fatalf("failed parse returned %q %q %v", gotT, gotS, sampled)
				}
				return
			}
			if gotT != tid || gotS != sid || sampled != tt.sampled {
				t.Fatalf("ParseTraceparent(%q) = %q %q %v, want %q %q %v", tt.in, gotT, gotS, sampled, tid, sid, tt.sampled)
			}
		})
	}
}

func TestFindTraceparent(t *testing.T) {
	tp := "00-" + tid + "-" + sid + "-01"
	other := "00-" + strings.Repeat("ab", 16) + "-" + strings.Repeat("cd", 8) + "-00"
	tests := []struct {
		name string
		in   string
		ok   bool
		// wantOther is set when the second id pair is the expected one.
		wantOther bool
	}{
		{"alone", tp, true, false},
		{"key=value", "2024-01-02 12:00:00 INFO handled traceparent=" + tp + " status=200", true, false},
		{"header style", `GET / traceparent: "` + tp + `"`, true, false},
		{"in brackets", "[" + tp + "]", true, false},
		{"at end after dash-y text", "2024-01-02 req-id - " + tp, true, false},
		{"future version followed by dash", "x 7f-" + tid + "-" + sid + "-01-ext y", true, false},
		{"glued to a word before", "x" + tp, false, false},
		{"glued to a word after", tp + "z", false, false},
		{"version 00 followed by dash", tp + "-more", false, false},
		{"uppercase", strings.ToUpper(tp), false, false},
		{"version ff", "ff" + tp[2:], false, false},
		{"first invalid then valid", "00-" + strings.Repeat("0", 32) + "-" + sid + "-01 " + other, true, true},
		{"overlapping dashes", "--" + tp + "--", false, false},
		{"dash prefix", "-" + tp + " ", true, false},
		{"too short", "00-" + tid + "-" + sid + "-0", false, false},
		{"no dash", strings.Repeat("a", 80), false, false},
		{"empty", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotT, gotS, ok := FindTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("FindTraceparent(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			wantT, wantS := tid, sid
			if tt.wantOther {
				wantT, wantS = strings.Repeat("ab", 16), strings.Repeat("cd", 8)
			}
			if !ok {
				wantT, wantS = "", ""
			}
			if gotT != wantT || gotS != wantS {
				t.Fatalf("FindTraceparent(%q) = %q %q, want %q %q", tt.in, gotT, gotS, wantT, wantS)
			}
		})
	}
}

// traceparentRE is a straightforward reading of the specification, used as the
// reference in FuzzParseTraceparent. The fields a later version adds may hold any
// byte, a line break too ((?s): "." matches '\n').
var traceparentRE = regexp.MustCompile(`(?s)^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$`)

func referenceParse(s string) (traceID, spanID string, sampled, ok bool) {
	s = strings.Trim(s, " \t")
	m := traceparentRE.FindStringSubmatch(s)
	if m == nil || m[1] == "ff" || (m[1] == "00" && m[5] != "") {
		return "", "", false, false
	}
	if m[2] == strings.Repeat("0", 32) || m[3] == strings.Repeat("0", 16) {
		return "", "", false, false
	}
	return m[2], m[3], strings.IndexByte("13579bdf", m[4][1]) >= 0, true
}

func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{
		"00-" + tid + "-" + sid + "-01",
		"00-" + tid + "-" + sid + "-00",
		"01-" + tid + "-" + sid + "-09-x",
		"01-" + tid + "-" + sid + "-00-\n",
		"ff-" + tid + "-" + sid + "-01",
		"00-" + strings.ToUpper(tid) + "-" + sid + "-01",
		"00-" + strings.Repeat("0", 32) + "-" + sid + "-01",
		" 00-" + tid + "-" + sid + "-01\t",
		"",
		"00--",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gotT, gotS, gotSampled, gotOK := ParseTraceparent(s)
		wantT, wantS, wantSampled, wantOK := referenceParse(s)
		if gotT != wantT || gotS != wantS || gotSampled != wantSampled || gotOK != wantOK {
			t.Fatalf("ParseTraceparent(%q) = %q %q %v %v, reference %q %q %v %v",
				s, gotT, gotS, gotSampled, gotOK, wantT, wantS, wantSampled, wantOK)
		}
		ft, fs, fok := FindTraceparent(s)
		if fok && (len(ft) != 32 || len(fs) != 16 || !hexID(ft) || !hexID(fs)) {
			t.Fatalf("FindTraceparent(%q) returned invalid ids %q %q", s, ft, fs)
		}
		if gotOK {
			line := "msg=hello traceparent=" + strings.Trim(s, " \t") + " x=1"
			ft, fs, fok = FindTraceparent(line)
			if !fok || ft != gotT || fs != gotS {
				t.Fatalf("FindTraceparent(%q) = %q %q %v, want %q %q", line, ft, fs, fok, gotT, gotS)
			}
		}
	})
}

func BenchmarkFindTraceparent(b *testing.B) {
	line := "2024-01-02 15:04:05.123 INFO 1 --- [main] c.e.Handler : handled GET /api/v1/items in 12 ms traceparent=00-" + tid + "-" + sid + "-01"
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := FindTraceparent(line); !ok {
			b.Fatal("not found")
		}
	}
}
