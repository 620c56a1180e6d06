package tail

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Values of Config.Format.
const (
	// FormatRaw takes each line of the file as the application wrote it.
	FormatRaw = "raw"
	// FormatCRI reads the container runtime's log format the kubelet writes under
	// /var/log/pods: "<RFC 3339 time> <stdout|stderr> <P|F> <message>".
	FormatCRI = "cri"
	// FormatDocker reads Docker's json-file logs:
	// {"log":"<message>\n","stream":"stdout","time":"<RFC 3339 time>"}.
	FormatDocker = "docker"
	// FormatAuto picks raw, cri or docker for each file from its first line.
	FormatAuto = "auto"
)

// Indexes of a file's streams: what the container runtime says the application wrote
// to stdout or stderr, and lines in no runtime format (raw files, malformed lines).
const (
	streamRaw = iota
	streamStdout
	streamStderr
	numStreams
)

// streamNames are the values of the "stream" label, by index.
var streamNames = [numStreams]string{"", "stdout", "stderr"}

// formatKind is the format a file is read in, once known.
type formatKind uint8

const (
	kindUnknown formatKind = iota // auto, before the first complete line
	kindRaw
	kindCRI
	kindDocker
)

// kindOf returns the kind of a configured format; auto is kindUnknown.
func kindOf(format string) formatKind {
	switch format {
	case FormatCRI:
		return kindCRI
	case FormatDocker:
		return kindDocker
	case FormatAuto:
		return kindUnknown
	}
	return kindRaw
}

func (k formatKind) String() string {
	switch k {
	case kindRaw:
		return FormatRaw
	case kindCRI:
		return FormatCRI
	case kindDocker:
		return FormatDocker
	}
	return FormatAuto
}

// physicalSlack is how much longer than max_line_bytes a line of a runtime format
// may be before the reader cuts it: room for the CRI prefix, or for the JSON around
// and the escapes inside a docker message. The runtimes split an application's line
// into parts of 16 KiB, so their lines are far below max_line_bytes plus this.
const physicalSlack = 8 << 10

// dockerSplit is the size of the parts Docker cuts long lines into; an escaped part
// may take six times as many bytes (\u0000).
const dockerSplit = 16 << 10

// physicalMax returns the longest line of a file the reader keeps whole, for a
// source with the given format and max_line_bytes.
func physicalMax(format string, maxLine int) int {
	switch format {
	case FormatCRI:
		return maxLine + physicalSlack
	case FormatDocker, FormatAuto:
		return maxLine + physicalSlack + 6*dockerSplit
	}
	return maxLine
}

// entry is one line of a runtime log: part or all of a line the application wrote.
type entry struct {
	stream  int       // streamStdout or streamStderr
	partial bool      // the runtime split the line; more of it follows
	time    time.Time // when the runtime read it
	msg     []byte    // the application's bytes, without the line end
}

// parseCRI parses a line of the CRI log format without allocating: msg points into
// line. ok is false when line is not in that format.
func parseCRI(line []byte) (e entry, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return e, false
	}
	if e.time, ok = parseRFC3339(line[:sp]); !ok {
		return e, false
	}
	rest := line[sp+1:]
	switch {
	case len(rest) >= 7 && string(rest[:7]) == "stdout ":
		e.stream = streamStdout
	case len(rest) >= 7 && string(rest[:7]) == "stderr ":
		e.stream = streamStderr
	default:
		return e, false
	}
	rest = rest[7:]
	// The tag is a ':'-separated list whose first item is P (partial) or F (full).
	if len(rest) == 0 {
		return e, false
	}
	switch rest[0] {
	case 'P':
		e.partial = true
	case 'F':
	default:
		return e, false
	}
	i := 1
	if i < len(rest) && rest[i] == ':' {
		for i < len(rest) && rest[i] != ' ' {
			i++
		}
	}
	switch {
	case i == len(rest):
		e.msg = rest[i:]
	case rest[i] == ' ':
		e.msg = rest[i+1:]
	default:
		return e, false
	}
	return e, true
}

// parseDocker parses a line of Docker's json-file format, appending the unescaped
// message to dst (which it returns as e.msg, without the "\n" that ends a whole
// line). The common shape, {"log":…,"stream":…,"time":…}, is read by hand; any other
// valid JSON object (other key order, extra keys such as attrs) by encoding/json.
func parseDocker(line, dst []byte) (e entry, out []byte, ok bool) {
	out = dst
	if e, out, ok = parseDockerFast(line, dst); !ok {
		e, out, ok = parseDockerSlow(line, dst)
	}
	if !ok {
		return entry{}, dst, false
	}
	if n := len(e.msg); n > 0 && e.msg[n-1] == '\n' {
		e.msg = e.msg[:n-1]
		if n := len(e.msg); n > 0 && e.msg[n-1] == '\r' {
			e.msg = e.msg[:n-1]
		}
	} else {
		e.partial = true
	}
	return e, out, true
}

func parseDockerFast(line, dst []byte) (e entry, out []byte, ok bool) {
	const head = `{"log":"`
	if !bytes.HasPrefix(line, []byte(head)) {
		return e, dst, false
	}
	start := len(dst)
	i, out, ok := unquoteInto(line, len(head), dst)
	if !ok {
		return e, dst, false
	}
	rest := line[i:]
	switch {
	case bytes.HasPrefix(rest, []byte(`,"stream":"stdout","time":"`)):
		e.stream = streamStdout
	case bytes.HasPrefix(rest, []byte(`,"stream":"stderr","time":"`)):
		e.stream = streamStderr
	default:
		return e, dst, false
	}
	rest = rest[len(`,"stream":"stdout","time":"`):]
	q := bytes.IndexByte(rest, '"')
	if q < 0 || string(rest[q:]) != `"}` {
		return e, dst, false
	}
	if e.time, ok = parseRFC3339(rest[:q]); !ok {
		return e, dst, false
	}
	e.msg = out[start:]
	return e, out, true
}

func parseDockerSlow(line, dst []byte) (e entry, out []byte, ok bool) {
	var v struct {
		Log    *string `json:"log"`
		Stream string  `json:"stream"`
		Time   string  `json:"time"`
	}
	if json.Unmarshal(line, &v) != nil || v.Log == nil {
		return e, dst, false
	}
	switch v.Stream {
	case "stdout":
		e.stream = streamStdout
	case "stderr":
		e.stream = streamStderr
	default:
		return e, dst, false
	}
	if e.time, ok = parseRFC3339([]byte(v.Time)); !ok {
		return e, dst, false
	}
	start := len(dst)
	out = append(dst, *v.Log...)
	e.msg = out[start:]
	return e, out, true
}

// unquoteInto decodes the JSON string whose body starts at line[i] (just past the
// opening quote), appending it to dst. It returns the index just past the closing
// quote. Invalid UTF-8 is kept as it is (the reader replaces it later); an invalid
// escape is an error.
func unquoteInto(line []byte, i int, dst []byte) (int, []byte, bool) {
	for {
		j := i
		for j < len(line) && line[j] != '"' && line[j] != '\\' && line[j] >= 0x20 {
			j++
		}
		dst = append(dst, line[i:j]...)
		if j >= len(line) || line[j] < 0x20 {
			return j, dst, false
		}
		if line[j] == '"' {
			return j + 1, dst, true
		}
		if j+1 >= len(line) {
			return j, dst, false
		}
		c := line[j+1]
		i = j + 2
		switch c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(line, i)
			if !ok {
				return i, dst, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(line) && line[i] == '\\' && line[i+1] == 'u' {
					if x, ok := hex4(line, i+2); ok {
						r2 = x
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return i, dst, false
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// parseRFC3339 parses "2006-01-02T15:04:05[.999999999](Z|±07:00)", the form both
// runtimes write, without allocating; the result is in UTC. It accepts nothing
// time.Parse(time.RFC3339Nano, …) would refuse or read differently.
func parseRFC3339(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	i, nsec := 19, 0
	if b[i] == '.' {
		i++
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			if n == 9 {
				return time.Time{}, false
			}
			nsec = nsec*10 + int(b[i]-'0')
			n++
			i++
		}
		if n == 0 {
			return time.Time{}, false
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, false
	}
	var offset int
	switch b[i] {
	case 'Z':
		if i+1 != len(b) {
			return time.Time{}, false
		}
	case '+', '-':
		z := b[i:]
		if len(z) != 6 || z[3] != ':' {
			return time.Time{}, false
		}
		oh, ok1 := digits(z[1:3])
		om, ok2 := digits(z[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if z[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	unix := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// daysFromCivil returns the days from 1970-01-01 to the given date of the proleptic
// Gregorian calendar (Howard Hinnant's algorithm): time.Date costs more than the
// rest of a CRI line's parsing.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := m - 3
	if m <= 2 {
		mp = m + 9
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
