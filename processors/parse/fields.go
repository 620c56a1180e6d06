package parse

import (
	"strings"
	"unicode/utf8"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/correlate"
)

// kind is the record field a name fills.
type kind uint8

const (
	kindLevel kind = iota
	kindTime
	kindTrace
	kindSpan
	kindRequest
	kindTraceparent
	numKinds
)

// maxSlots bounds the value slots of one line: one per way to match each field name
// (2^dots per name). Six fields of at most maxDots dots each, or the default lists,
// stay well below it.
const maxSlots = 64

// maxRequestIDLen is the longest request id taken from a line.
const maxRequestIDLen = 128

// span is where a value is in the line: line[off:end&^needsDecode], quotes included
// for quoted strings. end == 0 means "no value". The needsDecode bit of end marks a
// JSON string with escapes or non-ASCII bytes; the others are their contents as is.
type span struct{ off, end uint32 }

const needsDecode = 1 << 31

// slots holds, for one line, the last value seen for each way of matching each name,
// and a bit for each name that had a slot set.
type slots struct {
	v      [maxSlots]span
	filled uint64
}

// fieldSet is the names a parser looks for, in priority order within each field.
// Its per-name tables are arrays of 64 (the most names a set holds), indexed by a bit
// number of a mask (trailingZeros), so that reading them needs no bounds check.
type fieldSet struct {
	n     int // names
	names [64]string
	kinds [64]kind
	// base is the first slot of each name; a name with d dots has 1<<d slots, one
	// per variant: bit i of the variant set means dot i separated nested objects.
	base [64]uint8
	nvar [64]uint8
	// first holds, for each byte, the names that start with it.
	first [256]uint64
	// byLen holds, for each length n, the names n bytes long or with a dot at n:
	// those a top-level key of that length may match or lead into.
	byLen []uint64
	// all has a bit for each name.
	all uint64
	// levelish marks names of the level and time fields (logfmt detection).
	levelish uint64
}

func newFieldSet(lists [numKinds][]string) fieldSet {
	var fs fieldSet
	n := 0
	for _, list := range lists {
		fs.n += len(list)
	}
	if fs.n > 64 {
		panic("parse: too many field names")
	}
	fs.n = 0
	for k, list := range lists {
		for _, name := range list {
			c := fs.n
			fs.n++
			nv := 1 << strings.Count(name, ".")
			fs.names[c] = name
			fs.kinds[c] = kind(k)
			fs.base[c] = uint8(n)
			fs.nvar[c] = uint8(nv)
			fs.first[name[0]] |= 1 << c
			fs.all |= 1 << c
			if kind(k) == kindLevel || kind(k) == kindTime {
				fs.levelish |= 1 << c
			}
			n += nv
		}
	}
	for c, name := range fs.names[:fs.n] {
		for len(fs.byLen) <= len(name) {
			fs.byLen = append(fs.byLen, 0)
		}
		fs.byLen[len(name)] |= 1 << c
		for i := 0; i < len(name); i++ {
			if name[i] == '.' {
				fs.byLen[i] |= 1 << c
			}
		}
	}
	if n > maxSlots {
		// Config.Validate keeps names to maxDots dots and one name per configured
		// field, which keeps both well below the limits.
		panic("parse: too many field names")
	}
	return fs
}

// match returns the names equal to key, among those in mask.
func (fs *fieldSet) match(key string, mask uint64) uint64 {
	if key == "" || len(key) >= len(fs.byLen) {
		return 0
	}
	mask &= fs.first[key[0]] & fs.byLen[len(key)]
	var m uint64
	for mask != 0 {
		c := trailingZeros(mask)
		mask &= mask - 1
		if fs.names[c] == key {
			m |= 1 << c
		}
	}
	return m
}

// set records line[off:end] as the value of the names in m for the given variant.
func (fs *fieldSet) set(sl *slots, m uint64, variant uint, off, end int, decode bool) {
	sp := span{uint32(off), uint32(end)}
	if decode {
		sp.end |= needsDecode
	}
	sl.filled |= m
	for m != 0 {
		c := trailingZeros(m)
		m &= m - 1
		sl.v[int(fs.base[c])+int(variant)] = sp
	}
}

// valueMode says how to read a value from its span.
type valueMode uint8

const (
	// jsonValues: a JSON string (quoted) or number; other JSON values are unusable.
	jsonValues valueMode = iota
	// textValues: a logfmt or plain value, bare or quoted.
	textValues
	// rawValues: the span as it is (regex groups).
	rawValues
)

// value reads the value at sp. num reports a JSON number.
func value(line string, sp span, mode valueMode) (s string, num bool, ok bool) {
	v := line[sp.off : sp.end&^needsDecode]
	switch mode {
	case jsonValues:
		switch c := v[0]; {
		case c == '"':
			if sp.end&needsDecode != 0 {
				s, ok = unquoteJSON(v)
				return s, false, ok
			}
			return v[1 : len(v)-1], false, true
		case c == '-' || '0' <= c && c <= '9':
			return v, true, true
		}
		return "", false, false
	case textValues:
		if len(v) > 0 && v[0] == '"' {
			s, ok = unquoteText(v)
			return s, false, ok
		}
	}
	return v, false, true
}

// ids holds the trace context found on a line before it is applied to the record.
type ids struct {
	trace, span     string
	tpTrace, tpSpan string
	// found has bit 1<<k set for each field k a usable value was found for.
	found uint8
}

// apply sets the record's trace and span ids: the fields first, else the traceparent.
func (x *ids) apply(r *pipeline.Record) {
	trace := x.trace
	if trace == "" {
		trace = x.tpTrace
	}
	if trace != "" {
		r.TraceID = trace
	}
	switch {
	case x.span != "":
		r.SpanID = x.span
	case x.tpSpan != "" && trace == x.tpTrace:
		r.SpanID = x.tpSpan
	}
}

// resolve takes, for each field, the first usable value in priority order, sets the
// record's level, time and request id, and returns the trace context found.
func (p *parser) resolve(line string, sl *slots, mode valueMode, r *pipeline.Record) ids {
	fs := &p.fields
	var x ids
	for m := sl.filled; m != 0; m &= m - 1 {
		c := trailingZeros(m)
		k := fs.kinds[c]
		if x.found&(1<<k) != 0 {
			continue
		}
		base := int(fs.base[c])
		for v := range int(fs.nvar[c]) {
			sp := sl.v[base+v]
			if sp.end == 0 {
				continue
			}
			s, num, ok := value(line, sp, mode)
			if ok && p.take(k, s, num, r, &x) {
				x.found |= 1 << k
				break
			}
		}
	}
	return x
}

// take uses s for field k if it is usable there.
func (p *parser) take(k kind, s string, num bool, r *pipeline.Record, x *ids) bool {
	switch k {
	case kindLevel:
		l := parseLevel(s)
		if l == pipeline.LevelUnknown {
			return false
		}
		r.Level = l
	case kindTime:
		t, ok := p.time.parse(s)
		if !ok {
			return false
		}
		r.Time = t
	case kindTrace:
		if num {
			return false
		}
		x.trace = pipeline.NormalizeHexID(s, 32)
		return x.trace != ""
	case kindSpan:
		if num {
			return false
		}
		x.span = pipeline.NormalizeHexID(s, 16)
		return x.span != ""
	case kindTraceparent:
		if num {
			return false
		}
		t, sp, _, ok := correlate.ParseTraceparent(s)
		if !ok {
			return false
		}
		x.tpTrace, x.tpSpan = t, sp
	case kindRequest:
		if !validRequestID(s) {
			return false
		}
		r.RequestID = s
	}
	return true
}

// printableASCII reports whether s, at least 8 bytes long, is printable ASCII (0x20
// to 0x7e): eight bytes a step, the last step overlapping the one before.
func printableASCII(s string) bool {
	var bad uint64
	for i := 0; i+8 <= len(s); i += 8 {
		bad |= unprintable(word(s[i : i+8]))
	}
	return bad|unprintable(word(s[len(s)-8:])) == 0
}

// unprintable has the high bit of each byte of x that is not printable ASCII set (and
// perhaps of bytes above one that is: it is nonzero exactly when one is not).
func unprintable(x uint64) uint64 {
	del := x ^ ones*0x7f
	return (x | (x-ones*0x20)&^x | (del-ones)&^del) & highs
}

// word returns the eight bytes of w as a little-endian integer; indexing a string of
// exactly eight bytes compiles to one load.
func word(w string) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// validRequestID reports whether s is usable as a request id: 1 to maxRequestIDLen
// bytes of valid UTF-8 without control characters.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	if len(s) >= 8 && printableASCII(s) {
		return true
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if ascii {
		return true
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if 0x80 <= r && r < 0xa0 {
			return false
		}
	}
	return true
}
