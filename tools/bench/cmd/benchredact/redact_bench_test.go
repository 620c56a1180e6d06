package main

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/tools/bench/internal/loggen"
)

// benchLines returns n loggen lines (without their newline); every 100th carries
// one of values in one of the leak forms, unless values is empty.
func benchLines(n int, values []string) []string {
	g := loggen.New(loggen.Seed)
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	var buf []byte
	for i := range out {
		buf = g.Append(buf[:0])
		buf = buf[:len(buf)-1]
		if len(values) > 0 && i%100 == 50 {
			if field, ok := leakField(leakForms[(i/100)%len(leakForms)], values, r); ok {
				buf = insertField(buf, field)
			}
		}
		out[i] = string(buf)
	}
	return out
}

// BenchmarkRedact scrubs loggen's ~200-byte JSON lines, 1% of which hold a secret,
// with 0, 10, 100 and 1000 secrets registered; one op is one line. "min13" registers
// 100 values of 13 bytes or more, which the matcher probes every 10 bytes; "min6"
// 100 values of 6 bytes, the worst case for the matcher's stride.
func BenchmarkRedact(b *testing.B) {
	cases := []struct {
		name   string
		values []string
	}{
		{"secrets=0", nil},
		{"secrets=10", secrets(10, 1, 0)},
		{"secrets=100", secrets(100, 1, 0)},
		{"secrets=1000", secrets(1000, 1, 0)},
		{"secrets=100/min13", secrets(100, 1, 13)},
		{"secrets=100/min6", shortSecrets(100)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			reg := redact.NewRegistry(nil)
			reg.Set("bench", c.values)
			inserted := c.values
			if len(inserted) == 0 {
				inserted = secrets(10, 1, 0)
			}
			lines := benchLines(4096, inserted)
			bytes := 0
			for _, l := range lines {
				bytes += len(l)
			}
			b.SetBytes(int64(bytes / len(lines)))
			b.ReportAllocs()
			i, scrubbed := 0, 0
			for b.Loop() {
				if _, ok := reg.Redact(lines[i&4095]); ok {
					scrubbed++
				}
				i++
			}
			if len(c.values) > 0 && scrubbed == 0 {
				b.Fatal("no line was scrubbed")
			}
			b.ReportMetric(float64(reg.Len()), "patterns")
		})
	}
}

func shortSecrets(n int) []string {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%c%s", 'a'+i%26, pick(r, alnum, 5))
	}
	return out
}
