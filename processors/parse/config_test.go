package parse

import (
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestApplyDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	want := Config{Format: FormatAuto, TimeFormat: TimeFormatAuto, TraceparentField: DefaultTraceparentField, CrashLevel: CrashLevelAuto}
	if c != want {
		t.Errorf("ApplyDefaults() = %+v, want %+v", c, want)
	}
	c = Config{Format: FormatJSON, TimeFormat: TimeFormatUnix, TraceparentField: "tp", LevelField: "sev", CrashLevel: CrashLevelNone}
	kept := c
	c.ApplyDefaults()
	if c != kept {
		t.Errorf("ApplyDefaults() changed set fields: %+v, want %+v", c, kept)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem, in order
	}{
		{"zero value", Config{}, nil},
		{"defaults", func() Config { var c Config; c.ApplyDefaults(); return c }(), nil},
		{"every format", Config{Format: FormatPlain}, nil},
		{"regex ok", Config{Format: FormatRegex, Pattern: `(?P<level>\w+)`}, nil},
		{"layout ok", Config{TimeFormat: "02/Jan/2006:15:04:05 -0700"}, nil},
		{"unknown format", Config{Format: "xml"},
			[]string{`format: unknown format "xml"; use one of auto, json, logfmt, regex, plain`}},
		{"regex without pattern", Config{Format: FormatRegex},
			[]string{"pattern: required when format is regex"}},
		{"invalid pattern", Config{Format: FormatRegex, Pattern: `(?P<level>\w+`},
			[]string{"pattern: invalid regular expression: error parsing regexp"}},
		{"pattern without named group", Config{Format: FormatRegex, Pattern: `(\w+) (?P<msg>.*)`},
			[]string{`pattern: "(\\w+) (?P<msg>.*)" has no named group level, time, trace_id, span_id, request_id or traceparent; add one, such as (?P<level>\w+)`}},
		{"pattern without regex format", Config{Format: FormatJSON, Pattern: `(?P<level>\w+)`},
			[]string{`pattern: only used when format is regex, but format is "json"`}},
		{"pattern with default format", Config{Pattern: `(?P<level>\w+)`},
			[]string{`pattern: only used when format is regex, but format is "auto"`}},
		{"crash level", Config{CrashLevel: CrashLevelFatal}, nil},
		{"unknown crash level", Config{CrashLevel: "loud"},
			[]string{`crash_level: unknown value "loud"; use one of auto, error, fatal, none`}},
		{"bad time format", Config{TimeFormat: "iso"},
			[]string{`time_format: "iso" is not auto, rfc3339, unix, unix_ms, unix_us, unix_ns or a Go time layout`}},
		{"layout without year", Config{TimeFormat: "15:04:05"},
			[]string{`time_format: time layout "15:04:05" has no year`}},
		{"bad field names", Config{LevelField: ".level", TimeField: "a..b", TraceIDField: "a.b.c.d.e", SpanIDField: "s.", RequestIDField: "a.b.c.d", TraceparentField: "tp"},
			[]string{
				`level_field: ".level" has an empty part between dots`,
				`time_field: "a..b" has an empty part between dots`,
				`trace_id_field: "a.b.c.d.e" has 4 dots; at most 3 are supported`,
				`span_id_field: "s." has an empty part between dots`,
			}},
		{"all at once", Config{Format: "yaml", TimeFormat: "nope", LevelField: "."},
			[]string{"format: unknown format", "time_format:", "level_field:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate(&p)
			var got []string
			if err := p.Err(); err != nil {
				got = err.(*confval.Error).Problems
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() problems = %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestValidateUsesPath(t *testing.T) {
	var p confval.Problems
	c := Config{Format: "xml"}
	c.Validate(p.At("logs.sources[0].parse"))
	if err := p.Err(); err == nil || !strings.HasPrefix(err.Error(), "logs.sources[0].parse.format: ") {
		t.Errorf("error = %v, want it under logs.sources[0].parse.format", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	p, err := New(Config{Format: FormatRegex})
	if err == nil || p != nil {
		t.Fatalf("New() = %v, %v; want a configuration error", p, err)
	}
	if !confval.IsConfigError(err) {
		t.Errorf("error %v is not a configuration error", err)
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	p := mustNew(t, Config{})
	if got := parsed(p, `{"traceparent":"`+tp+`"}`); got.Trace != tid {
		t.Errorf("default traceparent field not used: %+v", got)
	}
}
