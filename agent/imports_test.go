package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/outrider-dev/outrider/"

// Layers, lowest first. A package is in the layer of the folder it sits in (see layerOf);
// docs/architecture.md ("Layout and layers") shows the same tree.
const (
	layerBase      = iota // pipeline (the contracts) and internal/* (helpers)
	layerComponent        // sources/*, receivers/*, processors/*, exporters/*, secrets/*
	layerConfig           // config: assembles the components' configuration types
	layerRuntime          // agent (the runtime) and inject (the injector)
	layerCmd              // cmd/*
)

var layerNames = []string{"pipeline/internal", "component", "config", "runtime", "cmd"}

// under reports whether the package path p is one of roots or inside one of them.
func under(p string, roots ...string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// isTooling reports packages the rules do not apply to: benchmarks, demos, end-to-end
// tests and test helpers (a package whose name ends in "test", such as internal/lokitest
// or exporters/internal/exportertest).
func isTooling(p string) bool {
	return under(p, "tools", "test", "examples") || strings.HasSuffix(p[strings.LastIndex(p, "/")+1:], "test")
}

// layerOf returns the layer of a package by its folder, or false for a folder that is in
// no layer (a new top-level folder must be given one here and in docs/architecture.md).
func layerOf(p string) (int, bool) {
	switch {
	case under(p, "pipeline", "internal"):
		return layerBase, true
	case under(p, "sources", "receivers", "processors", "exporters", "secrets"):
		return layerComponent, true
	case under(p, "config"):
		return layerConfig, true
	case under(p, "agent", "inject"):
		return layerRuntime, true
	case under(p, "cmd"):
		return layerCmd, true
	}
	return 0, false
}

func isIngest(p string) bool    { return under(p, "sources", "receivers") }
func isProcessor(p string) bool { return under(p, "processors") }

// isExporter reports an exporter; exporters/exporterhelper and exporters/internal are the
// code exporters share, not exporters.
func isExporter(p string) bool {
	return under(p, "exporters") && !under(p, "exporters/exporterhelper", "exporters/internal")
}

// exporterName is the exporter a package under exporters/ belongs to.
func exporterName(p string) string {
	return strings.SplitN(strings.TrimPrefix(p, "exporters/"), "/", 2)[0]
}

// isWiring reports the packages allowed to import both a source or receiver and an
// exporter: the runtime (agent, cmd/*) builds and connects them; config and inject
// only reference their configuration types (config assembles them into one file's
// schema, inject fills them in for the configuration it generates).
func isWiring(p string) bool { return under(p, "agent", "cmd", "config", "inject") }

// importViolations checks the import graph (package → packages of ours it imports, paths
// relative to the module) against the layout's rules and returns one line per broken
// rule, sorted.
func importViolations(imports map[string][]string) []string {
	var out []string
	bad := func(from, to, rule string) { out = append(out, fmt.Sprintf("%s → %s: %s", from, to, rule)) }
	for from, imps := range imports {
		if isTooling(from) {
			continue
		}
		lf, ok := layerOf(from)
		if !ok {
			out = append(out, fmt.Sprintf("%s: in no layer; put it in one of the layer folders (docs/architecture.md, Layout and layers)", from))
			continue
		}
		var ingest, exporter string
		for _, to := range imps {
			if to == from || isTooling(to) {
				continue
			}
			lt, ok := layerOf(to)
			switch {
			case !ok:
				bad(from, to, "imports a package that is in no layer")
			case lt > lf:
				bad(from, to, fmt.Sprintf("imports uphill (layer %s imports layer %s); a package imports only its own layer or lower", layerNames[lf], layerNames[lt]))
			case under(from, "pipeline"):
				bad(from, to, "the contracts (pipeline) import nothing of ours")
			case under(from, "internal") && !under(to, "internal"):
				bad(from, to, "internal helpers import only other internal helpers")
			case isIngest(from) && under(to, "exporters"):
				bad(from, to, "sources and receivers never import exporters; they hand batches to a pipeline.Sink")
			case isExporter(from) && under(to, "exporters") && !under(to, "exporters/exporterhelper", "exporters/internal") && exporterName(from) != exporterName(to):
				bad(from, to, "exporters never import each other; share code in exporters/exporterhelper or exporters/internal")
			case under(from, "exporters/exporterhelper", "exporters/internal") && isExporter(to):
				bad(from, to, "the exporters' shared code imports no exporter")
			case isProcessor(from) && (isIngest(to) || under(to, "exporters")):
				bad(from, to, "processors never import sources, receivers or exporters; they sit between them as a pipeline.Sink")
			}
			if isIngest(to) && ingest == "" {
				ingest = to
			}
			if isExporter(to) && exporter == "" {
				exporter = to
			}
		}
		if ingest != "" && exporter != "" && !isWiring(from) {
			bad(from, ingest+" and "+exporter, "only the runtime (agent, cmd) imports both a source or receiver and an exporter")
		}
	}
	slices.Sort(out)
	return out
}

// TestImportRules checks the layout's layers on the real import graph, production and
// test code alike, with no exceptions. Layers by folder, lowest first:
//
//	0  pipeline (the contracts), internal/* (helpers)
//	1  components: sources/*, receivers/*, processors/*, exporters/*, secrets/*
//	2  config: assembles the components' configuration types; builds and starts nothing
//	3  agent (the runtime), inject (the injector)
//	4  cmd/*
//
// Tooling is exempt: tools/*, test/*, examples/* and test helper packages (named *test).
//
// Rules: no package imports a higher layer; pipeline imports nothing of ours; internal
// helpers import only internal helpers; sources and receivers never import exporters;
// exporters never import each other (exporters/exporterhelper and exporters/internal are
// the only shared code, and import no exporter); processors never import sources,
// receivers or exporters; only the runtime (agent, cmd) imports both a source or
// receiver and an exporter — config and inject may also, because they reference the
// configuration types of both (config assembles them, inject fills them in for the
// configuration it generates), but they build and start nothing. A package in a folder
// that is in no layer fails the test until it is given one.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", module+"...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath                         string
		Imports, TestImports, XTestImports []string
		Error                              *struct{ Err string }
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Errorf("go list %s: %s (the import graph would be incomplete)", p.ImportPath, p.Error.Err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		imports[name] = nil
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if rel, ok := strings.CutPrefix(imp, module); ok && !slices.Contains(imports[name], rel) {
				imports[name] = append(imports[name], rel)
			}
		}
	}
	if len(imports) < 40 {
		t.Fatalf("go list found only %d packages", len(imports))
	}
	for _, v := range importViolations(imports) {
		t.Error(v)
	}
}

// TestImportRulesCatch feeds importViolations small graphs that break each rule, so that
// TestImportRules passing means the graph is clean, not that the checks are blind.
func TestImportRulesCatch(t *testing.T) {
	tests := []struct {
		name     string
		from, to string // one import, besides the graph's others
		also     string // a second import of from, for the wiring rule
		want     string // part of the violation; "" for none
	}{
		{name: "component imports config", from: "exporters/lokiexporter", to: "config", want: "uphill"},
		{name: "component imports the runtime", from: "receivers/otlpreceiver", to: "agent", want: "uphill"},
		{name: "config imports the runtime", from: "config", to: "agent", want: "uphill"},
		{name: "runtime imports cmd", from: "agent", to: "cmd/outrider", want: "uphill"},
		{name: "inject imports cmd", from: "inject", to: "cmd/outrider", want: "uphill"},
		{name: "helper imports a component", from: "internal/confval", to: "secrets", want: "uphill"},
		{name: "pipeline imports a helper", from: "pipeline", to: "internal/confval", want: "contracts"},
		{name: "helper imports pipeline", from: "internal/inflight", to: "pipeline", want: "internal helpers"},
		{name: "source imports an exporter", from: "sources/tail", to: "exporters/lokiexporter", want: "never import exporters"},
		{name: "receiver imports exporterhelper", from: "receivers/sentryreceiver", to: "exporters/exporterhelper", want: "never import exporters"},
		{name: "exporter imports another", from: "exporters/otlpexporter", to: "exporters/lokiexporter", want: "each other"},
		{name: "exporterhelper imports an exporter", from: "exporters/exporterhelper", to: "exporters/sentryexporter", want: "shared code"},
		{name: "processor imports a receiver", from: "processors/redact", to: "receivers/diskqueue", want: "processors never"},
		{name: "processor imports a source", from: "processors/parse", to: "sources/tail", want: "processors never"},
		{name: "processor imports exporterhelper", from: "processors/errorevents", to: "exporters/exporterhelper", want: "processors never"},
		{name: "component wires a receiver to an exporter", from: "secrets", to: "receivers/otlpreceiver", also: "exporters/otlpexporter", want: "only the runtime"},
		{name: "folder in no layer", from: "wiring", to: "pipeline", want: "in no layer"},
		{name: "import of a folder in no layer", from: "agent", to: "wiring", want: "in no layer"},
		// Allowed imports.
		{name: "exporter imports exporterhelper", from: "exporters/lokiexporter", to: "exporters/exporterhelper"},
		{name: "exporter imports its own subpackage", from: "exporters/otlpexporter", to: "exporters/otlpexporter/wire"},
		{name: "source imports processors", from: "sources/tail", to: "processors/multiline"},
		{name: "config references receiver and exporter", from: "config", to: "receivers/otlpreceiver", also: "exporters/otlpexporter"},
		{name: "inject references source and exporter", from: "inject", to: "sources/tail", also: "exporters/lokiexporter"},
		{name: "runtime wires receiver and exporter", from: "agent", to: "receivers/diskqueue", also: "exporters/sentryexporter"},
		{name: "tooling imports anything", from: "tools/bench/cmd/benchlogs", to: "agent"},
		{name: "test helper imports anything", from: "internal/lokitest", to: "exporters/lokiexporter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			graph := map[string][]string{"pipeline": nil, "agent": {"pipeline", "config"}}
			graph[tt.from] = []string{tt.to}
			if tt.also != "" {
				graph[tt.from] = append(graph[tt.from], tt.also)
			}
			got := importViolations(graph)
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("allowed import flagged: %q", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Fatalf("violations = %q, want one containing %q", got, tt.want)
			}
		})
	}
}
