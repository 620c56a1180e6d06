package parse

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/correlate"
)

// fuzzMaxLen bounds fuzz inputs: longer lines find nothing new and make the
// fuzzer's minimisation of new inputs slow.
const fuzzMaxLen = 2048

// checkValid fails when Parse set an id that is not valid, whatever the line.
func checkValid(t *testing.T, line string, r *pipeline.Record) {
	t.Helper()
	if r.TraceID != "" && !pipeline.ValidTraceID(r.TraceID) {
		t.Fatalf("Parse(%q): invalid trace id %q", line, r.TraceID)
	}
	if r.SpanID != "" && !pipeline.ValidSpanID(r.SpanID) {
		t.Fatalf("Parse(%q): invalid span id %q", line, r.SpanID)
	}
	if r.RequestID != "" && !validRequestID(r.RequestID) {
		t.Fatalf("Parse(%q): invalid request id %q", line, r.RequestID)
	}
	if !r.Time.IsZero() && !inRange(r.Time) {
		t.Fatalf("Parse(%q): time %v out of range", line, r.Time)
	}
}

// referenceJSON resolves the fields of line from encoding/json's decoding of it,
// following the same rules as the scanner (name priority, every split of a dotted
// name, literal first). ok is false when encoding/json rejects line.
func referenceJSON(p *parser, line string) (f fields, isObject, ok bool) {
	if !json.Valid([]byte(line)) {
		return fields{}, false, false
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fields{}, false, false
	}
	m, isObject := v.(map[string]any)
	if !isObject {
		return fields{}, false, true
	}
	var (
		r pipeline.Record
		x ids
	)
	fs := &p.fields
	for c, name := range fs.names {
		k := fs.kinds[c]
		if x.found&(1<<k) != 0 {
			continue
		}
		for variant := range int(fs.nvar[c]) {
			val, found := lookup(m, name, variant)
			if !found {
				continue
			}
			var (
				s   string
				num bool
			)
			switch val := val.(type) {
			case string:
				s = val
			case json.Number:
				s, num = string(val), true
			default:
				continue
			}
			if p.take(k, s, num, &r, &x) {
				x.found |= 1 << k
				break
			}
		}
	}
	x.apply(&r)
	return fieldsOf(&r), true, true
}

// lookup finds name in m, splitting it at the dots whose bit is set in variant.
func lookup(m map[string]any, name string, variant int) (any, bool) {
	dot := 0
	start := 0
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		if variant&(1<<dot) != 0 {
			sub, ok := m[name[start:i]].(map[string]any)
			if !ok {
				return nil, false
			}
			m = sub
			start = i + 1
		}
		dot++
	}
	v, ok := m[name[start:]]
	return v, ok
}

func jsonSeeds() []string {
	return []string{
		`{"level":"error","time":"2024-01-02T15:04:05.123Z","trace_id":"` + tid + `","span_id":"` + sid + `","request_id":"req-1","msg":"boom"}`,
		`{"level":30,"time":1704207845123,"pid":1,"hostname":"h","msg":"hi","req_id":42}`,
		`{"@timestamp":"2024-01-02T15:04:05.123Z","log.level":"error","trace.id":"` + tid + `","span.id":"` + sid + `"}`,
		`{"log":{"level":"warn"},"trace":{"id":"` + tid + `"},"span":{"id":"` + sid + `"},"http":{"request_id":"r"}}`,
		`{"trace":{"id":"` + tid + `"},"trace":{"other":1},"trace.id":"x"}`,
		`{"a":{"b":{"c":"` + tid + `"}},"a.b":{"c":"` + tid + `"},"a":{"b.c":"x"}}`,
		`{"traceparent":"` + tp + `","level":"\u0065rror","request_id":"caf\u00e9 \ud83d\ude00 \ud800"}`,
		`{"lev\u0065l":"warn","x":[1,{"y":"]"}],"n":null,"b":true,"f":-1.5e-3}`,
		`{"level":"info","level":{}}`,
		`{"request_id":"\xff\xfe"}`,
		`[1,2]`,
		`"level"`,
		`{"level":"error"`,
		`{}`,
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add(s)
	}
	def := mustNew(f, Config{Format: FormatJSON}).(*parser)
	custom := mustNew(f, Config{
		Format: FormatJSON, TraceIDField: "a.b.c", SpanIDField: "a.s",
		LevelField: "lv", RequestIDField: "r.i.d",
	}).(*parser)
	f.Fuzz(func(t *testing.T, line string) {
		if len(line) > fuzzMaxLen {
			return
		}
		for _, p := range []*parser{def, custom} {
			var r pipeline.Record
			p.Parse(line, &r)
			checkValid(t, line, &r)
			want, isObject, ok := referenceJSON(p, line)
			if !ok {
				continue
			}
			got := fieldsOf(&r)
			if !isObject {
				want = fields{}
			}
			if got != want {
				t.Fatalf("Parse(%q) with %v\n got %+v\nencoding/json reference %+v", line, p.fields.names, got, want)
			}
		}
	})
}

func FuzzLogfmt(f *testing.F) {
	for _, s := range []struct{ line, rid string }{
		{`time=2024-01-02T15:04:05Z level=info msg="hello world" trace_id=` + tid + ` span_id=` + sid, "r1"},
		{`level=error msg="a \"quoted\" \\ value" request_id="x\ty" err=`, "with space"},
		{`ts=1704207845.5 lvl=WARN caller=main.go:12 msg=x bare key="unterminated`, "\u00e9\x00"},
		{`a=1 a=2 ="x" "loose" level= level=debug`, `quote"and\back`},
		{`msg="\u00e9\x41\101\n" level=i`, ""},
	} {
		f.Add(s.line, s.rid)
	}
	p := mustNew(f, Config{Format: FormatLogfmt})
	auto := mustNew(f, Config{})
	f.Fuzz(func(t *testing.T, line, rid string) {
		if len(line)+len(rid) > fuzzMaxLen {
			return
		}
		for _, p := range []Parser{p, auto} {
			var r pipeline.Record
			p.Parse(line, &r)
			checkValid(t, line, &r)
		}
		// A value written with strconv.Quote, as slog and logrus write it, reads back.
		built := "level=warn request_id=" + strconv.Quote(rid) + " msg=x"
		var r pipeline.Record
		p.Parse(built, &r)
		want := ""
		if validRequestID(rid) {
			want = rid
		}
		if r.Level != pipeline.LevelWarn || r.RequestID != want {
			t.Fatalf("Parse(%q) = level %q request id %q, want warn and %q", built, r.Level, r.RequestID, want)
		}
	})
}

var fuzzPattern = `^(?P<time>\S+) +\[?(?P<level>[A-Za-z]+)\]? +(?:trace_id=(?P<trace_id>\S+) +)?(?:rid=(?P<request_id>\S+) +)?(?P<message>.*)$`

func FuzzRegex(f *testing.F) {
	for _, s := range []string{
		"2024-01-02T15:04:05Z [ERROR] trace_id=" + tid + " rid=abc hello",
		"1704207845 info hello",
		"x y z",
		"",
	} {
		f.Add(s)
	}
	p := mustNew(f, Config{Format: FormatRegex, Pattern: fuzzPattern}).(*parser)
	re := regexp.MustCompile(fuzzPattern)
	f.Fuzz(func(t *testing.T, line string) {
		if len(line) > fuzzMaxLen {
			return
		}
		var r pipeline.Record
		p.Parse(line, &r)
		checkValid(t, line, &r)
		var want fields
		if m := re.FindStringSubmatch(line); m != nil {
			var w pipeline.Record
			w.Level = pipeline.ParseLevel(m[re.SubexpIndex("level")])
			if tm, ok := p.time.parse(m[re.SubexpIndex("time")]); ok {
				w.Time = tm
			}
			w.TraceID = pipeline.NormalizeHexID(m[re.SubexpIndex("trace_id")], 32)
			if rid := m[re.SubexpIndex("request_id")]; validRequestID(rid) {
				w.RequestID = rid
			}
			want = fieldsOf(&w)
		}
		if got := fieldsOf(&r); got != want {
			t.Fatalf("Parse(%q)\n got %+v\nwant %+v", line, got, want)
		}
	})
}

func FuzzPlain(f *testing.F) {
	for _, s := range realWorldPlain() {
		f.Add(s)
	}
	p := mustNew(f, Config{Format: FormatPlain})
	f.Fuzz(func(t *testing.T, line string) {
		if len(line) > fuzzMaxLen {
			return
		}
		var r pipeline.Record
		p.Parse(line, &r)
		checkValid(t, line, &r)
		if strings.IndexByte(line, '=') >= 0 {
			return
		}
		// Without key=value tokens the trace context is the first traceparent.
		wantT, wantS, _ := correlate.FindTraceparent(line)
		if r.TraceID != wantT || r.SpanID != wantS {
			t.Fatalf("Parse(%q) ids %q %q, want %q %q", line, r.TraceID, r.SpanID, wantT, wantS)
		}
		if wantT == "" {
			line += " " + tp
			r = pipeline.Record{}
			p.Parse(line, &r)
			if r.TraceID != tid || r.SpanID != sid {
				t.Fatalf("Parse(%q) ids %q %q, want %q %q", line, r.TraceID, r.SpanID, tid, sid)
			}
		}
	})
}

var canonicalDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}`)

func FuzzTime(f *testing.F) {
	for _, s := range []string{
		"2024-01-02T15:04:05Z", "2024-01-02T15:04:05.123456789+02:00", "2024-01-02 15:04:05,123",
		"2024-02-30T00:00:00Z", "2024-01-02T15:04:05.1234567891234-23:59", "2024-01-02T15:04:05+24:00",
		"1704207845", "1704207845.123", "1704207845123", "1704207845123456", "1704207845123456789",
		"1.7042078455e9", "99999999999999999999", "-1", "", "0",
	} {
		f.Add(s)
	}
	var parsers []timeParser
	for _, format := range []string{"auto", "rfc3339", "unix", "unix_ms", "unix_us", "unix_ns", "2006-01-02 15:04:05 MST"} {
		tp, err := newTimeParser(format)
		if err != nil {
			f.Fatal(err)
		}
		parsers = append(parsers, tp)
	}
	auto := parsers[0]
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > fuzzMaxLen {
			return
		}
		for _, tp := range parsers {
			if tm, ok := tp.parse(s); ok && !inRange(tm) {
				t.Fatalf("parse(%q) = %v, out of range", s, tm)
			}
		}
		if canonicalDateTime.MatchString(s) {
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05"} {
				want, err := time.Parse(layout, s)
				if err != nil || !inRange(want) {
					continue
				}
				got, ok := auto.parse(s)
				if !ok || !got.Equal(want) {
					t.Fatalf("parse(%q) = %v %v, time.Parse(%q) = %v", s, got, ok, layout, want)
				}
			}
		}
		if n, err := strconv.ParseUint(s, 10, 64); err == nil && len(s) <= 19 {
			unit := uint64(autoUnit(float64(n)))
			got, ok := auto.parse(s)
			wantOK := n <= uint64(maxUnixNano)/unit && n*unit < uint64(maxUnixNano)
			if ok != wantOK || (ok && got.UnixNano() != int64(n*unit)) {
				t.Fatalf("parse(%q) = %v %v, want %d ns (%v)", s, got, ok, n*unit, wantOK)
			}
		}
	})
}

// TestConcurrentParse runs one parser from several goroutines; with -race it checks
// that Parse shares no mutable state.
func TestConcurrentParse(t *testing.T) {
	p := mustNew(t, Config{})
	lines := append(jsonSeeds(), realWorldPlain()...)
	want := make([]fields, len(lines))
	for i, l := range lines {
		want[i] = parsed(p, l)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				for i, l := range lines {
					if got := parsed(p, l); got != want[i] {
						errs <- l
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for l := range errs {
		t.Errorf("concurrent Parse(%q) differed", l)
	}
}
