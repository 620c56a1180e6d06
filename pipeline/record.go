package pipeline

import (
	"strings"
	"time"
)

// Level is a normalised severity. The empty Level means "not known".
type Level string

// The levels records are normalised to; see ParseLevel.
const (
	LevelUnknown Level = ""
	LevelTrace   Level = "trace"
	LevelDebug   Level = "debug"
	LevelInfo    Level = "info"
	LevelWarn    Level = "warn"
	LevelError   Level = "error"
	LevelFatal   Level = "fatal"
)

// ParseLevel maps the spellings found in logs (INFO, Warning, err, E, CRITICAL, panic,
// numeric syslog and bunyan levels …) to a Level. It returns LevelUnknown when s is not
// a level it knows.
func ParseLevel(s string) Level {
	if len(s) == 0 || len(s) > 12 {
		return LevelUnknown
	}
	var buf [12]byte
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	switch string(b) {
	case "trace", "trc", "t", "10":
		return LevelTrace
	case "debug", "dbg", "d", "20", "7":
		return LevelDebug
	case "info", "inf", "i", "information", "informational", "notice", "30", "6", "5":
		return LevelInfo
	case "warn", "warning", "wrn", "w", "40", "4":
		return LevelWarn
	case "error", "err", "e", "eror", "50", "3":
		return LevelError
	case "fatal", "crit", "critical", "panic", "alert", "emerg", "emergency", "dpanic", "f", "60", "2", "1", "0":
		return LevelFatal
	}
	return LevelUnknown
}

// Label is one name/value pair of a stream's labels or a record's metadata.
type Label struct {
	Name  string
	Value string
}

// Stream describes where records come from: the labels every record of the stream
// shares (service, namespace, pod, container, source and configured static labels).
// Records of one stream point at the same *Stream, so sinks can group by pointer. A
// Stream is immutable once a record refers to it.
type Stream struct {
	// Labels are sorted by name, with unique names.
	Labels []Label
}

// NewStream returns a Stream with labels sorted by name; later duplicates win.
func NewStream(labels map[string]string) *Stream {
	s := &Stream{Labels: make([]Label, 0, len(labels))}
	for k, v := range labels {
		s.Labels = append(s.Labels, Label{Name: k, Value: v})
	}
	sortLabels(s.Labels)
	return s
}

// Get returns the value of the label called name, or "".
func (s *Stream) Get(name string) string {
	if s == nil {
		return ""
	}
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func sortLabels(ls []Label) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].Name < ls[j-1].Name; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// Record is one log record on its way from a source to the exporters.
type Record struct {
	// Time is when the event happened: the parsed timestamp of the line, or the time
	// it was read when the line carries none.
	Time time.Time
	// Line is the log line as the application wrote it (multiline records joined
	// with '\n'), valid UTF-8.
	Line string
	// Stream is the record's stream; never nil for records handed to a sink.
	Stream *Stream
	// Level is the normalised severity, or LevelUnknown.
	Level Level
	// TraceID is the W3C trace id as 32 lowercase hex digits, or "".
	TraceID string
	// SpanID is the W3C span id as 16 lowercase hex digits, or "".
	SpanID string
	// RequestID is the application's request id, or "".
	RequestID string
	// Metadata is further per-record metadata (sent to Loki as structured metadata,
	// never as labels), such as the file name.
	Metadata []Label
}

// Size is the approximate number of bytes the record takes on the wire, used for
// batching by bytes.
func (r *Record) Size() int {
	n := len(r.Line) + len(r.TraceID) + len(r.SpanID) + len(r.RequestID) + 16
	for _, m := range r.Metadata {
		n += len(m.Name) + len(m.Value)
	}
	return n
}

// ValidTraceID reports whether s is a W3C trace id: 32 lowercase hex digits, not all zero.
func ValidTraceID(s string) bool { return validHexID(s, 32) }

// ValidSpanID reports whether s is a W3C span id: 16 lowercase hex digits, not all zero.
func ValidSpanID(s string) bool { return validHexID(s, 16) }

func validHexID(s string, n int) bool {
	switch {
	case len(s) != n:
		return false
	case n == 32:
		// Checked for every line that carries ids: eight bytes at once, each tested
		// to lie in '0'..'9' or 'a'..'f' (nonHex), with no branch until the end.
		x0, x1, x2, x3 := word(s[0:8]), word(s[8:16]), word(s[16:24]), word(s[24:32])
		return nonHex(x0)|nonHex(x1)|nonHex(x2)|nonHex(x3) == 0 &&
			(x0^ones*'0')|(x1^ones*'0')|(x2^ones*'0')|(x3^ones*'0') != 0
	case n == 16:
		x0, x1 := word(s[0:8]), word(s[8:16])
		return nonHex(x0)|nonHex(x1) == 0 && (x0^ones*'0')|(x1^ones*'0') != 0
	case n%8 != 0:
		return validHexIDBytes(s)
	}
	// Other multiples of 8: eight bytes a step.
	var bad, nonZero uint64
	for i := 0; i < n; i += 8 {
		x := word(s[i : i+8])
		bad |= nonHex(x)
		nonZero |= x ^ ones*'0'
	}
	return bad == 0 && nonZero != 0
}

// nonHex is nonzero exactly when a byte of x is not a lowercase hex digit.
func nonHex(x uint64) uint64 {
	return (between(x, '0'-1, '9'+1) | between(x, 'a'-1, 'f'+1)) ^ highBits | x&highBits
}

// validHexIDBytes is validHexID one byte at a time, for lengths not a multiple of 8.
func validHexIDBytes(s string) bool {
	nonZero := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
		nonZero = nonZero || c != '0'
	}
	return nonZero
}

const (
	ones     = 0x0101010101010101
	highBits = 0x8080808080808080
)

// between returns the high bit of each byte of x that lies strictly between m and n
// (m < b < n), for x without high bits and n <= 128: no byte's sum or difference
// carries into the next, so each byte's answer is exact.
func between(x, m, n uint64) uint64 {
	return (ones*(127+n) - x) & ^x & (x + ones*(127-m)) & highBits
}

// NormalizeHexID lowercases s and strips dashes (UUID-style trace ids), returning ""
// when the result is not a valid id of n hex digits (32 for traces, 16 for spans).
func NormalizeHexID(s string, n int) string {
	if validHexID(s, n) {
		return s
	}
	if len(s) > 2*n {
		return ""
	}
	t := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if validHexID(t, n) {
		return t
	}
	return ""
}
