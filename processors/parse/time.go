package parse

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
)

// timeParser reads a time value in one configured format.
type timeParser struct {
	format timeFormat
	layout string
}

type timeFormat uint8

const (
	timeAuto timeFormat = iota
	timeRFC3339
	timeUnix
	timeUnixMs
	timeUnixUs
	timeUnixNs
	timeLayout
)

func newTimeParser(format string) (timeParser, error) {
	switch format {
	case "", TimeFormatAuto:
		return timeParser{format: timeAuto}, nil
	case TimeFormatRFC3339:
		return timeParser{format: timeRFC3339}, nil
	case TimeFormatUnix:
		return timeParser{format: timeUnix}, nil
	case TimeFormatUnixMs:
		return timeParser{format: timeUnixMs}, nil
	case TimeFormatUnixUs:
		return timeParser{format: timeUnixUs}, nil
	case TimeFormatUnixNs:
		return timeParser{format: timeUnixNs}, nil
	}
	ref := time.Date(2001, 2, 3, 16, 5, 6, 0, time.UTC)
	s := ref.Format(format)
	if s == format {
		return timeParser{}, fmt.Errorf("%q is not auto, rfc3339, unix, unix_ms, unix_us, unix_ns or a Go time layout such as 2006-01-02T15:04:05Z07:00", format)
	}
	t, err := time.Parse(format, s)
	if err != nil {
		return timeParser{}, fmt.Errorf("%q is not a usable Go time layout: %v", format, err)
	}
	if t.Year() != ref.Year() {
		return timeParser{}, fmt.Errorf("time layout %q has no year (2006 or 06), so every time read with it would be out of range", format)
	}
	return timeParser{format: timeLayout, layout: format}, nil
}

// maxUnixNano is 2201-01-01T00:00:00Z: times from then on are ignored, as are times
// before 1970.
const maxUnixNano = 7289654400 * int64(time.Second)

// parse reads s in tp's format and reports whether it is a time within the years
// 1970 to 2200.
func (tp timeParser) parse(s string) (time.Time, bool) {
	var (
		t  time.Time
		ok bool
	)
	switch tp.format {
	case timeAuto:
		// A date has a separator where an epoch number has its fifth digit.
		if s != "" && '0' <= s[0] && s[0] <= '9' && !(len(s) > 4 && (s[4] == '-' || s[4] == '/')) {
			if t, ok = parseEpoch(s, 0); ok {
				return t, true
			}
		}
		t, ok = parseDateTime(s)
	case timeRFC3339:
		t, ok = parseDateTime(s)
	case timeUnix:
		t, ok = parseEpoch(s, int64(time.Second))
	case timeUnixMs:
		t, ok = parseEpoch(s, int64(time.Millisecond))
	case timeUnixUs:
		t, ok = parseEpoch(s, int64(time.Microsecond))
	case timeUnixNs:
		t, ok = parseEpoch(s, 1)
	case timeLayout:
		var err error
		t, err = time.Parse(tp.layout, s)
		ok = err == nil
	}
	if !ok || !inRange(t) {
		return time.Time{}, false
	}
	return t, true
}

func inRange(t time.Time) bool {
	sec := t.Unix()
	return sec >= 0 && sec < maxUnixNano/int64(time.Second)
}

// parseDateTime parses all of s as a date and time; see parseDateTimePrefix.
func parseDateTime(s string) (time.Time, bool) {
	t, n, ok := parseDateTimePrefix(s)
	if !ok || n != len(s) {
		return time.Time{}, false
	}
	return t, true
}

// parseDateTimePrefix parses a date and time at the start of s and returns it with
// the number of bytes it took: "2006-01-02T15:04:05" (T, t or a space between date
// and time; '/' allowed instead of both '-'), then optionally a fraction of a second
// after '.' or ',' (digits past nanoseconds are ignored), then optionally a zone: Z,
// z, ±hh:mm, ±hhmm or ±hh. No zone means UTC. Every time with two-digit fields that
// time.Parse accepts with layout time.RFC3339Nano is accepted, as the same instant.
func parseDateTimePrefix(s string) (time.Time, int, bool) {
	if len(s) < 19 {
		return time.Time{}, 0, false
	}
	ds := s[4]
	if (ds != '-' && ds != '/') || s[7] != ds || s[13] != ':' || s[16] != ':' {
		return time.Time{}, 0, false
	}
	switch s[10] {
	case 'T', 't', ' ':
	default:
		return time.Time{}, 0, false
	}
	year := -1
	if c, y := digits2(s[0:2]), digits2(s[2:4]); c >= 0 && y >= 0 {
		year = c*100 + y
	}
	month := digits2(s[5:7])
	day := digits2(s[8:10])
	hour := digits2(s[11:13])
	minute := digits2(s[14:16])
	sec := digits2(s[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, 0, false
	}
	i := 19
	nsec := 0
	if i+1 < len(s) && (s[i] == '.' || s[i] == ',') && isDigit(s[i+1]) {
		i++
		n := 0
		// Up to eight digits at once (milli- and microseconds, the common ones, end
		// within them): the eight bytes from i, or the last eight of s moved down
		// to start at i, with zeros (not digits) after its end.
		var x uint64
		if i+8 <= len(s) {
			x = le64(s[i : i+8])
		} else {
			x = le64(s[len(s)-8:]) >> (8 * uint(i+8-len(s)))
		}
		v, k := fraction8(x)
		nsec, n, i = v, k, i+k
		for ; i < len(s) && isDigit(s[i]); i++ {
			if n < 9 {
				nsec = nsec*10 + int(s[i]-'0')
				n++
			}
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	offset := 0
	if i < len(s) {
		switch s[i] {
		case 'Z', 'z':
			i++
		case '+', '-':
			if off, n := zoneOffset(s[i:]); n > 0 {
				offset = off
				i += n
			}
		}
	}
	// The fields are in range, so this is time.Date(…, time.UTC) less the offset,
	// without its normalisation.
	unix := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return time.Unix(unix, int64(nsec)).UTC(), i, true
}

// daysSinceEpoch returns the days from 1970-01-01 to the date, proleptic Gregorian,
// for a valid date of the years 0 to 9999. The year is taken 400 years later (the
// calendar repeats every 400 years) so that the arithmetic is unsigned: the days from
// 0001-01-01 to January 1st of year y are 365(y-1) and a day for each leap year
// before it.
func daysSinceEpoch(year, month, day int) int64 {
	y := uint(year) + 400 - 1
	d := 365*y + y/4 - y/100 + y/400 + uint(daysBeforeMonth[month-1]) + uint(day) - 1
	if month > 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		d++
	}
	return int64(d) - daysTo1970
}

// daysTo1970 is daysSinceEpoch's count for 1970-01-01 before the subtraction.
const daysTo1970 = 865259

// daysBeforeMonth is the days of a common year before each month.
var daysBeforeMonth = [12]uint16{0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334}

// le64 returns the eight bytes of w as a little-endian integer.
func le64(w string) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// fraction8 returns the value of the decimal digits that begin x, eight bytes in
// little-endian order, and how many there are (0 to 8).
func fraction8(x uint64) (v, n int) {
	d := x - 0x3030303030303030
	// A byte below '0' borrows (high bit set, and maybe the bytes above it
	// flagged too); one above '9' has d > 9. The lowest flagged byte is a true one.
	nonDigit := (d | (d + 0x7676767676767676)) & 0x8080808080808080
	n = bits.TrailingZeros64(nonDigit) / 8 // 8 when all are digits
	if n == 0 {
		return 0, 0
	}
	// Keep the n digits, moved to the top so that the lower bytes are leading
	// zeros, then combine pairs, quads and octets.
	d <<= 64 - 8*uint(n)
	d = (d*10 + d>>8) & 0x00ff00ff00ff00ff
	d = (d*100 + d>>16) & 0x0000ffff0000ffff
	d = d*10000 + d>>32
	return int(d & 0xffffffff), n
}

// zoneOffset parses ±hh:mm, ±hhmm or ±hh at the start of s and returns the offset in
// seconds east of UTC and its length, or n == 0. Like time.Parse it allows hours up
// to 24 and minutes up to 60.
func zoneOffset(s string) (offset, n int) {
	if len(s) < 3 {
		return 0, 0
	}
	h := digits(s[1:3])
	if h < 0 || h > 24 {
		return 0, 0
	}
	m := 0
	n = 3
	switch {
	case len(s) >= 6 && s[3] == ':':
		if m = digits(s[4:6]); m < 0 {
			return 0, 0
		}
		n = 6
	case len(s) >= 5 && isDigit(s[3]):
		if m = digits(s[3:5]); m < 0 {
			return 0, 0
		}
		n = 5
	}
	if m > 60 {
		return 0, 0
	}
	offset = (h*60 + m) * 60
	if s[0] == '-' {
		offset = -offset
	}
	return offset, n
}

// digits2 parses the two decimal digits of s, or returns -1.
func digits2(s string) int {
	_ = s[1]
	a, b := s[0]-'0', s[1]-'0'
	if a > 9 || b > 9 {
		return -1
	}
	return int(a)*10 + int(b)
}

// digits parses s, all decimal digits, or returns -1.
func digits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseEpoch parses a non-negative decimal number of units (nanoseconds per unit)
// since 1970, with an optional fraction or exponent. unit == 0 picks the unit by
// magnitude: below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds,
// else nanoseconds.
func parseEpoch(s string, unit int64) (time.Time, bool) {
	var ip uint64
	i := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		if i >= 19 {
			return time.Time{}, false
		}
		ip = ip*10 + uint64(s[i]-'0')
	}
	if i == 0 {
		return time.Time{}, false
	}
	var frac uint64 // nanos per unit / 1e9, that is, the fraction scaled to 9 digits
	if i < len(s) && s[i] == '.' {
		n := 0
		for i++; i < len(s) && isDigit(s[i]); i++ {
			if n < 9 {
				frac = frac*10 + uint64(s[i]-'0')
				n++
			}
		}
		for ; n < 9; n++ {
			frac *= 10
		}
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return time.Time{}, false
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, false
		}
		return epochFloat(f, unit)
	}
	if unit == 0 {
		unit = autoUnit(float64(ip))
	}
	u := uint64(unit)
	if ip > uint64(maxUnixNano)/u {
		return time.Time{}, false
	}
	nanos := ip*u + frac*u/1e9
	if nanos >= uint64(maxUnixNano) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(nanos)).UTC(), true
}

func epochFloat(f float64, unit int64) (time.Time, bool) {
	if !(f >= 0) || math.IsInf(f, 1) {
		return time.Time{}, false
	}
	if unit == 0 {
		unit = autoUnit(f)
	}
	nanos := f * float64(unit)
	if nanos >= float64(maxUnixNano) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(nanos)).UTC(), true
}

func autoUnit(v float64) int64 {
	switch {
	case v < 1e11:
		return int64(time.Second)
	case v < 1e14:
		return int64(time.Millisecond)
	case v < 1e17:
		return int64(time.Microsecond)
	}
	return 1
}
