package main

import "github.com/outrider-dev/outrider/tools/bench/internal/peer"

// A system is one trace forwarder under test.
type system = peer.System[runSetup]

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

// outriderTemplate is the agent's configuration: OTLP receivers, the durable queue,
// and the OTLP exporter pointed at the counting sink.
var outriderTemplate = peer.Template("outrider", `# outrider agent configuration written by benchtraces.
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
`)

// otelcolTemplate, for collector v0.160.0 (whose gRPC OTLP exporter is named
// otlp_grpc), gives the collector the same work: OTLP/gRPC in, batch, OTLP/gRPC out
// without compression. With queue "file" the exporter's sending queue is persisted
// in file_storage, as outrider's queue is.
var otelcolTemplate = peer.Template("otelcol", `# OpenTelemetry Collector configuration written by benchtraces.
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
`)

type templateData struct {
	Data, SinkURL, SinkAddr, Queue string
	GRPCPort, HTTPPort, ServerPort int
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
	return system{Name: peer.Outrider, Bin: bin, Configure: func(run runSetup) ([]string, error) {
		return peer.Configure(run.dir, peer.Outrider, outriderTemplate, dataFor(run))
	}}
}

// otelcolSystem runs "<bin> --config <file>".
func otelcolSystem(bin string) system {
	return system{Name: peer.Otelcol, Bin: bin, Configure: func(run runSetup) ([]string, error) {
		return peer.Configure(run.dir, peer.Otelcol, otelcolTemplate, dataFor(run))
	}}
}
