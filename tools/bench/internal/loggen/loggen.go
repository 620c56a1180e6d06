// Package loggen writes the input of the log benchmarks: deterministic, unique JSON
// lines of about 200 bytes that look like an HTTP service's access log, each with a
// trace_id, span_id and request_id, timestamps strictly increasing.
package loggen

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// Start is the timestamp of the first line. Line i is stamped inside millisecond i
// after Start, so timestamps strictly increase by about 1 ms per line.
var Start = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// Seed is the default seed: the same seed gives the same bytes.
const Seed = 0x6f75747269646572

// Stats describes what was written.
type Stats struct {
	// Lines is the number of lines (each ends with '\n').
	Lines int
	// Bytes is the total size, newlines included.
	Bytes int64
	// Errors and Warnings count the lines with level "error" and "warn".
	Errors, Warnings int
}

// Generator produces the lines one after the other. It is not safe for concurrent use.
type Generator struct {
	rng   *rand.Rand
	next  int
	stats Stats
}

// New returns a generator whose output depends only on seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Stats returns what has been generated so far.
func (g *Generator) Stats() Stats { return g.stats }

type route struct {
	method, path string
	// idRange > 0 appends "/<id>" with id in [1, idRange].
	idRange int
}

var routes = []route{
	{"GET", "/api/orders", 99999},
	{"GET", "/api/orders", 0},
	{"POST", "/api/orders", 0},
	{"GET", "/api/users", 9999},
	{"PUT", "/api/users", 9999},
	{"GET", "/api/products", 99999},
	{"GET", "/api/cart", 0},
	{"POST", "/api/cart/items", 0},
	{"DELETE", "/api/cart/items", 999},
	{"POST", "/api/payments", 0},
	{"GET", "/healthz", 0},
	{"GET", "/api/search?q=shoes", 0},
}

var (
	infoStatus  = []int{200, 200, 200, 200, 201, 204, 304}
	warnStatus  = []int{400, 404, 409, 429}
	errorStatus = []int{500, 502, 503, 504}
	errorCauses = []string{"upstream timeout", "db: connection refused", "panic recovered", "context canceled"}
)

const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Append appends the next line, '\n' included, to dst and returns the extended slice.
func (g *Generator) Append(dst []byte) []byte {
	i := g.next
	g.next++
	r := g.rng
	start := len(dst)

	ts := Start.Add(time.Duration(i)*time.Millisecond + time.Duration(r.IntN(1000))*time.Microsecond)
	level, status, cause := "info", infoStatus[r.IntN(len(infoStatus))], ""
	switch p := r.IntN(100); {
	case p < 5:
		level, status = "error", errorStatus[r.IntN(len(errorStatus))]
		cause = errorCauses[r.IntN(len(errorCauses))]
		g.stats.Errors++
	case p < 10:
		level, status = "warn", warnStatus[r.IntN(len(warnStatus))]
		g.stats.Warnings++
	}
	rt := routes[r.IntN(len(routes))]

	dst = append(dst, `{"time":"`...)
	dst = ts.AppendFormat(dst, timeLayout)
	dst = append(dst, `","level":"`...)
	dst = append(dst, level...)
	dst = append(dst, `","msg":"`...)
	dst = append(dst, rt.method...)
	dst = append(dst, ' ')
	dst = append(dst, rt.path...)
	if rt.idRange > 0 {
		dst = append(dst, '/')
		dst = strconv.AppendInt(dst, int64(1+r.IntN(rt.idRange)), 10)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(status), 10)
	if cause != "" {
		dst = append(dst, ": "...)
		dst = append(dst, cause...)
	}
	var id [16]byte
	putRandom(r, id[:])
	dst = append(dst, `","trace_id":"`...)
	dst = hex.AppendEncode(dst, id[:16])
	putRandom(r, id[:8])
	dst = append(dst, `","span_id":"`...)
	dst = hex.AppendEncode(dst, id[:8])
	dst = append(dst, `","request_id":"req-`...)
	dst = appendPadded(dst, i+1, 7)
	dst = append(dst, '"')
	if r.IntN(10) < 7 {
		dst = append(dst, `,"user":"u`...)
		dst = strconv.AppendInt(dst, int64(r.IntN(5000)), 10)
		dst = append(dst, '"')
	}
	latency := math.Exp(r.NormFloat64()*1.2 + 2.5)
	if level == "error" {
		latency += 1000
	}
	dst = append(dst, `,"latency_ms":`...)
	dst = strconv.AppendFloat(dst, math.Round(latency*10)/10, 'f', 1, 64)
	dst = append(dst, "}\n"...)

	g.stats.Lines++
	g.stats.Bytes += int64(len(dst) - start)
	return dst
}

func putRandom(r *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := i; j < i+8 && j < len(b); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

// appendPadded appends n in decimal, left-padded with zeros to width digits.
func appendPadded(dst []byte, n, width int) []byte {
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], int64(n), 10)
	for k := len(s); k < width; k++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// Write writes n lines generated from seed to w.
func Write(w io.Writer, n int, seed uint64) (Stats, error) {
	if n < 0 {
		return Stats{}, fmt.Errorf("line count %d is negative", n)
	}
	g := New(seed)
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	for range n {
		line = g.Append(line[:0])
		if _, err := bw.Write(line); err != nil {
			return g.stats, fmt.Errorf("write benchmark input: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return g.stats, fmt.Errorf("write benchmark input: %w", err)
	}
	return g.stats, nil
}

// WriteFile creates (or truncates) path and writes n lines generated from seed to
// it, fsynced, so that a reader started afterwards sees the complete file.
func WriteFile(path string, n int, seed uint64) (Stats, error) {
	f, err := os.Create(path)
	if err != nil {
		return Stats{}, fmt.Errorf("create benchmark input: %w", err)
	}
	st, err := Write(f, n, seed)
	if err != nil {
		f.Close()
		return st, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return st, fmt.Errorf("sync benchmark input %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return st, fmt.Errorf("close benchmark input %s: %w", path, err)
	}
	return st, nil
}
