// Command demo-app is a small shop service to run beside outrider: it is instrumented
// the way outrider expects an application to be, and it can load itself.
//
//	demo-app serve   the HTTP service
//	demo-app load    a load generator with a realistic mix for it
//	demo-app health  exit 0 when the service answers /healthz (for a container healthcheck)
//
// The service sends traces and metrics with the OpenTelemetry SDK over OTLP/HTTP to
// the sidecar (the standard OTEL_* variables: OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_SERVICE_NAME, OTEL_METRICS_EXPORTER=none to turn metrics off); writes JSON logs
// carrying trace_id, span_id and request_id to a shared file (DEMO_LOG_FILE) and to
// stdout; reports errors and panics with sentry-go to SENTRY_DSN (the sidecar's
// Sentry receiver); and reads its database credentials from the file outrider renders
// (DB_CREDENTIALS_FILE, lines DB_USER=… and DB_PASSWORD=…), opening a new connection
// pool on SIGHUP while requests in flight finish on the old one.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "health":
		err = health(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "demo-app: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-app:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: demo-app serve [flags]   run the shop service
       demo-app load  [flags]   send a realistic mix of requests to it
       demo-app health [URL]    exit 0 when the service answers /healthz
Run either with -h for its flags.`)
}

// health asks the service's /healthz, for a container healthcheck in an image without
// a shell or curl.
func health(args []string) error {
	url := "http://127.0.0.1:8080/healthz"
	if len(args) > 0 {
		url = args[0]
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
