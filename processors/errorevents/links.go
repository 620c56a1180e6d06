package errorevents

import (
	"encoding/json"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// linkWindow is how far before and after the event's time the linked Explore range
// reaches: the request's logs and spans lie within it, and an event opened days later
// still shows them.
const linkWindow = 15 * time.Minute

// links returns Grafana Explore URLs for a trace in Tempo and its logs in Loki (by
// trace_id, else by request_id) over the event's time ± linkWindow, or nil when
// Grafana is not configured.
func (g Grafana) links(traceID, requestID, service string, at time.Time) map[string]any {
	if g.URL == "" || (traceID == "" && requestID == "") {
		return nil
	}
	out := map[string]any{}
	base := strings.TrimRight(g.URL, "/") + "/explore?schemaVersion=1&orgId=1&panes="
	// Explore takes absolute ranges as Unix milliseconds.
	from := strconv.FormatInt(at.Add(-linkWindow).UnixMilli(), 10)
	to := strconv.FormatInt(at.Add(linkWindow).UnixMilli(), 10)
	pane := func(uid string, query map[string]any) string {
		panes := map[string]any{"a": map[string]any{
			"datasource": uid,
			"queries":    []any{query},
			"range":      map[string]any{"from": from, "to": to},
		}}
		b, _ := json.Marshal(panes)
		return base + url.QueryEscape(string(b))
	}
	if g.TempoDatasourceUID != "" && traceID != "" {
		out["tempo_trace"] = pane(g.TempoDatasourceUID, map[string]any{
			"refId": "A", "datasource": map[string]any{"type": "tempo", "uid": g.TempoDatasourceUID},
			"queryType": "traceql", "query": traceID,
		})
	}
	if g.LokiDatasourceUID != "" {
		sel := "{}"
		if service != "" {
			sel = `{service="` + escapeLogQL(service) + `"}`
		}
		expr := sel + ` | trace_id="` + traceID + `"`
		if traceID == "" {
			expr = sel + ` | request_id="` + escapeLogQL(requestID) + `"`
		}
		out["loki_logs"] = pane(g.LokiDatasourceUID, map[string]any{
			"refId": "A", "datasource": map[string]any{"type": "loki", "uid": g.LokiDatasourceUID}, "expr": expr,
		})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func escapeLogQL(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// latestEventTime bounds the times sdkEventTime accepts; later ones (and ones before
// 1970) are an SDK's or clock's mistake, and the link uses the agent's time instead.
var latestEventTime = time.Date(5000, 1, 1, 0, 0, 0, 0, time.UTC)

// sdkEventTime reads an SDK event's "timestamp": Unix seconds as a number (or a
// numeric string), or an RFC 3339 time, with or without a zone (UTC when absent, as
// Sentry reads it). It returns false when the event has none it can read, or one
// before 1970 or after the year 5000.
func sdkEventTime(v any) (time.Time, bool) {
	plausible := func(t time.Time) (time.Time, bool) {
		if t.Unix() <= 0 || !t.Before(latestEventTime) {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	secs := func(f float64) (time.Time, bool) {
		if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f >= float64(latestEventTime.Unix()) {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return plausible(time.Unix(int64(sec), int64(frac*1e9)))
	}
	switch x := v.(type) {
	case float64:
		return secs(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return time.Time{}, false
		}
		return secs(f)
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return secs(f)
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
			if t, err := time.Parse(layout, x); err == nil {
				return plausible(t)
			}
		}
	}
	return time.Time{}, false
}
