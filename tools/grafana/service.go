package main

//lint:file-ignore SA1019 the dashboards are Grafana's classic JSON model (v1), which file provisioning loads in the compose stack's Grafana 12.1; schema v2 needs the Dynamic Dashboards and kubernetesDashboards feature toggles there

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// serviceDashboard is "service overview": one service's logs by level, its error
// events and its failing traces, each a click away from the others through the
// provisioned correlations (trace_id → Tempo, sentry_event_id → Sentry, traces → logs).
func serviceDashboard() (*dashboard.DashboardBuilder, []panelInfo) {
	bd := newBoard("outrider-service-overview", "service overview",
		"One service as its outrider sidecar ships it: log volume by level (Loki), error events, error logs with links to their traces and Sentry events, and failing traces (Tempo) with links to their logs.",
		"outrider")
	svc := `service=~"$service"`
	// app is the service's own lines: errors.to_loki's event stream has level labels
	// too, and would count every error twice.
	app := svc + `, source!="outrider-errors"`
	events := svc + `, source="outrider-errors"`
	bd.b.WithVariable(datasourceVar(varLoki, "Loki", "loki", uidLoki)).
		WithVariable(datasourceVar(varTempo, "Tempo", "tempo", uidTempo)).
		WithVariable(datasourceVar(varPrometheus, "Prometheus", "prometheus", uidPrometheus)).
		WithVariable(queryVar("service", "Service", lokiDS, "label_values(service)")).
		WithVariable(queryVar("job", "Agent job", promDS, "label_values(outrider_build_info, job)")).
		Link(dashboard.NewDashboardLinkBuilder("outrider agent").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"outrider"}).
			KeepTime(true).
			IncludeVars(false))

	bd.row("Logs")
	bd.lokiTimeseries(16, "Log volume by level", "Lines per level, from the level label the agent sets when a record has one (the series without a level is the rest).",
		q{`sum by (level) (count_over_time({` + app + `} [$__interval]))`, "{{level}}"})
	bd.lokiTimeseries(8, "Errors and fatals", "Lines at level error or fatal, by source (file source name, otlp, outrider-audit).",
		q{`sum by (source) (count_over_time({` + app + `, level=~"error|fatal"} [$__interval]))`, "{{source}}"})

	bd.row("Error events")
	bd.lokiTimeseries(12, "Error log lines sent to Sentry", "Log records that became Sentry events: the agent puts the event's ID in the line's structured metadata sentry_event_id.",
		q{`sum by (level) (count_over_time({` + app + `} | sentry_event_id != "" [$__interval]))`, "{{level}}"})
	bd.timeseries(12, "Error events by source and result", "outrider_error_events_total of the chosen agents: events from logs, spans and the application's Sentry SDK, sent or held back by the per-fingerprint limit.", "short",
		q{`sum by (source, result) (increase(outrider_error_events_total{job=~"$job"}[$__rate_interval]))`, "{{source}} {{result}}"})
	bd.logs(24, 10, "Error logs", "Error and fatal records, newest first. Open a line: trace_id links to the trace in Tempo, sentry_event_id to the event in Sentry.",
		`{`+app+`, level=~"error|fatal"}`)
	bd.lokiTimeseries(12, "Error events in Loki by type", "The outrider-errors stream (errors.to_loki): one line per error event sent, by exception type, so error events show without Sentry.",
		q{`sum by (exception_type) (count_over_time({` + events + `} [$__interval]))`, "{{exception_type}}"})
	bd.logs(12, 8, "Error events in Loki", "One line per error event (errors.to_loki): type, value, culprit, frames, fingerprint; sentry_event_id is the event's ID in Sentry when both are on, trace_id links to the trace.",
		`{`+events+`}`)

	bd.row("Traces")
	bd.traces(12, 10, "Failing traces", "Traces of the service with a span in status error. A trace's spans link to their logs in Loki (by trace_id).",
		`{ resource.service.name =~ "${service:regex}" && status = error }`)
	bd.traces(12, 10, "Slowest traces", "Traces of the service taking more than a second.",
		`{ resource.service.name =~ "${service:regex}" && duration > 1s }`)
	return bd.b, bd.panels
}
