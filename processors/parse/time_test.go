package parse

import (
	"testing"
	"time"
)

func TestTimeFormats(t *testing.T) {
	tests := []struct {
		format string
		in     string
		want   string // RFC 3339 in UTC, "" for not parsed
	}{
		{"auto", "2024-01-02T15:04:05Z", "2024-01-02T15:04:05Z"},
		{"auto", "2024-01-02t15:04:05z", "2024-01-02T15:04:05Z"},
		{"auto", "2024-01-02T15:04:05.123456789Z", "2024-01-02T15:04:05.123456789Z"},
		{"auto", "2024-01-02T15:04:05.1234567899Z", "2024-01-02T15:04:05.123456789Z"},
		{"auto", "2024-01-02T15:04:05+05:30", "2024-01-02T09:34:05Z"},
		{"auto", "2024-01-02T15:04:05-0700", "2024-01-02T22:04:05Z"},
		{"auto", "2024-01-02T15:04:05+01", "2024-01-02T14:04:05Z"},
		{"auto", "2024-01-02 15:04:05", "2024-01-02T15:04:05Z"},
		{"auto", "2024-01-02 15:04:05.5", "2024-01-02T15:04:05.5Z"},
		{"auto", "2024-01-02 15:04:05,123", "2024-01-02T15:04:05.123Z"},
		{"auto", "2024/01/02 15:04:05", "2024-01-02T15:04:05Z"},
		{"auto", "2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
		{"auto", "2023-02-29T00:00:00Z", ""},
		{"auto", "2024-04-31T00:00:00Z", ""},
		{"auto", "2024-01-02T24:00:00Z", ""},
		{"auto", "2024-01-02T15:60:00Z", ""},
		{"auto", "2024-01-02T15:04:60Z", ""},
		{"auto", "2024-00-02T15:04:05Z", ""},
		{"auto", "20x4-01-02T15:04:05Z", ""},
		{"auto", "x024-01-02T15:04:05Z", ""},
		{"auto", "2024-0x-02T15:04:05Z", ""},
		{"auto", "2024-01-02T1x:04:05Z", ""},
		{"auto", "2024-01-02T15:04:0 Z", ""},
		{"auto", "2024-01-02T15:04:05 extra", ""},
		{"auto", "2024-01-02T15:04:05+0", ""},
		{"auto", "2024-01-02T15:04:05.Z", ""},
		{"auto", "2024-01-02", ""},
		{"auto", "1969-12-31T23:59:59Z", ""},
		{"auto", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
		{"auto", "1970-01-01T00:30:00+01:00", ""},
		{"auto", "2200-12-31T23:59:59Z", "2200-12-31T23:59:59Z"},
		{"auto", "2201-01-01T00:00:00Z", ""},
		{"auto", "1704207845", "2024-01-02T15:04:05Z"},
		{"auto", "1704207845.25", "2024-01-02T15:04:05.25Z"},
		{"auto", "1704207845123", "2024-01-02T15:04:05.123Z"},
		{"auto", "1704207845123.5", "2024-01-02T15:04:05.1235Z"},
		{"auto", "1704207845123456", "2024-01-02T15:04:05.123456Z"},
		{"auto", "1704207845123456789", "2024-01-02T15:04:05.123456789Z"},
		{"auto", "1.704207845e9", "2024-01-02T15:04:05Z"},
		{"auto", "7289654399", "2200-12-31T23:59:59Z"},
		{"auto", "7289654400", ""},
		{"auto", "0", "1970-01-01T00:00:00Z"},
		{"auto", "12345678901234567890", ""},
		{"auto", "1e400", ""},
		{"auto", "-1", ""},
		{"auto", "17042078x5", ""},
		{"auto", "", ""},
		{"rfc3339", "2024-01-02T15:04:05Z", "2024-01-02T15:04:05Z"},
		{"rfc3339", "1704207845", ""},
		{"unix", "1704207845123", ""},
		{"unix", "1704207845.5", "2024-01-02T15:04:05.5Z"},
		{"unix_ms", "1704207845123", "2024-01-02T15:04:05.123Z"},
		{"unix_ms", "1704207845", "1970-01-20T17:23:27.845Z"},
		{"unix_us", "1704207845123456", "2024-01-02T15:04:05.123456Z"},
		{"unix_ns", "1704207845123456789", "2024-01-02T15:04:05.123456789Z"},
		{"unix_ns", "2024-01-02T15:04:05Z", ""},
		{"02/Jan/2006:15:04:05 -0700", "02/Jan/2024:15:04:05 +0100", "2024-01-02T14:04:05Z"},
		{"02/Jan/2006:15:04:05 -0700", "2024-01-02T15:04:05Z", ""},
		{"Jan _2 15:04:05 2006", "Jan  2 15:04:05 2300", ""},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.in, func(t *testing.T) {
			tp, err := newTimeParser(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if tm, ok := tp.parse(tt.in); ok {
				got = tm.UTC().Format(time.RFC3339Nano)
			}
			if got != tt.want {
				t.Errorf("parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTimeFieldFormat(t *testing.T) {
	p := mustNew(t, Config{Format: FormatJSON, TimeField: "when", TimeFormat: TimeFormatUnixMs})
	runLines(t, p, []lineCase{
		{"number", `{"when":1704207845123,"time":"2024-05-05T00:00:00Z"}`, fields{Time: "2024-01-02T15:04:05.123Z"}},
		{"string", `{"when":"1704207845123"}`, fields{Time: "2024-01-02T15:04:05.123Z"}},
		{"wrong format", `{"when":"2024-01-02T15:04:05Z"}`, fields{}},
	})
}

// TestDaysSinceEpoch checks the date arithmetic against time.Date for every day of
// the years parseDateTimePrefix reads.
func TestDaysSinceEpoch(t *testing.T) {
	for d := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 10000; d = d.AddDate(0, 0, 1) {
		want := d.Unix() / 86400
		if got := daysSinceEpoch(d.Year(), int(d.Month()), d.Day()); got != want {
			t.Fatalf("daysSinceEpoch(%s) = %d, want %d", d.Format("2006-01-02"), got, want)
		}
	}
}

// TestFraction8 checks the eight-at-once digits against a byte-at-a-time loop, for
// every count of leading digits and every byte after them.
func TestFraction8(t *testing.T) {
	naive := func(w string) (v, n int) {
		for n < len(w) && isDigit(w[n]) {
			v = v*10 + int(w[n]-'0')
			n++
		}
		return v, n
	}
	digits := "9876543210"
	for k := 0; k <= 8; k++ {
		for c := 0; c < 256; c++ {
			for _, rest := range []string{"", "5", "\x00\xff", "99"} {
				w := (digits[:k] + string([]byte{byte(c)}) + rest + "00000000")[:8]
				gv, gn := fraction8(le64(w))
				wv, wn := naive(w)
				if gv != wv || gn != wn {
					t.Fatalf("fraction8(%q) = %d, %d; want %d, %d", w, gv, gn, wv, wn)
				}
			}
		}
	}
}
