package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// Names of the systems, as they appear in the table and the workdir.
const (
	outriderName = "outrider"
	otelcolName  = "otelcol"
)

// A system is one trace forwarder under test: how to configure and start it.
type system struct {
	// name labels the table row and the system's files in the workdir.
	name string
	// bin is the executable.
	bin string
	// configure writes the system's configuration for run and returns the
	// command-line arguments that start it.
	configure func(run runSetup) ([]string, error)
}

// runSetup is what one system's run is configured with.
type runSetup struct {
	// dir holds the configuration and the output log; data is the state directory.
	dir, data string
	// grpcPort and httpPort are free 127.0.0.1 ports for the OTLP receivers.
	grpcPort, httpPort int
	// sinkAddr is the counting sink's host:port.
	sinkAddr string
	// otelcolQueue is "memory" (the exporter's default in-memory sending queue) or
	// "file" (a persistent queue in file_storage under data).
	otelcolQueue string
	// pprofPort, when not 0, is the port of outrider's own server, with pprof on.
	pprofPort int
}

// yamlQuote renders s as a double-quoted YAML scalar. Go's quoting escapes only with
// sequences YAML's double-quoted style also defines (\n, \t, \", \\, \xNN, \uNNNN, …).
func yamlQuote(s string) string { return strconv.Quote(s) }

var funcs = template.FuncMap{"q": yamlQuote}

// outriderTemplate is the agent's configuration: OTLP receivers, the durable queue,
// and the OTLP exporter pointed at the counting sink.
var outriderTemplate = template.Must(template.New("outrider").Funcs(funcs).Parse(`# outrider agent configuration written by benchtraces.
data_dir: {{q .Data}}
server: {listen: "127.0.0.1:{{.ServerPort}}"{{if .ServerPort}}, pprof: true{{end}}}
log: {level: warn}
receivers:
  otlp:
    grpc: {listen: "127.0.0.1:{{.GRPCPort}}"}
    http: {listen: "127.0.0.1:{{.HTTPPort}}"}
queue: {max_size: 1GiB, fsync: interval}
exporters:
  otlp:
    endpoint: {{q .SinkURL}}
    protocol: grpc
    compression: none
`))

// otelcolTemplate, for collector v0.160.0 (whose gRPC OTLP exporter is named
// otlp_grpc), gives the collector the same work: OTLP/gRPC in, batch, OTLP/gRPC out
// without compression. With queue "file" the exporter's sending queue is persisted
// in file_storage, as outrider's queue is.
var otelcolTemplate = template.Must(template.New("otelcol").Funcs(funcs).Parse(`# OpenTelemetry Collector configuration written by benchtraces.
{{- if eq .Queue "file"}}
extensions:
  file_storage:
    directory: {{q .Data}}
    create_directory: true
{{- end}}

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "127.0.0.1:{{.GRPCPort}}"

processors:
  batch: {}

exporters:
  otlp_grpc:
    endpoint: {{q .SinkAddr}}
    compression: none
    tls:
      insecure: true
{{- if eq .Queue "file"}}
    sending_queue:
      storage: file_storage
{{- end}}

service:
{{- if eq .Queue "file"}}
  extensions: [file_storage]
{{- end}}
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_grpc]
`))

type templateData struct {
	Data, SinkURL, SinkAddr, Queue string
	GRPCPort, HTTPPort, ServerPort int
}

func render(t *template.Template, d templateData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render %s configuration: %w", t.Name(), err)
	}
	return b.String(), nil
}

func writeConfig(t *template.Template, path string, d templateData) error {
	text, err := render(t, d)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write %s configuration: %w", t.Name(), err)
	}
	return nil
}

func dataFor(run runSetup) templateData {
	return templateData{
		Data:       run.data,
		SinkURL:    "http://" + run.sinkAddr,
		SinkAddr:   run.sinkAddr,
		Queue:      run.otelcolQueue,
		GRPCPort:   run.grpcPort,
		HTTPPort:   run.httpPort,
		ServerPort: run.pprofPort,
	}
}

// outriderSystem runs "<bin> agent --config <file>".
func outriderSystem(bin string) system {
	return system{
		name: outriderName,
		bin:  bin,
		configure: func(run runSetup) ([]string, error) {
			path := filepath.Join(run.dir, "outrider.yaml")
			if err := writeConfig(outriderTemplate, path, dataFor(run)); err != nil {
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
		configure: func(run runSetup) ([]string, error) {
			path := filepath.Join(run.dir, "otelcol.yaml")
			if err := writeConfig(otelcolTemplate, path, dataFor(run)); err != nil {
				return nil, err
			}
			return []string{"--config", path}, nil
		},
	}
}
