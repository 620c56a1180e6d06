package loggen

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type line struct {
	Time      string   `json:"time"`
	Level     string   `json:"level"`
	Msg       string   `json:"msg"`
	TraceID   string   `json:"trace_id"`
	SpanID    string   `json:"span_id"`
	RequestID string   `json:"request_id"`
	User      *string  `json:"user"`
	LatencyMS *float64 `json:"latency_ms"`
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func TestWriteLines(t *testing.T) {
	const n = 50_000
	var buf bytes.Buffer
	st, err := Write(&buf, n, Seed)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != n || st.Bytes != int64(buf.Len()) {
		t.Fatalf("stats %+v, wrote %d bytes", st, buf.Len())
	}

	seen := make(map[string]struct{}, n)
	traces := make(map[string]struct{}, n)
	var prev time.Time
	var count, errs, warns int
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		raw := sc.Bytes()
		count++
		if size := len(raw) + 1; size < 150 || size > 260 {
			t.Fatalf("line %d is %d bytes, want about 200: %s", count, size, raw)
		}
		if _, dup := seen[string(raw)]; dup {
			t.Fatalf("line %d repeats an earlier line: %s", count, raw)
		}
		seen[string(raw)] = struct{}{}

		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", count, err, raw)
		}
		ts, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			t.Fatalf("line %d time %q: %v", count, l.Time, err)
		}
		if !ts.After(prev) {
			t.Fatalf("line %d time %s is not after %s", count, ts, prev)
		}
		prev = ts
		if !isHex(l.TraceID, 32) || !isHex(l.SpanID, 16) {
			t.Fatalf("line %d trace_id %q span_id %q", count, l.TraceID, l.SpanID)
		}
		traces[l.TraceID] = struct{}{}
		if l.RequestID == "" || l.Msg == "" || l.LatencyMS == nil {
			t.Fatalf("line %d misses request_id, msg or latency_ms: %s", count, raw)
		}
		switch l.Level {
		case "error":
			errs++
		case "warn":
			warns++
		case "info":
		default:
			t.Fatalf("line %d level %q", count, l.Level)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("read %d lines, want %d", count, n)
	}
	if len(traces) != n {
		t.Errorf("%d distinct trace ids in %d lines", len(traces), n)
	}
	if errs != st.Errors || warns != st.Warnings {
		t.Errorf("counted %d errors %d warnings, stats say %+v", errs, warns, st)
	}
	if share := float64(errs) / n; share < 0.04 || share > 0.06 {
		t.Errorf("error share %.3f, want about 5%%", share)
	}
	if avg := float64(st.Bytes) / n; avg < 180 || avg > 230 {
		t.Errorf("average line %.1f bytes, want about 200", avg)
	}
}

func TestWriteDeterministic(t *testing.T) {
	sum := func(seed uint64) [32]byte {
		var buf bytes.Buffer
		if _, err := Write(&buf, 5000, seed); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(buf.Bytes())
	}
	if first, second := sum(Seed), sum(Seed); first != second {
		t.Error("same seed gave different bytes")
	}
	if sum(Seed) == sum(Seed+1) {
		t.Error("different seeds gave the same bytes")
	}
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"empty", 0},
		{"one", 1},
		{"some", 1234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			st, err := WriteFile(path, tt.n, Seed)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Count(data, []byte{'\n'}); got != tt.n || st.Lines != tt.n {
				t.Errorf("file has %d lines, stats %d, want %d", got, st.Lines, tt.n)
			}
			if int64(len(data)) != st.Bytes {
				t.Errorf("file has %d bytes, stats %d", len(data), st.Bytes)
			}
		})
	}
}

func TestWriteNegative(t *testing.T) {
	if _, err := Write(&bytes.Buffer{}, -1, Seed); err == nil {
		t.Fatal("want an error for a negative count")
	}
}

func BenchmarkAppend(b *testing.B) {
	g := New(Seed)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = g.Append(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}
