package main

//lint:file-ignore SA1019 the dashboards are Grafana's classic JSON model (v1), which file provisioning loads in the compose stack's Grafana 12.1; schema v2 needs the Dynamic Dashboards and kubernetesDashboards feature toggles there

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestDashboardsAreUpToDate regenerates the dashboards and compares them byte for byte
// with the committed JSON: an edit to the code without `go run ./tools/grafana`, or a
// hand edit of the JSON, fails here. It also refuses JSON files the generator does
// not write.
func TestDashboardsAreUpToDate(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	again, err := render()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "examples", "grafana", "dashboards")
	for name, want := range files {
		if !bytes.Equal(want, again[name]) {
			t.Errorf("%s: two renders differ; the output must be deterministic", name)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v; run go run ./tools/grafana", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/grafana/dashboards/%s is not what tools/grafana writes; run go run ./tools/grafana and commit the result", name)
		}
	}
	committed, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range committed {
		if _, ok := files[filepath.Base(f)]; !ok {
			t.Errorf("%s is not written by tools/grafana; dashboards are code: add it there or delete the file", f)
		}
	}
}

// TestDashboardsRoundTrip reads the committed JSON back with the SDK's own decoder
// (every panel and query type registered, as Grafana's schema knows them) and writes
// it again: nothing may be lost or unknown to the schema.
func TestDashboardsRoundTrip(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		var d dashboard.Dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: the SDK cannot read it back: %v", name, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Errorf("%s changes when read back and written again: a field the schema does not know", name)
		}
	}
}
