package parse

import (
	"math/bits"
	"regexp"
	"strings"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// Parser fills a record's fields from its line.
type Parser interface {
	// Parse sets r.Level, r.Time, r.TraceID, r.SpanID and r.RequestID from what it
	// finds in line, each only when found and usable; it never fails, and leaves the
	// fields it does not find as they were. It does not keep line or r. It is safe
	// for concurrent use.
	Parse(line string, r *pipeline.Record)
}

// New returns the Parser cfg describes. It applies the defaults to a copy of cfg and
// returns a configuration error (confval.IsConfigError) when cfg is invalid.
func New(cfg Config) (Parser, error) {
	cfg.ApplyDefaults()
	var problems confval.Problems
	cfg.Validate(&problems)
	if err := problems.Err(); err != nil {
		return nil, err
	}
	tp, err := newTimeParser(cfg.TimeFormat)
	if err != nil {
		return nil, err
	}
	p := &parser{time: tp, crash: cfg.CrashLevel}
	switch cfg.Format {
	case FormatAuto:
		p.mode = modeAuto
	case FormatJSON:
		p.mode = modeJSON
	case FormatLogfmt:
		p.mode = modeLogfmt
	case FormatPlain:
		p.mode = modePlain
	case FormatRegex:
		p.mode = modeRegex
		p.re = regexp.MustCompile(cfg.Pattern) // validated above
		var lists [numKinds][]string
		for _, g := range regexGroups {
			if i := p.re.SubexpIndex(g.name); i >= 0 {
				lists[g.kind] = []string{g.name}
				p.groups = append(p.groups, i)
			}
		}
		p.fields = newFieldSet(lists)
		return p, nil
	}
	p.fields = newFieldSet([numKinds][]string{
		kindLevel:       orDefault(cfg.LevelField, defaultLevelFields),
		kindTime:        orDefault(cfg.TimeField, defaultTimeFields),
		kindTrace:       orDefault(cfg.TraceIDField, defaultTraceIDFields),
		kindSpan:        orDefault(cfg.SpanIDField, defaultSpanIDFields),
		kindRequest:     orDefault(cfg.RequestIDField, defaultRequestIDFields),
		kindTraceparent: {cfg.TraceparentField},
	})
	return p, nil
}

func orDefault(name string, defaults []string) []string {
	if name != "" {
		return []string{name}
	}
	return defaults
}

type mode uint8

const (
	modeAuto mode = iota
	modeJSON
	modeLogfmt
	modePlain
	modeRegex
)

// parser implements Parser for every format. It is immutable after New.
type parser struct {
	mode   mode
	fields fieldSet
	time   timeParser
	// re and groups (the subexpression index of each name in fields) serve format
	// regex.
	re     *regexp.Regexp
	groups []int
	// crash is Config.CrashLevel.
	crash string
}

var _ Parser = (*parser)(nil)

// Parse implements Parser.
func (p *parser) Parse(line string, r *pipeline.Record) {
	if len(line) >= needsDecode {
		return
	}
	switch p.mode {
	case modeAuto:
		var sl slots
		if p.scanJSON(line, &sl) {
			x := p.resolve(line, &sl, jsonValues, r)
			x.apply(r)
			return
		}
		if looksLogfmt(line) && p.scanLogfmt(line, &sl, true) {
			x := p.resolve(line, &sl, textValues, r)
			x.apply(r)
			return
		}
		p.parsePlain(line, r)
	case modeJSON:
		var sl slots
		if p.scanJSON(line, &sl) {
			x := p.resolve(line, &sl, jsonValues, r)
			x.apply(r)
		}
	case modeLogfmt:
		var sl slots
		p.scanLogfmt(line, &sl, false)
		x := p.resolve(line, &sl, textValues, r)
		x.apply(r)
	case modePlain:
		p.parsePlain(line, r)
	case modeRegex:
		p.parseRegex(line, r)
	}
}

// looksLogfmt is a quick test that the first word of line is a key=value pair.
func looksLogfmt(line string) bool {
	i := 0
	for i < len(line) && line[i] <= ' ' {
		i++
	}
	start := i
	for i < len(line) && line[i] > ' ' && line[i] != '"' {
		if line[i] == '=' {
			return i > start
		}
		i++
	}
	return false
}

func (p *parser) parseRegex(line string, r *pipeline.Record) {
	m := p.re.FindStringSubmatchIndex(line)
	if m == nil {
		return
	}
	var sl slots
	for c, g := range p.groups {
		if m[2*g] >= 0 {
			p.fields.set(&sl, 1<<c, 0, m[2*g], m[2*g+1], false)
		}
	}
	x := p.resolve(line, &sl, rawValues, r)
	x.apply(r)
}

// trailingZeros returns the number of the lowest bit set in m, which must not be 0:
// an index into fieldSet's tables without a bounds check.
func trailingZeros(m uint64) int { return bits.TrailingZeros64(m) & 63 }

// countDots is strings.Count(s, ".") without the generic path.
func countDots(s string) uint {
	if strings.IndexByte(s, '.') < 0 {
		return 0
	}
	return uint(strings.Count(s, "."))
}
