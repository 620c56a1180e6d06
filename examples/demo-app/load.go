package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// loadReport is what `demo-app load` prints as JSON when it is done.
type loadReport struct {
	Requests int            `json:"requests"`
	Status   map[string]int `json:"status"`
	// Failed lists the trace IDs of the requests answered 500, in order, so that a
	// script can look each one up in Loki, the trace backend and Sentry.
	Failed []failure `json:"failed"`
	// Traces lists every trace ID the service answered with.
	Traces  []string `json:"traces"`
	Seconds float64  `json:"seconds"`
}

type failure struct {
	Kind    string `json:"kind"`
	TraceID string `json:"trace_id"`
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	target := fs.String("target", env("DEMO_TARGET", "http://127.0.0.1:8080"), "the service's base URL (DEMO_TARGET)")
	requests := fs.Int("requests", 500, "requests to send; 0 runs until -duration or Ctrl-C")
	duration := fs.Duration("duration", 0, "stop after this long (0: after -requests)")
	rate := fs.Float64("rate", 50, "requests per second")
	workers := fs.Int("concurrency", 4, "requests in flight")
	declineEvery := fs.Int("decline-every", 40, "one order in N has its payment declined (an error, reported to Sentry)")
	crashEvery := fs.Int("crash-every", 250, "one request in N makes a handler panic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *workers <= 0 {
		return fmt.Errorf("-rate and -concurrency must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	type job struct {
		n          int
		method     string
		path, kind string
	}
	jobs := make(chan job)
	go func() {
		defer close(jobs)
		tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
		defer tick.Stop()
		for n := 1; *requests == 0 || n <= *requests; n++ {
			j := job{n: n, method: http.MethodGet, path: "/api/orders/" + strconv.Itoa(n), kind: "get"}
			switch {
			case *crashEvery > 0 && n%*crashEvery == 0:
				j.path, j.kind = "/api/crash?sku=sku-"+strconv.Itoa(n), "panic"
			case *declineEvery > 0 && n%*declineEvery == 0:
				j.method, j.path, j.kind = http.MethodPost, "/api/orders?decline", "declined"
			case n%4 == 0:
				j.method, j.path, j.kind = http.MethodPost, "/api/orders", "order"
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-ctx.Done():
				return
			case jobs <- j:
			}
		}
	}()

	var mu sync.Mutex
	rep := loadReport{Status: map[string]int{}}
	start := time.Now()
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				req, _ := http.NewRequest(j.method, *target+j.path, nil)
				req.Header.Set("X-Request-Id", fmt.Sprintf("load-%06d", j.n))
				resp, err := client.Do(req)
				status := "error"
				trace := ""
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = strconv.Itoa(resp.StatusCode)
					trace = resp.Header.Get("X-Trace-Id")
				}
				mu.Lock()
				rep.Requests++
				rep.Status[status]++
				if trace != "" {
					rep.Traces = append(rep.Traces, trace)
				}
				if status == "500" {
					rep.Failed = append(rep.Failed, failure{Kind: j.kind, TraceID: trace})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	sort.Slice(rep.Failed, func(a, b int) bool { return rep.Failed[a].TraceID < rep.Failed[b].TraceID })
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if rep.Status["error"] > 0 {
		return fmt.Errorf("%d requests got no answer from %s", rep.Status["error"], *target)
	}
	return nil
}
