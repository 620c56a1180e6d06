package agent

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/outrider-dev/outrider/"

// knownImportViolations are today's imports that break a rule below, each with why it
// exists. The layout change that moves packages into contract → components → wiring
// folders empties this list; a new entry needs a reason as good.
var knownImportViolations = map[string]string{
	// config holds every component's configuration struct, so it imports the
	// components to embed their Config types; it wires nothing.
	"config → agent/tail":           "embeds tail.Config",
	"config → agent/otlp":           "embeds the OTLP receiver's Config",
	"config → agent/sentryingest":   "embeds the Sentry receiver's Config",
	"config → agent/errorevents":    "embeds errorevents.Config",
	"config → exporters/loki":       "embeds loki.Config",
	"config → exporters/otlp":       "embeds the OTLP exporter's Config",
	"config → exporters/sentry":     "embeds the Sentry exporter's Config",
	"config → exporters/queue/disk": "embeds the durable queue's Config",
	"config → secrets":              "embeds secrets.Config",
	// inject generates the sidecar's configuration with the config package's types.
	"inject → agent/tail":     "builds a tail.Config for the generated configuration",
	"inject → agent/otlp":     "builds the receiver's Config for the generated configuration",
	"inject → exporters/loki": "builds loki.Config for the generated configuration",
	"inject → exporters/otlp": "builds the OTLP exporter's Config for the generated configuration",
	"inject → secrets":        "builds secrets.Config for the generated configuration",
}

// TestImportRules checks the layers: the contract (agent/pipeline) imports nothing of
// ours; sources and receivers never import exporters; exporters never import each
// other; components never import the runtime; only the runtime (agent, cmd) imports
// both sources or receivers and exporters.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-json", module+"...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
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
		name := strings.TrimPrefix(p.ImportPath, module)
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				imports[name] = append(imports[name], strings.TrimPrefix(imp, module))
			}
		}
		if _, ok := imports[name]; !ok {
			imports[name] = nil
		}
	}
	if len(imports) < 20 {
		t.Fatalf("go list found only %d packages", len(imports))
	}
	under := func(p string, roots ...string) bool {
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, r+"/") {
				return true
			}
		}
		return false
	}
	isSource := func(p string) bool {
		return under(p, "agent/tail", "agent/otlp", "agent/sentryingest", "agent/parse", "agent/multiline")
	}
	isExporter := func(p string) bool {
		return under(p, "exporters") && !under(p, "exporters/queue", "exporters/internal")
	}
	exporterName := func(p string) string { return strings.SplitN(strings.TrimPrefix(p, "exporters/"), "/", 2)[0] }
	isRuntime := func(p string) bool { return p == "agent" || under(p, "cmd") }
	isTooling := func(p string) bool { return under(p, "tools", "test") || strings.HasSuffix(p, "test") }

	seen := map[string]bool{}
	violation := func(from, to, rule string) {
		key := from + " → " + to
		seen[key] = true
		if _, ok := knownImportViolations[key]; !ok {
			t.Errorf("%s: %s", key, rule)
		}
	}
	for from, imps := range imports {
		if isTooling(from) {
			continue
		}
		var source, exporter bool
		for _, to := range imps {
			switch {
			case under(from, "agent/pipeline"):
				violation(from, to, "the contract package imports nothing of ours")
			case isSource(from) && under(to, "exporters"):
				violation(from, to, "sources and receivers never import exporters; they hand batches to a pipeline.Sink")
			case isExporter(from) && isExporter(to) && exporterName(from) != exporterName(to):
				violation(from, to, "exporters never import each other; share code in exporters/queue")
			case !isRuntime(from) && isRuntime(to):
				violation(from, to, "components never import the runtime")
			}
			source = source || isSource(to)
			exporter = exporter || isExporter(to)
		}
		if source && exporter && !isRuntime(from) {
			for _, to := range imps {
				if isSource(to) || isExporter(to) || to == "agent/errorevents" || to == "exporters/queue/disk" || to == "secrets" {
					violation(from, to, "only the runtime (agent, cmd) wires sources and exporters together")
				}
			}
		}
	}
	var stale []string
	for k := range knownImportViolations {
		if !seen[k] {
			stale = append(stale, k)
		}
	}
	slices.Sort(stale)
	for _, k := range stale {
		t.Errorf("%s is in knownImportViolations but no longer happens: remove it", k)
	}
}
