package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/outrider-dev/outrider/tools/bench/internal/sink"
)

// fakeArg makes the test binary act as a log shipper (see fakeMain) instead of
// running tests, so measure can be tested without outrider or the collector.
const fakeArg = "benchlogs-fake-shipper"

// fakeSystem is a system whose process is this test binary in fake mode.
func fakeSystem(name, mode string) system {
	return system{Name: name, Bin: os.Args[0], Configure: func(run runSetup) ([]string, error) {
		return []string{fakeArg, mode, filepath.Join(run.in, "app.log"), run.sinkURL}, nil
	}}
}

// fakeMain pushes the lines of a file to a Loki push endpoint in batches of 500,
// then behaves as mode says:
//
//	all          push every line, then wait for SIGTERM
//	half         push half of the lines, then wait for SIGTERM
//	exit         push half of the lines, then exit by itself
//	ignore-term  push every line, then ignore SIGTERM
func fakeMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "fake shipper: want MODE FILE SINKURL")
		return 2
	}
	mode, path, url := args[0], args[1], args[2]
	if mode == "ignore-term" {
		signal.Ignore(syscall.SIGTERM)
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)

	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake shipper:", err)
		return 1
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
	if mode == "half" || mode == "exit" {
		lines = lines[:len(lines)/2]
	}
	for len(lines) > 0 {
		n := min(500, len(lines))
		st := push.Stream{Labels: `{service="bench"}`}
		for i, l := range lines[:n] {
			st.Entries = append(st.Entries, push.Entry{
				Timestamp:          time.Unix(0, int64(i)),
				Line:               string(l),
				StructuredMetadata: push.LabelsAdapter{{Name: "trace_id", Value: "0102030405060708090a0b0c0d0e0f10"}},
			})
		}
		lines = lines[n:]
		req := push.PushRequest{Streams: []push.Stream{st}}
		raw, err := req.Marshal()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake shipper:", err)
			return 1
		}
		resp, err := http.Post(url+sink.LokiPushPath, "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, raw)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake shipper:", err)
			return 1
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			fmt.Fprintln(os.Stderr, "fake shipper: push status", resp.Status)
			return 1
		}
	}
	w := bufio.NewWriter(os.Stderr)
	fmt.Fprintln(w, "fake shipper: pushed, mode", mode)
	w.Flush()
	if mode == "exit" {
		return 0
	}
	if mode == "ignore-term" {
		time.Sleep(time.Minute)
		return 0
	}
	select {
	case <-terms:
		return 0
	case <-time.After(time.Minute):
		return 3
	}
}
