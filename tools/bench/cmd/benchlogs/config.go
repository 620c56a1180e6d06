package main

import (
	"path/filepath"

	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
	"github.com/outrider-dev/outrider/tools/bench/internal/sink"
)

// A system is one log shipper under test.
type system = peer.System[runSetup]

// runSetup is what one system's run is configured with; its paths are all under
// the workdir.
type runSetup struct {
	// dir holds the system's configuration and output log.
	dir string
	// in is the directory the system watches; the input file is linked into it.
	in string
	// data is the system's state directory (checkpoints).
	data string
	// sinkURL is the counting sink's base URL.
	sinkURL string
}

func newRunSetup(workdir, name string) runSetup {
	return runSetup{
		dir:  workdir,
		in:   filepath.Join(workdir, name+"-in"),
		data: filepath.Join(workdir, name+"-data"),
	}
}

// outriderTemplate is the agent's configuration: one JSON file source, the Loki
// exporter pointed at the counting sink.
var outriderTemplate = peer.Template("outrider", `# outrider agent configuration written by benchlogs.
data_dir: {{q .Data}}
identity: {service: bench, namespace: bench, pod: bench-0, container: app}
server: {listen: "127.0.0.1:0"}
log: {level: warn}
logs:
  sources:
    - name: app
      path: {{q .Glob}}
      parser: {format: json}
exporters:
  loki:
    url: {{q .SinkURL}}
`)

// otelcolTemplate, for collector v0.160.0, gives the collector the same work as the agent: tail the file from
// the beginning with checkpoints on disk, parse each line as JSON, take the
// timestamp, severity and trace context from it, stamp the same identity, batch,
// and export over HTTP.
var otelcolTemplate = peer.Template("otelcol", `# OpenTelemetry Collector configuration written by benchlogs: the same work as
# outrider's file -> Loki path (tail, checkpoint, parse JSON, extract time, level and
# trace context, stamp identity, batch, push). Component names are v0.160's
# (file_log and otlp_http; filelog and otlphttp are deprecated aliases there).
#
# outrider's Loki push is snappy-compressed (the Loki protocol requires it); the
# collector is given the cheaper path here: OTLP/HTTP protobuf with no compression.
extensions:
  file_storage:
    directory: {{q .Data}}
    create_directory: true

receivers:
  file_log:
    include: [{{q .Glob}}]
    start_at: beginning
    storage: file_storage
    resource:
      service.name: bench
      service.namespace: bench
      k8s.pod.name: bench-0
      k8s.container.name: app
    operators:
      - type: json_parser
        timestamp:
          parse_from: attributes.time
          layout_type: gotime
          layout: "2006-01-02T15:04:05.999999999Z07:00"
        severity:
          parse_from: attributes.level
        trace:
          trace_id:
            parse_from: attributes.trace_id
          span_id:
            parse_from: attributes.span_id

processors:
  batch: {}

exporters:
  otlp_http:
    logs_endpoint: {{q .LogsEndpoint}}
    compression: none

service:
  extensions: [file_storage]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [file_log]
      processors: [batch]
      exporters: [otlp_http]
`)

type templateData struct {
	Data, Glob, SinkURL, LogsEndpoint string
}

// outriderSystem runs "<bin> agent --config <file>".
func outriderSystem(bin string) system {
	return system{Name: peer.Outrider, Bin: bin, Configure: func(run runSetup) ([]string, error) {
		return peer.Configure(run.dir, peer.Outrider, outriderTemplate, templateData{
			Data:    run.data,
			Glob:    filepath.Join(run.in, "*.log"),
			SinkURL: run.sinkURL,
		})
	}}
}

// otelcolSystem runs "<bin> --config <file>".
func otelcolSystem(bin string) system {
	return system{Name: peer.Otelcol, Bin: bin, Configure: func(run runSetup) ([]string, error) {
		return peer.Configure(run.dir, peer.Otelcol, otelcolTemplate, templateData{
			Data:         run.data,
			Glob:         filepath.Join(run.in, "*.log"),
			LogsEndpoint: run.sinkURL + sink.OTLPLogsPath,
		})
	}}
}
