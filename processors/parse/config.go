package parse

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/outrider-dev/outrider/internal/confval"
)

// The formats Config.Format accepts.
const (
	FormatAuto   = "auto"
	FormatJSON   = "json"
	FormatLogfmt = "logfmt"
	FormatRegex  = "regex"
	FormatPlain  = "plain"
)

// The time formats Config.TimeFormat accepts besides a Go time layout.
const (
	TimeFormatAuto    = "auto"
	TimeFormatRFC3339 = "rfc3339"
	TimeFormatUnix    = "unix"
	TimeFormatUnixMs  = "unix_ms"
	TimeFormatUnixUs  = "unix_us"
	TimeFormatUnixNs  = "unix_ns"
)

// The default field names, tried in this order when the corresponding Config field
// is empty.
var (
	defaultLevelFields     = []string{"level", "lvl", "severity", "levelname", "log.level", "loglevel"}
	defaultTimeFields      = []string{"time", "ts", "timestamp", "@timestamp", "t"}
	defaultTraceIDFields   = []string{"trace_id", "traceId", "traceID", "trace.id", "otelTraceID"}
	defaultSpanIDFields    = []string{"span_id", "spanId", "spanID", "span.id", "otelSpanID"}
	defaultRequestIDFields = []string{"request_id", "requestId", "requestID", "req_id", "x_request_id", "http.request_id"}
)

// The values Config.CrashLevel accepts.
const (
	CrashLevelAuto  = "auto"
	CrashLevelError = "error"
	CrashLevelFatal = "fatal"
	CrashLevelNone  = "none"
)

// DefaultTraceparentField is the default Config.TraceparentField.
const DefaultTraceparentField = "traceparent"

// maxDots is how many dots a field name may have (each dot may separate nested
// objects, so the number of ways to match a name doubles with each).
const maxDots = 3

// Config says how to read a source's lines. The zero value, after ApplyDefaults,
// detects the format of each line and tries the default field names.
type Config struct {
	// Format is "auto" (default), "json", "logfmt", "regex" or "plain"; see the
	// package documentation.
	Format string `yaml:"format"`
	// Pattern is a regular expression (RE2 syntax) with named groups, required for
	// format regex. The groups level, time, trace_id, span_id, request_id and
	// traceparent are used; any other group (message, …) is ignored.
	Pattern string `yaml:"pattern"`
	// LevelField names the level field; empty tries level, lvl, severity,
	// levelname, log.level and loglevel.
	LevelField string `yaml:"level_field"`
	// TimeField names the time field; empty tries time, ts, timestamp, @timestamp
	// and t.
	TimeField string `yaml:"time_field"`
	// TimeFormat is "auto" (default): RFC 3339 with or without fraction and zone
	// (a space may stand for the T, a comma for the dot, no zone means UTC), and unix
	// seconds, milliseconds, microseconds or nanoseconds as a number or a string
	// (told apart by magnitude). Or one of "rfc3339", "unix", "unix_ms", "unix_us",
	// "unix_ns", or a Go time layout such as "02/Jan/2006:15:04:05 -0700".
	TimeFormat string `yaml:"time_format"`
	// TraceIDField names the trace id field; empty tries trace_id, traceId,
	// traceID, trace.id and otelTraceID (OpenTelemetry's Python logging).
	// Datadog's dd.trace_id is not a default: it is a decimal number, not a W3C id.
	TraceIDField string `yaml:"trace_id_field"`
	// SpanIDField names the span id field; empty tries span_id, spanId, spanID,
	// span.id and otelSpanID.
	SpanIDField string `yaml:"span_id_field"`
	// RequestIDField names the request id field; empty tries request_id,
	// requestId, requestID, req_id, x_request_id and http.request_id.
	RequestIDField string `yaml:"request_id_field"`
	// TraceparentField names a field holding a W3C traceparent; default "traceparent".
	TraceparentField string `yaml:"traceparent_field"`
	// CrashLevel is the level given to a multi-line plain record that has no level
	// but holds a stack trace: crash output a runtime printed (a Go panic, a Java or
	// Python uncaught exception, …). "auto" (default) gives Go runtime crashes and
	// PHP fatal errors "fatal" and other stack traces "error"; "error" or "fatal"
	// gives every such record that level; "none" leaves them without a level.
	CrashLevel string `yaml:"crash_level"`
}

// ApplyDefaults fills the zero-valued Format, TimeFormat, TraceparentField and
// CrashLevel. The
// other field names stay empty, which means "try the default names".
func (c *Config) ApplyDefaults() {
	if c.Format == "" {
		c.Format = FormatAuto
	}
	if c.TimeFormat == "" {
		c.TimeFormat = TimeFormatAuto
	}
	if c.TraceparentField == "" {
		c.TraceparentField = DefaultTraceparentField
	}
	if c.CrashLevel == "" {
		c.CrashLevel = CrashLevelAuto
	}
}

// regexGroups maps the named groups a pattern may use to the fields they fill.
var regexGroups = []struct {
	name string
	kind kind
}{
	{"level", kindLevel},
	{"time", kindTime},
	{"trace_id", kindTrace},
	{"span_id", kindSpan},
	{"request_id", kindRequest},
	{"traceparent", kindTraceparent},
}

// Validate reports every problem with c, with field paths relative to the parser's
// configuration. Empty Format and TimeFormat are taken as their defaults.
func (c *Config) Validate(p *confval.Problems) {
	format := c.Format
	switch format {
	case "", FormatAuto, FormatJSON, FormatLogfmt, FormatPlain:
		if c.Pattern != "" {
			if format == "" {
				format = FormatAuto
			}
			p.Addf("pattern", "only used when format is regex, but format is %q; remove pattern or set format: regex", format)
		}
	case FormatRegex:
		validatePattern(c.Pattern, p)
	default:
		p.Addf("format", "unknown format %q; use one of auto, json, logfmt, regex, plain", c.Format)
	}
	switch c.CrashLevel {
	case "", CrashLevelAuto, CrashLevelError, CrashLevelFatal, CrashLevelNone:
	default:
		p.Addf("crash_level", "unknown value %q; use one of auto, error, fatal, none", c.CrashLevel)
	}
	if _, err := newTimeParser(c.TimeFormat); err != nil {
		p.Addf("time_format", "%v", err)
	}
	for _, f := range []struct{ path, name string }{
		{"level_field", c.LevelField},
		{"time_field", c.TimeField},
		{"trace_id_field", c.TraceIDField},
		{"span_id_field", c.SpanIDField},
		{"request_id_field", c.RequestIDField},
		{"traceparent_field", c.TraceparentField},
	} {
		if err := checkFieldName(f.name); err != nil {
			p.Addf(f.path, "%v", err)
		}
	}
}

func validatePattern(pattern string, p *confval.Problems) {
	if pattern == "" {
		p.Addf("pattern", `required when format is regex; give a regular expression with named groups, such as ^(?P<time>\S+) (?P<level>\w+) (?P<message>.*)$`)
		return
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		p.Addf("pattern", "invalid regular expression: %v", err)
		return
	}
	for _, g := range regexGroups {
		if re.SubexpIndex(g.name) >= 0 {
			return
		}
	}
	p.Addf("pattern", `%q has no named group level, time, trace_id, span_id, request_id or traceparent; add one, such as (?P<level>\w+)`, pattern)
}

// checkFieldName checks a configured field name; "" (use the defaults) is fine.
func checkFieldName(name string) error {
	if name == "" {
		return nil
	}
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return fmt.Errorf("%q has an empty part between dots; use a name such as trace.id", name)
	}
	if n := strings.Count(name, "."); n > maxDots {
		return fmt.Errorf("%q has %d dots; at most %d are supported", name, n, maxDots)
	}
	return nil
}
