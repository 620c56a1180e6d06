package lokiexporter

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/pipeline"
)

// LevelLabel is the label carrying a record's level.
const LevelLabel = "level"

// fallbackLabel is given to a stream that would have no label at all, which Loki
// rejects ("at least one label pair is required per stream") together with the rest of
// the request.
var fallbackLabel = label{name: "service_name", value: "unknown_service"}

type label struct{ name, value string }

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// sanitizeLabelName maps s to a valid label name: every other character (rune) becomes
// '_', and a leading digit or an empty name gets a '_' prefix.
func sanitizeLabelName(s string) string {
	if validLabelName(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		b.WriteByte('_')
	}
	for _, r := range s {
		if r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// appendLabelString appends ls in Loki's stream selector syntax, {a="b", c="d"}, with
// values quoted as Go string literals (which LogQL's parser unquotes). ls must hold
// valid names.
func appendLabelString(dst []byte, ls []label) []byte {
	dst = append(dst, '{')
	for i, l := range ls {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, l.name...)
		dst = append(dst, '=')
		dst = strconv.AppendQuote(dst, l.value)
	}
	return append(dst, '}')
}

// buildLabels merges label sources in priority order (earlier wins on a name clash,
// after sanitising), drops empty values, sorts by name and formats the result.
func buildLabels(sources ...[]label) string {
	n := 0
	for _, s := range sources {
		n += len(s)
	}
	merged := make([]label, 0, n)
	seen := make(map[string]struct{}, n)
	for _, src := range sources {
		for _, l := range src {
			if l.value == "" {
				continue
			}
			name := sanitizeLabelName(l.name)
			if _, dup := seen[name]; dup {
				continue
			}
			seen[name] = struct{}{}
			merged = append(merged, label{name: name, value: labelValue(l.value)})
		}
	}
	if len(merged) == 0 {
		merged = append(merged, fallbackLabel)
	}
	sort.Slice(merged, func(i, j int) bool { return merged[i].name < merged[j].name })
	return string(appendLabelString(nil, merged))
}

// streamKey identifies a Loki stream: records of one pipeline stream at one level.
type streamKey struct {
	stream *pipeline.Stream
	level  pipeline.Level
}

// maxCachedStreams bounds the label cache; past it the cache starts over, so streams
// that are gone do not stay pinned.
const maxCachedStreams = 4096

// labelCache formats and remembers the label string of each streamKey.
type labelCache struct {
	static []label // config labels, sanitised
	m      sync.Map
	n      atomic.Int64
	// invalidUTF8 counts label strings built from values with invalid UTF-8.
	invalidUTF8 prometheus.Counter
}

func newLabelCache(static map[string]string, invalidUTF8 prometheus.Counter) *labelCache {
	c := &labelCache{invalidUTF8: invalidUTF8}
	for k, v := range static {
		c.static = append(c.static, label{name: k, value: v})
	}
	sort.Slice(c.static, func(i, j int) bool { return c.static[i].name < c.static[j].name })
	return c
}

func (c *labelCache) get(k streamKey) string {
	if v, ok := c.m.Load(k); ok {
		return v.(string)
	}
	var own []label
	if k.stream != nil {
		own = make([]label, len(k.stream.Labels))
		for i, l := range k.stream.Labels {
			own[i] = label{name: l.Name, value: l.Value}
		}
	}
	var lvl []label
	if k.level != pipeline.LevelUnknown {
		lvl = []label{{name: LevelLabel, value: string(k.level)}}
	}
	s := buildLabels(own, lvl, c.static)
	if c.invalidUTF8 != nil && !validLabels(own) {
		c.invalidUTF8.Inc()
	}
	if c.n.Add(1) > maxCachedStreams {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(k, s)
	return s
}

// labelValueReplacement stands for invalid UTF-8 and U+FFFD in label values: Loki's
// label parser refuses U+FFFD ("invalid UTF-8 rune"), and with it the whole push.
const labelValueReplacement = "?"

// labelValue returns v with each run of invalid UTF-8, and each U+FFFD, replaced by
// labelValueReplacement.
func labelValue(v string) string {
	if utf8.ValidString(v) && !strings.ContainsRune(v, utf8.RuneError) {
		return v
	}
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\uFFFD", labelValueReplacement)
}

// validLabels reports whether every name and value of ls is valid UTF-8 without
// U+FFFD.
func validLabels(ls []label) bool {
	for _, l := range ls {
		if !utf8.ValidString(l.name) || labelValue(l.value) != l.value {
			return false
		}
	}
	return true
}

// metadataName returns a valid structured metadata name for s, without allocating in
// the usual case of an already valid name.
func metadataName(s string) string {
	if validLabelName(s) {
		return s
	}
	return sanitizeLabelName(s)
}
