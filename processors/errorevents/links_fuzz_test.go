package errorevents

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzSDKEventTime feeds the "timestamp" of an SDK event, as the Sentry receiver
// decodes it, to the link builder: it must never panic, a time it reads must be after
// 1970 and before the year 5000, and the links' range must be that time ± 15 minutes.
func FuzzSDKEventTime(f *testing.F) {
	for _, s := range []string{`1796463000.25`, `"1796463000.25"`, `"2026-12-05T10:30:00.25+01:00"`,
		`"2026-12-05T09:30:00.25"`, `"yesterday"`, `-5`, `1e308`, `"NaN"`, `"Inf"`, `{"t":1}`, `null`, `[1]`, `""`,
		`"9999-12-31T23:59:59Z"`, `"0001-01-01T00:00:00Z"`} {
		f.Add(s)
	}
	g := Grafana{URL: "https://g.example.com", TempoDatasourceUID: "tempo", LokiDatasourceUID: "loki"}
	f.Fuzz(func(t *testing.T, raw string) {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		at, ok := sdkEventTime(v)
		if !ok {
			return
		}
		if at.Unix() <= 0 || !at.Before(latestEventTime) {
			t.Fatalf("%s read as %s", raw, at)
		}
		l := g.links("4bf92f3577b34da6a3ce929d0e0e4736", "", "shop", at)
		u, err := url.Parse(l["tempo_trace"].(string))
		if err != nil {
			t.Fatal(err)
		}
		var panes map[string]struct {
			Range struct{ From, To string } `json:"range"`
		}
		if err := json.Unmarshal([]byte(u.Query().Get("panes")), &panes); err != nil {
			t.Fatal(err)
		}
		from, err1 := strconv.ParseInt(panes["a"].Range.From, 10, 64)
		to, err2 := strconv.ParseInt(panes["a"].Range.To, 10, 64)
		if err1 != nil || err2 != nil || to-from != 2*linkWindow.Milliseconds() || from != at.Add(-linkWindow).UnixMilli() {
			t.Fatalf("%s (%s): range %q – %q", raw, at, panes["a"].Range.From, panes["a"].Range.To)
		}
	})
}
