package redact

import (
	"math"
	"math/bits"
	"sort"
	"strings"
	"unsafe"

	"github.com/outrider-dev/outrider/internal/strarena"
)

// Marker replaces every secret value found.
const Marker = "[REDACTED]"

// gramLen is the length of the q-grams the filters are keyed by.
const gramLen = 4

// Filter sizes, in bits per indexed gram: the first filter lets about 3% of the
// probes of text without secrets through, the second about 0.3% of those.
const (
	firstBitsPerGram  = 32
	secondBitsPerGram = 16
)

// cutMin is the shortest prefix of a pattern found at the end of a text: a text cut
// in the middle of a secret (a line over max_line_bytes, a partial line flushed, a
// field truncated by the application) keeps no 8 bytes of it. At a stride up to
// cutStride such a prefix always holds a probed gram; at a wider one the text is
// also probed cutMin bytes before its end (see matcher).
const cutMin = 8

// cutStride is the widest stride at which every cutMin bytes of text hold a probed
// gram.
const cutStride = cutMin - gramLen + 1

// maxStride caps the stride: a pattern set whose shortest pattern has 13 bytes or
// more (the usual Vault secrets: generated passwords, tokens, keys) is probed every
// 10 bytes, half the probes of stride 5, with filters of the same size (twice the
// grams in them). On bench-redact's lines with 100 such values: 38 against 55 ns per
// line in BenchmarkRedact; in the pipeline, alternated batch by batch with stride
// 5, 100–104 against 107–112 ns per line for the whole sink (with filters twice the
// size it was no faster there: reading them before each batch cost what the probes
// saved). Stride 13 saved nothing more in the microbenchmark.
const maxStride = 10

// foldGram maps a gram's ASCII letters to lower case (and some punctuation onto
// other punctuation, which only costs the filters a few more false positives), so
// that one index serves exact and case-folded patterns.
const foldGram = 0x20202020

// Multipliers of the hashes (multiplicative hashing takes the high bits of the
// product).
const (
	hashFirst  = 0x9e3779b97f4a7c15 // 2^64 / golden ratio
	hashSecond = 0xc2b2ae3d27d4eb4f
	hashBucket = 0x85ebca6b
	hashKey    = 0xd6e8feb86659fd93
)

// matcher finds every occurrence of a fixed set of patterns, all at least
// minPatternLen bytes long. It is immutable once built, so any number of goroutines
// may use it.
//
// It probes the text every stride bytes with the 4-byte gram found there (the
// grid). Every pattern is at least stride+3 bytes long, so each of its occurrences,
// and each prefix of stride+3 bytes or more at the end of the text, covers, at some
// offset below stride, a gram starting at a grid position: indexing each pattern by
// its grams at offsets 0 to stride-1 finds every occurrence exactly once. When the
// stride is wider than cutStride, a shorter prefix at the end of the text, of
// cutMin to stride+2 bytes, may hold no grid position; one more probe, cutMin bytes
// before the end (the tail probe), finds each of those at offset len(prefix)-cutMin,
// below stride-5 (and may find an occurrence the grid found). Grams are folded to
// ASCII lower case before hashing, so the same probe finds folded patterns in any
// case. A probe tests one bit of a bitset of the indexed grams' hashes; the few that
// pass test two bits of one word of a blocked Bloom filter keyed by a second hash;
// only then are the candidates of that gram looked up by exact gram and compared in
// full. On text without secrets nearly every probe stops at the first test: a load,
// a multiply, a shift, a load from a table small enough to stay in cache, a bit test.
type matcher struct {
	minLen int // the shortest text that may hold an occurrence: min(shortest pattern, cutMin)
	stride int // the shortest pattern's length - gramLen + 1, at most cutStride, or maxStride
	// first is a bitset of a power of two words: for every indexed gram with hash
	// h, bit h >> 58 of word (h >> 32) & (len(first)-1) is set. Both come from the
	// high half of a multiplicative hash, which every bit of the gram mixes into
	// (hex grams, common in logs and in hex-encoded values, collided in lower
	// bits); both shifts are constants, which keeps the probe short.
	first []uint64
	// second is the blocked Bloom filter: word (hash2 >> 48) & secondMask, bits
	// (hash2 >> 36) & 63 and (hash2 >> 42) & 63.
	second     []uint64
	secondMask uint64
	// keys is a blocked Bloom filter of the candidates' keys, as second is of
	// their grams (the same size, so secondMask indexes it too): a candidate
	// whose key holds 8 bytes sets keyWord(key), one with a shorter key (its
	// pattern ends within 8 bytes of its gram) keyWord of its gram, and then
	// shortKeys is set. The search (occurrencesAt) tests it instead of second:
	// in text holding other encodings of secrets (JSON, HTML or percent escapes,
	// hex), and in hex ids, many probed grams are indexed grams whose 8 bytes
	// are no candidate's, and each such probe cost two cache misses (bucket,
	// candidates). MayHold, which looks for prefixes ending anywhere, keeps
	// second.
	keys      []uint64
	shortKeys bool
	// Candidates by bucket: those of bucket i are cands[bucket[i]:bucket[i+1]].
	bucket      []uint32
	bucketShift uint // 32 - log2(len(bucket)-1)
	cands       []candidate
	// patterns are the texts searched for; a pattern with fold set is stored in
	// lower case and matched without regard to ASCII case. They are substrings of
	// text, in order, which the candidates point into.
	patterns []string
	fold     []bool
	text     string
}

// candidate is one pattern indexed under one of its grams. It holds the 8 bytes of
// the pattern from the gram on (fewer at its end), so that a candidate whose gram
// merely occurs in the text (in a line holding a secret, the grams of every other
// form of it and of values sharing its beginning do) is rejected without reading
// the pattern: a line with a secret checks dozens of candidates, and each pattern
// read is a cache miss in the pipeline.
type candidate struct {
	// key is the pattern's bytes from its gram on, at most 8, as a little-endian
	// integer with every byte ORed with 0x20 (ASCII lower case, and some other
	// bytes folded together: a filter, never a rejection of a match). Its low 4
	// bytes are the folded gram; keyMask says which bytes it holds.
	key uint64
	// tail is the pattern's last 8 bytes, folded as key is, when it holds more
	// than 8 bytes from the gram on (rest > 8): occurrence tests the text's bytes
	// where they would end before it reads the pattern. The candidates that pass
	// key and are not the text's are mostly patterns with a common beginning (the
	// header of every JWT, the forms of one value up to its first escaped
	// character), and each was a cache miss on its pattern: in bench-redact this
	// leaves 2.4k of 5.7k full comparisons per 65k lines, 5 ns per line less.
	tail uint64
	// at is where the pattern starts in matcher.text: a candidate leads to its
	// bytes without a read of the pattern's string header.
	at uint32
	// info is rest<<5 | fold<<4 | offset: the pattern's bytes from the gram on
	// (len(pattern) - offset, below maxPatternLen), whether it is folded, and
	// where the gram starts in it (below stride, at most 9). A candidate takes 24
	// bytes: a line holding a secret reads dozens of them, and 100 secrets index
	// 13k.
	info uint32
}

// The offset takes 4 bits of candidate.info: a stride over 16 does not compile.
var _ [16 - maxStride]struct{}

// maxPatternLen bounds a pattern's length, as candidate.info holds it (128 MiB:
// more than Vault stores in a secret, and more than its forms would leave room
// for in memory).
const maxPatternLen = 1 << 27

func (c *candidate) offset() int  { return int(c.info & 15) }
func (c *candidate) folded() bool { return c.info&16 != 0 }
func (c *candidate) rest() int    { return int(c.info >> 5) }

// keyMask has 0xff for each byte key holds: min(rest, 8) of them.
func (c *candidate) keyMask() uint64 { return ^uint64(0) >> (64 - 8*min(c.info>>5, 8)) }

// pattern returns c's pattern in m.
func (m *matcher) pattern(c *candidate) string {
	return m.text[c.at : int(c.at)+c.offset()+c.rest()]
}

// fold8 folds the bytes of a key: see candidate.
const fold8 = 0x2020202020202020

// keyAt returns the bytes of s from i on, at most 8, as a folded little-endian
// integer (see candidate.key), and the mask of the bytes it holds.
func keyAt(s string, i int) (key, mask uint64) {
	if i+8 <= len(s) {
		return load64(s[i:]) | fold8, ^uint64(0)
	}
	for k := 0; i+k < len(s); k++ {
		key |= uint64(s[i+k]) << (8 * k)
		mask |= 0xff << (8 * k)
	}
	return (key | fold8) & mask, mask
}

// load64 returns the first 8 bytes of t as a little-endian integer.
func load64(t string) uint64 {
	t = t[:8]
	return uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
		uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
}

// span is a half-open byte range [start, end) of a text.
type span struct{ start, end int }

// gramAt returns the 4 bytes of s at i as a little-endian integer, folded.
func gramAt(s string, i int) uint32 {
	t := s[i : i+gramLen]
	return (uint32(t[0]) | uint32(t[1])<<8 | uint32(t[2])<<16 | uint32(t[3])<<24) | foldGram
}

// pow2 returns the power of two at least n, clamped to [lo, hi] (powers of two).
func pow2(n, lo, hi int) int {
	return min(max(1<<bits.Len(uint(max(n-1, 0))), lo), hi)
}

// newMatcher builds a matcher for forms, which must be distinct (see dedupe) and at
// least minPatternLen bytes each. It returns nil for no forms.
func newMatcher(forms []form) *matcher {
	if len(forms) == 0 {
		return nil
	}
	patterns := make([]string, len(forms))
	fold := make([]bool, len(forms))
	minLen, total := len(forms[0].text), 0
	for i, f := range forms {
		if len(f.text) < minPatternLen || len(f.text) >= maxPatternLen {
			panic("redact: pattern shorter than minPatternLen or not below maxPatternLen")
		}
		fold[i] = f.fold
		minLen = min(minLen, len(f.text))
		total += len(f.text)
	}
	if total > math.MaxUint32 {
		panic("redact: patterns of more than 4 GiB")
	}
	buf := make([]byte, 0, total)
	at := make([]uint32, len(forms))
	for i, f := range forms {
		at[i] = uint32(len(buf))
		buf = append(buf, f.text...)
		if f.fold {
			lowerInPlace(buf[at[i]:])
		}
	}
	text := strarena.String(buf)
	for i, f := range forms {
		patterns[i] = text[at[i] : int(at[i])+len(f.text)]
	}
	// Strides 3 to 5, or 10: the loops of strides 5 and 10 are unrolled (see
	// firstHit), and a stride of 6 to 9 would probe with the slower one.
	stride := min(minLen-gramLen+1, cutStride)
	if minLen-gramLen+1 >= maxStride {
		stride = maxStride
	}
	m := &matcher{minLen: min(minLen, cutMin), stride: stride, patterns: patterns, fold: fold, text: text}

	n := len(patterns) * stride
	// The filters are sized for stride cutStride at most (see maxStride).
	nf := len(patterns) * min(stride, cutStride)
	// The first bitset takes 64 B to 2 MiB, the second 512 B to 512 KiB.
	firstBits := pow2(nf*firstBitsPerGram, 1<<9, 1<<24)
	m.first = make([]uint64, firstBits/64)
	secondWords := pow2(nf*secondBitsPerGram/64, 1<<6, 1<<16)
	m.second = make([]uint64, secondWords)
	m.keys = make([]uint64, secondWords)
	m.secondMask = uint64(secondWords - 1)
	nb := pow2(n, 1<<4, 1<<20)
	m.bucketShift = uint(32 - bits.TrailingZeros(uint(nb)))
	m.bucket = make([]uint32, nb+1)

	for _, p := range m.patterns {
		for off := range stride {
			g := gramAt(p, off)
			w, bit := firstBit(g, len(m.first))
			m.first[w] |= bit
			w2, mask := m.secondWord(g)
			m.second[w2] |= mask
			m.bucket[m.bucketOf(g)+1]++
		}
	}
	for i := 1; i < len(m.bucket); i++ {
		m.bucket[i] += m.bucket[i-1]
	}
	m.cands = make([]candidate, n)
	next := make([]uint32, nb)
	copy(next, m.bucket[:nb])
	for pi, p := range m.patterns {
		for off := range stride {
			g := gramAt(p, off)
			b := m.bucketOf(g)
			key, mask := keyAt(p, off)
			c := candidate{key: key, at: at[pi], info: uint32(len(p)-off)<<5 | uint32(off)}
			if m.fold[pi] {
				c.info |= 16
			}
			if c.rest() > 8 {
				c.tail, _ = keyAt(p, len(p)-8)
			}
			m.cands[next[b]] = c
			if mask != ^uint64(0) {
				key = uint64(g)
				m.shortKeys = true
			}
			w, bits := m.keyWord(key)
			m.keys[w] |= bits
			next[b]++
		}
	}
	return m
}

// firstBit returns the word of a first filter of n words (a power of two) and the
// bit in it that gram g sets.
func firstBit(g uint32, n int) (word int, bit uint64) {
	h := uint64(g) * hashFirst
	return int(h>>32) & (n - 1), 1 << (h >> 58)
}

// secondWord returns the word of second and the two bits of it that gram g sets.
func (m *matcher) secondWord(g uint32) (word, mask uint64) {
	x := uint64(g) * hashSecond
	return (x >> 48) & m.secondMask, 1<<((x>>36)&63) | 1<<((x>>42)&63)
}

func (m *matcher) bucketOf(g uint32) uint32 { return (g * hashBucket) >> m.bucketShift }

// keyWord returns the word of keys and the two bits of it that key k sets.
func (m *matcher) keyWord(k uint64) (word, mask uint64) {
	x := k * hashKey
	return (x >> 48) & m.secondMask, 1<<((x>>36)&63) | 1<<((x>>42)&63)
}

// keyMayMatch reports whether probe p of s, whose gram g passed the first
// filter, passes keys: whether a candidate's key may be the text's at p. With
// fewer than 8 bytes left from p (a prefix cut at the end of s may end before
// its candidate's key does) it does not filter.
func (m *matcher) keyMayMatch(s string, p int, g uint32) bool {
	if p+8 > len(s) {
		return true
	}
	w, mask := m.keyWord(load64(s[p:]) | fold8)
	if m.keys[w]&mask == mask {
		return true
	}
	if !m.shortKeys {
		return false
	}
	w, mask = m.keyWord(uint64(g))
	return m.keys[w]&mask == mask
}

// mayMatch reports whether gram g passes both filters: whether it may be indexed.
func (m *matcher) mayMatch(g uint32) bool {
	if w, bit := firstBit(g, len(m.first)); m.first[w]&bit == 0 {
		return false
	}
	w, mask := m.secondWord(g)
	return m.second[w]&mask == mask
}

// Warming the filters: see warm.
const (
	// warmMaxLines caps the filters warmed, in cache lines (256 KiB): larger
	// ones would not stay in a core's cache for the batch anyway.
	warmMaxLines = 4096
	// warmProbesPerText is how many probes a text is counted for when deciding
	// whether a batch probes the filters enough to warm them: a 100-byte line
	// takes 20 at stride 5.
	warmProbesPerText = 20
)

// warmLines returns the number of cache lines warm reads, 0 if it does not.
func (m *matcher) warmLines() int {
	n := (len(m.first) + len(m.keys)) / 8
	if n > warmMaxLines {
		return 0
	}
	return n
}

// warm reads one word of every cache line of both filters, in order, and returns
// them XORed (so that the reads stay). Between two batches the rest of the pipeline
// (the reader, the parser, the exporter's encoding and compression) evicts the
// filters from the core's caches, and the probes of a batch's first lines would
// then fetch them a line at a time, each fetch waiting for the one before at the
// block's branch; read in order they stream in, the hardware prefetching ahead.
// Sink calls it before a batch large enough to probe most of the filters' lines.
//
//go:noinline
func (m *matcher) warm() uint64 {
	var x uint64
	for i := 0; i < len(m.first); i += 8 {
		x ^= m.first[i]
	}
	for i := 0; i < len(m.keys); i += 8 {
		x ^= m.keys[i]
	}
	return x
}

// redact returns s with the union of all occurrences of the patterns replaced by
// Marker, and whether anything was replaced. A replaced text's string comes from a,
// or from an allocation of its own when a is nil; nothing else allocates, unless s
// holds a line break. See find for what an occurrence is.
func (m *matcher) redact(s string, a *strarena.Arena) (string, bool) {
	if len(s) < m.minLen {
		return s, false
	}
	var spans [4]span
	p, found, tail := m.firstHit(s, spans[:0])
	broken := strings.IndexByte(s, '\n') >= 0
	if p < 0 && !broken {
		return s, false
	}
	if p >= 0 && !tail { // after the tail probe there is none
		found = m.find(s, p+m.stride, found)
	}
	if broken {
		found = m.findBroken(s, found)
	}
	if len(found) == 0 {
		return s, false
	}
	return replaceSpans(s, found, a), true
}

// firstHit returns the first probe position where a pattern occurs, with the
// occurrences found there appended to found, and whether the probe is one of the
// tail's; or -1 and found. It is the hot path: on text without secrets nearly every
// probe stops at the first filter.
func (m *matcher) firstHit(s string, found []span) (int, []span, bool) {
	first := m.first
	wmask := len(first) - 1 // first is never empty: this drops its bounds checks
	if wmask < 0 {
		return -1, found, false
	}
	// Strides 5 and 10 probe five at a time (probeGrid); the others, and what is
	// left at the end, one at a time.
	q, p := -1, 0
	switch m.stride {
	case 5: // the shortest pattern has 8 to 12 bytes
		q, found, p = probeGrid[[5]byte](m, s, found)
	case 10: // 13 bytes or more
		q, found, p = probeGrid[[10]byte](m, s, found)
	}
	if q >= 0 {
		return q, found, false
	}
	for ; p <= len(s)-gramLen; p += m.stride {
		x := gram64(s[p:]) * hashFirst
		if first[int(x>>32)&wmask]&(1<<(x>>58)) == 0 {
			continue
		}
		if f := m.occurrencesAt(s, p, found); len(f) > len(found) {
			return p, f, false
		}
	}
	if p = m.tailProbe(len(s)); p >= 0 {
		if w, bit := firstBit(gramAt(s, p), len(first)); first[w]&bit != 0 {
			if f := m.occurrencesAt(s, p, found); len(f) > len(found) {
				return p, f, true
			}
		}
	}
	return -1, found, false
}

// tailProbe returns where the tail probe of a text of n bytes is, or -1 when the
// stride needs none (see matcher).
func (m *matcher) tailProbe(n int) int {
	if m.stride <= cutStride || n < cutMin {
		return -1
	}
	return n - cutMin
}

// probeGrid runs the grid's probes five at a time, their filter words ORed, for the
// stride len(S): one bounds check and one branch for five strides of text. The
// stride is the length of an array type so that each stride gets code of its own
// with it a constant, which drops the grams' bounds checks (54 against 90 ns per
// line with it in a variable). It returns the first probe where a pattern occurs,
// with the occurrences found there appended to found, or -1 and where the grid's
// remaining probes start.
func probeGrid[S [5]byte | [10]byte](m *matcher, s string, found []span) (int, []span, int) {
	var z S
	const g = gramLen
	st := len(z) // a constant in each instantiation: S's shape is its own
	first := m.first
	wmask := len(first) - 1 // first is never empty: this drops its bounds checks
	if wmask < 0 {
		return -1, found, 0
	}
	p := 0
	for ; p+4*st+g <= len(s); p += 5 * st {
		t := s[p : p+4*st+g]
		x0 := gram64(t[0:]) * hashFirst
		x1 := gram64(t[st:]) * hashFirst
		x2 := gram64(t[2*st:]) * hashFirst
		x3 := gram64(t[3*st:]) * hashFirst
		x4 := gram64(t[4*st:]) * hashFirst
		hit := first[int(x0>>32)&wmask]>>(x0>>58) |
			first[int(x1>>32)&wmask]>>(x1>>58) |
			first[int(x2>>32)&wmask]>>(x2>>58) |
			first[int(x3>>32)&wmask]>>(x3>>58) |
			first[int(x4>>32)&wmask]>>(x4>>58)
		if hit&1 == 0 {
			continue
		}
		if q, f := m.hitIn(s, p, found); q >= 0 {
			return q, f, p
		}
	}
	return -1, found, p
}

// hitIn checks the five grid probes from p, of which one passed the first filter,
// and returns the first where a pattern occurs with the occurrences found there
// appended to found, or -1.
func (m *matcher) hitIn(s string, p int, found []span) (int, []span) {
	for q := p; q <= p+4*m.stride; q += m.stride {
		if w, bit := firstBit(gramAt(s, q), len(m.first)); m.first[w]&bit == 0 {
			continue
		}
		if f := m.occurrencesAt(s, q, found); len(f) > len(found) {
			return q, f
		}
	}
	return -1, found
}

// gram64 returns the first 4 bytes of t as a little-endian integer, folded (gramAt
// for the probe loop, where its bounds are known).
func gram64(t string) uint64 {
	return uint64(uint32(t[0])|uint32(t[1])<<8|uint32(t[2])<<16|uint32(t[3])<<24) | foldGram
}

// mayHold reports whether s holds an occurrence of a pattern or, anywhere, a prefix
// of one of at least cutMin bytes. It does not look for patterns split by line
// breaks. It never allocates.
func (m *matcher) mayHold(s string) bool {
	if len(s) < m.minLen {
		return false
	}
	// A prefix of cutMin bytes anywhere holds a gram every cutStride bytes.
	for p := 0; p+gramLen <= len(s); p += min(m.stride, cutStride) {
		g := gramAt(s, p)
		if !m.mayMatch(g) {
			continue
		}
		b := m.bucketOf(g)
		for _, c := range m.cands[m.bucket[b]:m.bucket[b+1]] {
			// Only the gram: a prefix found here may end before the key does.
			if uint32(c.key) != g {
				continue
			}
			start := p - c.offset()
			if start < 0 {
				continue
			}
			pat := m.pattern(&c)
			n := min(len(pat), len(s)-start)
			if n < len(pat) && n < cutMin {
				continue
			}
			if k := commonPrefix(s[start:start+n], pat[:n], c.folded()); k == len(pat) || k >= cutMin {
				return true
			}
		}
	}
	return false
}

// commonPrefix returns the length of the common prefix of s and p (of equal
// length), comparing s's ASCII letters in lower case when fold is set (p is then
// lower case).
func commonPrefix(s, p string, fold bool) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return i
		}
	}
	return len(s)
}

// occurrencesAt appends to found the occurrences that probe p finds (see find),
// once its gram has passed the first filter.
func (m *matcher) occurrencesAt(s string, p int, found []span) []span {
	g := gramAt(s, p)
	if !m.keyMayMatch(s, p, g) {
		return found
	}
	b := m.bucketOf(g)
	key, mask := keyAt(s, p)
	cands := m.cands[m.bucket[b]:m.bucket[b+1]]
	for i := range cands {
		c := &cands[i]
		// The bytes both keys hold must be equal; nearly every key holds 8.
		diff := (key ^ c.key) & mask
		if c.info < 8<<5 {
			diff &= c.keyMask()
		}
		if diff != 0 {
			continue
		}
		if sp, ok := m.occurrence(s, p, c); ok {
			found = append(found, sp)
		}
	}
	return found
}

// occurrence checks candidate c at probe p: the pattern whole, or — at the end of s —
// a prefix of it of at least cutMin bytes.
func (m *matcher) occurrence(s string, p int, c *candidate) (span, bool) {
	start := p - c.offset()
	if start < 0 {
		return span{}, false
	}
	end := p + c.rest() // start + len(pattern)
	if c.rest() > 8 && end <= len(s) {
		if t, _ := keyAt(s, end-8); t != c.tail {
			return span{}, false
		}
	}
	pat := m.pattern(c)
	if end > len(s) {
		end = len(s)
		if end-start < cutMin {
			return span{}, false
		}
		pat = pat[:end-start]
	}
	if c.folded() {
		if !equalFoldLower(s[start:end], pat) {
			return span{}, false
		}
	} else if s[end-1] != pat[len(pat)-1] || s[start:end] != pat {
		return span{}, false
	}
	return span{start, end}, true
}

// equalFoldLower reports whether s equals lower, an ASCII lower-case string of the
// same length, without regard to ASCII case. It compares from the end, 8 bytes at
// a time: the candidates of one gram are often forms of values with a common
// beginning (the header of every JWT, a token's prefix), which differ only further
// on.
func equalFoldLower(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	n := len(s)
	for ; n >= 8; n -= 8 {
		if x, y := load64(s[n-8:]), load64(lower[n-8:]); x != y && lower8(x) != y {
			return false
		}
	}
	for i := n - 1; i >= 0; i-- {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// lower8 maps the ASCII upper-case letters among the 8 bytes of x to lower case.
func lower8(x uint64) uint64 {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	t := x &^ high                // each byte's low 7 bits: no sum below carries
	ge := t + (0x80-'A')*ones     // bit 7 set where t >= 'A'
	gt := t + (0x80-'Z'-1)*ones   // bit 7 set where t > 'Z'
	upper := ge &^ gt &^ x & high // 'A' to 'Z', and not a byte of 0x80 or more
	return x | upper>>2           // bit 7 moved to bit 5: + 'a' - 'A'
}

// find appends to found every occurrence at grid probes from p0 on and at the
// tail probe (there is none before): each whole pattern (exactly, or without regard
// to ASCII case for a folded one), and a prefix of at least cutMin bytes of one at
// the end of s.
func (m *matcher) find(s string, p0 int, found []span) []span {
	for p := p0; p+gramLen <= len(s); p += m.stride {
		if w, bit := firstBit(gramAt(s, p), len(m.first)); m.first[w]&bit != 0 {
			found = m.occurrencesAt(s, p, found)
		}
	}
	if p := m.tailProbe(len(s)); p >= 0 {
		if w, bit := firstBit(gramAt(s, p), len(m.first)); m.first[w]&bit != 0 {
			found = m.occurrencesAt(s, p, found)
		}
	}
	return found
}

// findBroken appends to found the occurrences in s with line breaks ("\n" or
// "\r\n") inside them: a value split over two lines of one record, base64 or hex
// wrapped at any width (MIME, PEM bodies). It searches s with every line break
// removed and maps what it finds back to s.
func (m *matcher) findBroken(s string, found []span) []span {
	// t is s without its line breaks; cuts[i] says that before t[cuts[i].at] the
	// breaks removed so far total cuts[i].removed bytes.
	type cut struct{ at, removed int }
	t := make([]byte, 0, len(s))
	var cuts []cut
	removed := 0
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			t = append(t, s[i:]...)
			break
		}
		end, brk := i+j, 1
		if end > i && s[end-1] == '\r' {
			end, brk = end-1, 2
		}
		t = append(t, s[i:end]...)
		removed += brk
		if len(cuts) > 0 && cuts[len(cuts)-1].at == len(t) {
			cuts[len(cuts)-1].removed = removed
		} else {
			cuts = append(cuts, cut{len(t), removed})
		}
		i = i + j + 1
	}
	if len(t) < m.minLen {
		return found
	}
	// pos maps an index of t to the index of the same byte in s.
	pos := func(ti int) int {
		k := sort.Search(len(cuts), func(k int) bool { return cuts[k].at > ti })
		if k == 0 {
			return ti
		}
		return ti + cuts[k-1].removed
	}
	for _, sp := range m.find(unsafe.String(unsafe.SliceData(t), len(t)), 0, nil) {
		found = append(found, span{pos(sp.start), pos(sp.end-1) + 1})
	}
	return found
}

// replaceSpans replaces the union of spans (in any order, overlapping or touching)
// with Marker, in a string from a (or of its own when a is nil).
func replaceSpans(s string, spans []span, a *strarena.Arena) string {
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j].start < spans[j-1].start; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	// Merge them in place, then size the result.
	merged := spans[:0]
	n := len(s)
	for i := 0; i < len(spans); {
		sp := spans[i]
		for i++; i < len(spans) && spans[i].start <= sp.end; i++ {
			sp.end = max(sp.end, spans[i].end)
		}
		merged = append(merged, sp)
		n += len(Marker) - (sp.end - sp.start)
	}
	var b []byte
	if a != nil {
		b = a.Make(n)
	} else {
		b = make([]byte, n)
	}
	at, k := 0, 0
	for _, sp := range merged {
		k += copy(b[k:], s[at:sp.start])
		k += copy(b[k:], Marker)
		at = sp.end
	}
	copy(b[k:], s[at:])
	return strarena.String(b)
}
