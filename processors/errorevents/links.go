package errorevents

import (
	"encoding/json"
	"net/url"
	"strings"
)

// links returns Grafana Explore URLs for a trace in Tempo and its logs in Loki (by
// trace_id, else by request_id), or nil when Grafana is not configured.
func (g Grafana) links(traceID, requestID, service string) map[string]any {
	if g.URL == "" || (traceID == "" && requestID == "") {
		return nil
	}
	out := map[string]any{}
	base := strings.TrimRight(g.URL, "/") + "/explore?schemaVersion=1&orgId=1&panes="
	pane := func(uid string, query map[string]any) string {
		panes := map[string]any{"a": map[string]any{
			"datasource": uid,
			"queries":    []any{query},
			"range":      map[string]any{"from": "now-6h", "to": "now"},
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
