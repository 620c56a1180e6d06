package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/outrider-dev/outrider/tools/bench/internal/sink"
)

// Names of the systems, as they appear in the table and the workdir.
const (
	outriderName = "outrider"
	otelcolName  = "otelcol"
)

// A system is one log shipper under test: how to configure and start it.
type system struct {
	// name labels the table row and the system's directories in the workdir.
	name string
	// bin is the executable.
	bin string
	// configure writes the system's configuration into run.dir and returns the
	// command-line arguments that start it.
	configure func(run runDirs, sinkURL string) ([]string, error)
}

// runDirs are the paths one system's run uses, all under the workdir.
type runDirs struct {
	// dir holds the system's configuration and output log.
	dir string
	// in is the directory the system watches; the input file is linked into it.
	in string
	// data is the system's state directory (checkpoints).
	data string
}

func newRunDirs(workdir, name string) runDirs {
	return runDirs{
		dir:  workdir,
		in:   filepath.Join(workdir, name+"-in"),
		data: filepath.Join(workdir, name+"-data"),
	}
}

// yamlQuote renders s as a double-quoted YAML scalar. Go's quoting escapes only with
// sequences YAML's double-quoted style also defines (\n, \t, \", \\, \xNN, \uNNNN, …).
func yamlQuote(s string) string { return strconv.Quote(s) }

var funcs = template.FuncMap{"q": yamlQuote}

// outriderTemplate is the agent's configuration: one JSON file source, the Loki
// exporter pointed at the counting sink.
var outriderTemplate = template.Must(template.New("outrider").Funcs(funcs).Parse(`# outrider agent configuration written by benchlogs.
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
`))

// otelcolTemplate, for collector v0.160.0, gives the collector the same work as the agent: tail the file from
// the beginning with checkpoints on disk, parse each line as JSON, take the
// timestamp, severity and trace context from it, stamp the same identity, batch,
// and export over HTTP.
var otelcolTemplate = template.Must(template.New("otelcol").Funcs(funcs).Parse(`# OpenTelemetry Collector configuration written by benchlogs: the same work as
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
`))

type templateData struct {
	Data, Glob, SinkURL, LogsEndpoint string
}

func writeTemplate(t *template.Template, path string, d templateData) error {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return fmt.Errorf("render %s configuration: %w", t.Name(), err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s configuration: %w", t.Name(), err)
	}
	return nil
}

// outriderSystem runs "<bin> agent --config <file>".
func outriderSystem(bin string) system {
	return system{
		name: outriderName,
		bin:  bin,
		configure: func(run runDirs, sinkURL string) ([]string, error) {
			path := filepath.Join(run.dir, "outrider.yaml")
			err := writeTemplate(outriderTemplate, path, templateData{
				Data:    run.data,
				Glob:    filepath.Join(run.in, "*.log"),
				SinkURL: sinkURL,
			})
			if err != nil {
				return nil, err
			}
			return []string{"agent", "--config", path}, nil
		},
	}
}

// otelcolSystem runs "<bin> --config <file>".
func otelcolSystem(bin string) system {
	return system{
		name: otelcolName,
		bin:  bin,
		configure: func(run runDirs, sinkURL string) ([]string, error) {
			path := filepath.Join(run.dir, "otelcol.yaml")
			err := writeTemplate(otelcolTemplate, path, templateData{
				Data:         run.data,
				Glob:         filepath.Join(run.in, "*.log"),
				LogsEndpoint: sinkURL + sink.OTLPLogsPath,
			})
			if err != nil {
				return nil, err
			}
			return []string{"--config", path}, nil
		},
	}
}
