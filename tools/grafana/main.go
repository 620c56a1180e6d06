// Command grafana writes the dashboards of examples/grafana/dashboards as JSON. They
// are written as code with the Grafana Foundation SDK and the JSON is committed, so a
// Grafana without this program (a compose stack, a user's own) provisions them as
// files; TestDashboardsAreUpToDate fails when the committed JSON is not what this
// program writes.
//
//	go run ./tools/grafana            # rewrite examples/grafana/dashboards/*.json
//	go run ./tools/grafana -list      # one line per panel: dashboard, title, query
//	go generate ./tools/grafana       # the same as the first
package main

//lint:file-ignore SA1019 the dashboards are Grafana's classic JSON model (v1), which file provisioning loads in the compose stack's Grafana 12.1; schema v2 needs the Dynamic Dashboards and kubernetesDashboards feature toggles there

//go:generate go run . -out ../../examples/grafana/dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Datasource UIDs the provisioning in examples/grafana/datasources.yaml gives, and the
// dashboards' datasource variables default to.
const (
	uidPrometheus = "prometheus"
	uidLoki       = "loki"
	uidTempo      = "tempo"
)

func main() {
	out := flag.String("out", filepath.Join("examples", "grafana", "dashboards"), "folder the dashboards are written to")
	list := flag.Bool("list", false, "print one line per panel (dashboard, title, query) instead of writing files")
	flag.Parse()
	files, err := render()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grafana:", err)
		os.Exit(1)
	}
	if *list {
		for _, d := range built {
			for _, p := range d.panels {
				fmt.Printf("%s\t%s\t%s\n", d.title, p.title, strings.Join(p.queries, " ; "))
			}
		}
		return
	}
	for _, name := range sortedKeys(files) {
		if err := os.WriteFile(filepath.Join(*out, name), files[name], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "grafana:", err)
			os.Exit(1)
		}
	}
}

// builtDashboard is a dashboard and what its panels query, for -list.
type builtDashboard struct {
	title  string
	panels []panelInfo
}

type panelInfo struct {
	title   string
	queries []string
}

var built []builtDashboard

// render returns every dashboard's JSON by file name. The output is deterministic:
// the SDK's types marshal in struct order and maps (none are used) in key order.
func render() (map[string][]byte, error) {
	built = nil
	files := map[string][]byte{}
	for _, def := range []struct {
		file  string
		build func() (*dashboard.DashboardBuilder, []panelInfo)
	}{
		{"outrider-agent.json", agentDashboard},
		{"service-overview.json", serviceDashboard},
	} {
		b, panels := def.build()
		d, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", def.file, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("%s: %w", def.file, err)
		}
		files[def.file] = buf.Bytes()
		built = append(built, builtDashboard{title: *d.Title, panels: panels})
	}
	return files, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
