package monitoring

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const runbookURL = "https://github.com/outrider-dev/outrider/blob/main/docs/runbook.md#"

// runbookAnchors returns the anchors GitHub gives the headings of docs/runbook.md.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(Root(), "docs", "runbook.md"))
	if err != nil {
		t.Fatalf("the alert rules link docs/runbook.md: %v", err)
	}
	defer f.Close()
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	inFence := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		a := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		anchors[a] = true
	}
	return anchors
}

// TestAlertRules parses the PrometheusRule's spec as Prometheus parses a rule file
// (strict fields, every expression through the PromQL parser, durations, label
// names, annotation templates), parses each expression once more on its own, and
// checks that every alert says how bad it is and links a section of the runbook that
// exists.
func TestAlertRules(t *testing.T) {
	pr, err := Rules(Root())
	if err != nil {
		t.Fatal(err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Name == "" {
		t.Fatalf("%s: apiVersion %q kind %q name %q, want a monitoring.coreos.com/v1 PrometheusRule with a name", RulesFile, pr.APIVersion, pr.Kind, pr.Metadata.Name)
	}
	p := parser.NewParser(parser.Options{})
	if _, errs := rulefmt.Parse(pr.SpecYAML, false, model.UTF8Validation, p, slog.New(slog.NewTextHandler(io.Discard, nil))); len(errs) > 0 {
		for _, e := range errs {
			t.Errorf("%s: Prometheus refuses the rules: %v", RulesFile, e)
		}
	}
	anchors := runbookAnchors(t)
	seen := map[string]bool{}
	n := 0
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			n++
			t.Run(r.Alert, func(t *testing.T) {
				if r.Alert == "" || seen[r.Alert] {
					t.Fatalf("group %s: an alert without a name or a name used twice (%q)", g.Name, r.Alert)
				}
				seen[r.Alert] = true
				expr, err := p.ParseExpr(r.Expr)
				if err != nil {
					t.Fatalf("expr %q: %v", r.Expr, err)
				}
				if expr.Type() != parser.ValueTypeVector {
					t.Errorf("expr %q is a %s; an alert needs an instant vector", r.Expr, expr.Type())
				}
				names, err := MetricNames(r.Expr)
				if err != nil || len(names) == 0 {
					t.Errorf("expr %q reads no named metric (%v)", r.Expr, err)
				}
				for _, name := range names {
					if !strings.HasPrefix(name, "outrider_") {
						t.Errorf("expr %q reads %s, not one of the agent's metrics", r.Expr, name)
					}
				}
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("severity %q, want warning or critical", s)
				}
				for _, k := range []string{"summary", "description", "runbook_url"} {
					if strings.TrimSpace(r.Annotations[k]) == "" {
						t.Errorf("annotation %s is missing", k)
					}
				}
				u := r.Annotations["runbook_url"]
				anchor, ok := strings.CutPrefix(u, runbookURL)
				if !ok || !anchors[anchor] {
					t.Errorf("runbook_url %q: want %s<anchor> of a heading in docs/runbook.md", u, runbookURL)
				}
			})
		}
	}
	if n == 0 {
		t.Fatalf("%s holds no rules", RulesFile)
	}
}

// TestRunbookCoversTheAlerts checks the other direction: each of the runbook's
// situations an operator meets is linked by at least one alert.
func TestRunbookCoversTheAlerts(t *testing.T) {
	pr, err := Rules(Root())
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, q := range pr.Spec.Groups {
		for _, r := range q.Rules {
			a, _ := strings.CutPrefix(r.Annotations["runbook_url"], runbookURL)
			linked[a] = true
		}
	}
	anchors := runbookAnchors(t)
	for _, a := range []string{"agent-not-ready", "backend-down", "queue-full", "vault-auth-failing", "secret-not-rotating", "error-events-missing"} {
		if !anchors[a] {
			t.Errorf("docs/runbook.md has no section #%s", a)
		}
		if !linked[a] {
			t.Errorf("no alert links docs/runbook.md#%s", a)
		}
	}
}

// TestPodMonitor checks that the PodMonitor scrapes the port the injector gives the
// sidecar, as the injector's golden pods show it.
func TestPodMonitor(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(Root(), PodMonitorFile))
	if err != nil {
		t.Fatal(err)
	}
	var pm struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			NamespaceSelector   map[string]any `yaml:"namespaceSelector"`
			Selector            map[string]any `yaml:"selector"`
			PodMetricsEndpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"podMetricsEndpoints"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &pm); err != nil {
		t.Fatalf("%s: %v", PodMonitorFile, err)
	}
	if pm.APIVersion != "monitoring.coreos.com/v1" || pm.Kind != "PodMonitor" || len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("%s: %+v, want a PodMonitor with one endpoint", PodMonitorFile, pm)
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Path != "/metrics" {
		t.Errorf("path %q, want /metrics", ep.Path)
	}
	golden, err := os.ReadFile(filepath.Join(Root(), "inject", "testdata", "classic.golden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Spec struct {
			Containers []struct {
				Name  string `yaml:"name"`
				Ports []struct {
					Name string `yaml:"name"`
				} `yaml:"ports"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(golden, &pod); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			found = found || p.Name == ep.Port
		}
	}
	if !found {
		t.Errorf("the PodMonitor scrapes port %q, which the injected pod (inject/testdata/classic.golden.yaml) does not have", ep.Port)
	}
}

// TestKustomization renders deploy/monitoring as `kubectl apply -k` does.
func TestKustomization(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(Root(), "deploy", "monitoring"))
	if err != nil {
		t.Fatalf("kustomize build deploy/monitoring: %v", err)
	}
	kinds := map[string]bool{}
	for _, r := range rm.Resources() {
		kinds[r.GetKind()] = true
		if r.GetNamespace() != "outrider-system" || r.GetLabels()["app.kubernetes.io/part-of"] != "outrider" {
			t.Errorf("%s %s: namespace %q labels %v", r.GetKind(), r.GetName(), r.GetNamespace(), r.GetLabels())
		}
	}
	if !kinds["PodMonitor"] || !kinds["PrometheusRule"] || len(kinds) != 2 {
		t.Errorf("deploy/monitoring renders %v, want a PodMonitor and a PrometheusRule", kinds)
	}
}
