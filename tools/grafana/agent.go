package main

//lint:file-ignore SA1019 the dashboards are Grafana's classic JSON model (v1), which file provisioning loads in the compose stack's Grafana 12.1; schema v2 needs the Dynamic Dashboards and kubernetesDashboards feature toggles there

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// sel is the label matcher every agent query carries: the agents the job and
// instance variables pick.
const sel = `job=~"$job", instance=~"$instance"`

// rate is a per-second rate over Grafana's rate interval.
func rate(metric, by string) string {
	return "sum by (" + by + ") (rate(" + metric + "{" + sel + "}[$__rate_interval]))"
}

// increase is the increase over Grafana's rate interval, for rare events.
func increase(metric, by string) string {
	return "sum by (" + by + ") (increase(" + metric + "{" + sel + "}[$__rate_interval]))"
}

// agentDashboard is "outrider agent": what the agent read, sent, dropped and holds,
// and the state of its secrets, for the agents of the chosen job and instances.
func agentDashboard() (*dashboard.DashboardBuilder, []panelInfo) {
	bd := newBoard("outrider-agent", "outrider agent",
		"The outrider sidecar: lines read, records sent and dropped, retries, the durable queue, tail lag, error events, secrets and reloads. Metrics from the agent's /metrics; see docs/runbook.md.",
		"outrider")
	bd.b.WithVariable(datasourceVar(varPrometheus, "Prometheus", "prometheus", uidPrometheus)).
		WithVariable(queryVar("job", "Job", promDS, "label_values(outrider_build_info, job)")).
		WithVariable(queryVar("instance", "Instance", promDS, `label_values(outrider_build_info{job=~"$job"}, instance)`)).
		Link(dashboard.NewDashboardLinkBuilder("Runbook").
			Type(dashboard.DashboardLinkTypeLink).
			Url("https://github.com/outrider-dev/outrider/blob/main/docs/runbook.md").
			TargetBlank(true).
			Icon("doc"))

	bd.row("Health")
	bd.stat(4, "Ready", "outrider_ready: 1 once the pipeline runs and every secret file was rendered once. See the runbook, \"Agent not ready\".", "none",
		q{"min(outrider_ready{" + sel + "})", ""}, thresholds("red", 1.0, "green")...)
	bd.stat(4, "Agents", "Agents reporting (outrider_build_info).", "none",
		q{"count(outrider_build_info{" + sel + "})", ""})
	bd.stat(4, "Config reloads rejected or rolled back", "outrider_config_reloads_total{result=~\"rejected|rolled_back\"} over the dashboard's range: a reload that did not take effect (the previous configuration runs).", "none",
		q{`sum(increase(outrider_config_reloads_total{result=~"rejected|rolled_back", ` + sel + `}[$__range]))`, ""}, thresholds("green", 1.0, "orange")...)
	bd.stat(6, "Since every secret was last fresh", "time() - outrider_secrets_last_success_timestamp_seconds: how long ago every secret file was last rendered and checked without error (the oldest agent).", "s",
		q{"time() - min(outrider_secrets_last_success_timestamp_seconds{" + sel + "})", ""}, thresholds("green", 300.0, "orange", 900.0, "red")...)
	bd.stat(6, "Vault token TTL", "outrider_vault_token_ttl_seconds as of the last login or renewal, the lowest of the agents whose token expires (0, a token that never expires, is left out).", "s",
		q{"min(outrider_vault_token_ttl_seconds{" + sel + "} > 0)", ""}, thresholds("red", 300.0, "orange", 900.0, "green")...)

	bd.row("Logs")
	bd.timeseries(8, "Lines read", "outrider_tail_lines_read_total: lines read from the followed files, by source.", "short",
		q{rate("outrider_tail_lines_read_total", "source"), "{{source}}"})
	bd.timeseries(8, "Records sent", "outrider_exporter_sent_records_total: records each backend accepted, by exporter (loki, otlp, sentry).", "short",
		q{rate("outrider_exporter_sent_records_total", "exporter"), "{{exporter}}"})
	bd.timeseries(8, "Records dropped by reason", "outrider_exporter_dropped_records_total: records a backend refused permanently (too old, out of order, unauthorized, retries exhausted, ...), by exporter and reason. Every drop is also logged with the backend's message.", "short",
		q{rate("outrider_exporter_dropped_records_total", "exporter, reason"), "{{exporter}} {{reason}}"})
	bd.timeseries(8, "Retries", "outrider_exporter_retries_total: retries scheduled after failed pushes, by exporter; steady retries without sent records mean the backend is down.", "short",
		q{rate("outrider_exporter_retries_total", "exporter"), "{{exporter}}"})
	bd.timeseries(8, "Push attempts by result", "outrider_exporter_requests_total: push attempts by exporter and result (success, retry, permanent).", "reqps",
		q{rate("outrider_exporter_requests_total", "exporter, result"), "{{exporter}} {{result}}"})
	bd.timeseries(8, "Push duration p99", "outrider_exporter_request_duration_seconds: the 99th percentile of push attempts, by exporter.", "s",
		q{"histogram_quantile(0.99, sum by (exporter, le) (rate(outrider_exporter_request_duration_seconds_bucket{" + sel + "}[$__rate_interval])))", "{{exporter}}"})
	bd.timeseries(8, "Tail lag", "outrider_tail_position_lag_bytes: bytes of the followed files read but not yet acknowledged by the backend, by source. It grows while the backend is slow or down: the file is the buffer.", "bytes",
		q{"max by (source) (outrider_tail_position_lag_bytes{" + sel + "})", "{{source}}"})
	bd.timeseries(8, "Pending in exporters", "outrider_exporter_pending_bytes: bytes accepted by an exporter and not yet delivered or dropped (bounded by batch.max_pending_bytes).", "bytes",
		q{"max by (exporter) (outrider_exporter_pending_bytes{" + sel + "})", "{{exporter}}"})
	bd.timeseries(8, "Log data lost", "outrider_tail_lost_bytes_total (bytes destroyed before they could be read: copytruncate window, rotated file deleted) and outrider_tail_cut_lines_dropped_total (unfinished lines a truncation cut).", "short",
		q{increase("outrider_tail_lost_bytes_total", "source, reason"), "bytes {{source}} {{reason}}"},
		q{increase("outrider_tail_cut_lines_dropped_total", "source"), "cut lines {{source}}"})

	bd.row("Durable queue and receivers")
	bd.timeseries(8, "Queue fill", "outrider_queue_bytes against outrider_queue_capacity_bytes (queue.max_size), by queue, the fullest agent. At 100% the receivers refuse requests with 429 / RESOURCE_EXHAUSTED.", "percentunit",
		q{"max by (queue) (outrider_queue_bytes{" + sel + "} / outrider_queue_capacity_bytes{" + sel + "})", "{{queue}}"}).
		Min(0).Max(1)
	bd.timeseries(8, "Queue bytes and capacity", "outrider_queue_bytes on disk and outrider_queue_capacity_bytes, by queue.", "bytes",
		q{"max by (queue) (outrider_queue_bytes{" + sel + "})", "{{queue}} on disk"},
		q{"max by (queue) (outrider_queue_capacity_bytes{" + sel + "})", "{{queue}} capacity"})
	bd.timeseries(8, "Queue refused, quarantined, damaged", "outrider_queue_rejected_full_total (appends refused because the queue was full), outrider_queue_quarantined_total (poison entries set aside) and outrider_queue_corrupt_total (damaged segment places skipped), by queue.", "short",
		q{increase("outrider_queue_rejected_full_total", "queue"), "refused {{queue}}"},
		q{increase("outrider_queue_quarantined_total", "queue"), "quarantined {{queue}}"},
		q{increase("outrider_queue_corrupt_total", "queue, reason"), "damaged {{queue}} {{reason}}"})
	bd.timeseries(12, "OTLP items received", "outrider_otlp_items_total: spans and log records received, by signal and result (accepted: on disk; rejected; refused: the client was told to retry or fix it).", "short",
		q{rate("outrider_otlp_items_total", "signal, result"), "{{signal}} {{result}}"})
	bd.timeseries(12, "OTLP requests by result", "outrider_otlp_requests_total: requests by signal, transport and result (ok, partial, invalid, too_deep, too_large, busy, full, error).", "reqps",
		q{rate("outrider_otlp_requests_total", "signal, transport, result"), "{{signal}} {{transport}} {{result}}"})

	bd.row("Error events")
	bd.timeseries(8, "Error events sent and limited", "outrider_error_events_total: Sentry events by source (log, span, sdk) and result (sent, limited by the per-fingerprint limit, sampled, failed).", "short",
		q{increase("outrider_error_events_total", "source, result"), "{{source}} {{result}}"})
	bd.timeseries(8, "Sentry SDK events received", "outrider_sentry_events_total: events the application's Sentry SDK sent to the sidecar, by result (accepted, limited, refused).", "short",
		q{increase("outrider_sentry_events_total", "source, result"), "{{source}} {{result}}"})
	bd.timeseries(8, "Sentry rate limiting", "outrider_sentry_rate_limited_seconds_total: the fraction of time Sentry rate-limited each category; events wait in the queue meanwhile.", "percentunit",
		q{rate("outrider_sentry_rate_limited_seconds_total", "category"), "{{category}}"})

	bd.row("Secrets")
	bd.timeseries(8, "Renders", "outrider_secrets_renders_total: secret file renders by result (ok: written, unchanged, error: the last good file is kept).", "short",
		q{increase("outrider_secrets_renders_total", "result"), "{{result}}"})
	bd.timeseries(8, "Lease TTL", "outrider_secrets_lease_ttl_seconds: each secret's lease (or certificate) TTL as of its last fetch or renewal, by Vault path.", "s",
		q{"min by (path) (outrider_secrets_lease_ttl_seconds{" + sel + "})", "{{path}}"})
	bd.timeseries(8, "Vault token TTL", "outrider_vault_token_ttl_seconds: the agent's Vault token TTL as of its last login or renewal.", "s",
		q{"min by (instance) (outrider_vault_token_ttl_seconds{" + sel + "})", "{{instance}}"})
	bd.timeseries(8, "Lease renewals", "outrider_secrets_lease_renewals_total: lease renewals by result.", "short",
		q{increase("outrider_secrets_lease_renewals_total", "result"), "{{result}}"})
	bd.timeseries(8, "Rotations and revocations", "outrider_secrets_rotations_total (new credentials fetched and rendered before the old lease ran out) and outrider_secrets_lease_revocations_total (old leases revoked after the application reloaded), by result.", "short",
		q{increase("outrider_secrets_rotations_total", "result"), "rotation {{result}}"},
		q{increase("outrider_secrets_lease_revocations_total", "result"), "revocation {{result}}"})
	bd.timeseries(8, "Application reloads", "outrider_secrets_reloads_total: attempts to make the application reload its secrets, by method and result.", "short",
		q{increase("outrider_secrets_reloads_total", "method, result"), "{{method}} {{result}}"})
	bd.timeseries(12, "Vault logins", "outrider_vault_logins_total: logins to Vault by result; failures mean the auth method, role or credentials are wrong (see the agent's log).", "short",
		q{increase("outrider_vault_logins_total", "result"), "{{result}}"})
	bd.timeseries(12, "Vault requests", "outrider_vault_requests_total: HTTP requests to Vault by operation and result (success, retryable, permanent).", "reqps",
		q{rate("outrider_vault_requests_total", "op, result"), "{{op}} {{result}}"})

	bd.row("Agent")
	bd.timeseries(8, "Config reloads", "outrider_config_reloads_total: configuration reloads by result (success, rejected: the new file was invalid, rolled_back: a new unit failed to start).", "short",
		q{increase("outrider_config_reloads_total", "result"), "{{result}}"})
	bd.timeseries(8, "Resident memory", "process_resident_memory_bytes of each agent.", "bytes",
		q{"max by (instance) (process_resident_memory_bytes{" + sel + "})", "{{instance}}"})
	bd.timeseries(8, "CPU", "process_cpu_seconds_total: CPU cores used by each agent.", "short",
		q{"sum by (instance) (rate(process_cpu_seconds_total{" + sel + "}[$__rate_interval]))", "{{instance}}"})
	return bd.b, bd.panels
}
