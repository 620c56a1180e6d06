// Package monitoring reads the monitoring the project ships — the Grafana
// provisioning and dashboards in examples/grafana and the alert rules in
// deploy/monitoring — and finds the Prometheus metrics they read. Its tests check
// the files on their own (every expression parses, every runbook link has its
// section, every datasource reference resolves); test/e2e holds the metric names
// against a running agent's /metrics.
package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// Root is the repository's root folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Paths of the monitoring files, relative to Root.
const (
	DashboardsDir   = "examples/grafana/dashboards"
	DatasourcesFile = "examples/grafana/provisioning/datasources/outrider.yaml"
	ProviderFile    = "examples/grafana/provisioning/dashboards/outrider.yaml"
	RulesFile       = "deploy/monitoring/prometheusrule.yaml"
	PodMonitorFile  = "deploy/monitoring/podmonitor.yaml"
)

// Query is one PromQL expression and where it is used.
type Query struct {
	Where string // "outrider-agent.json: Lines read" or "alert OutriderNotReady"
	Expr  string
}

// Dashboard is the part of a dashboard JSON the checks read.
type Dashboard struct {
	File       string
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel (rows included).
type Panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *DatasourceRef `json:"datasource"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		Query      string         `json:"query"`
		Datasource *DatasourceRef `json:"datasource"`
	} `json:"targets"`
}

// DatasourceRef names a datasource by plugin type and UID (or "${variable}").
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a dashboard template variable.
type Variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Datasource *DatasourceRef `json:"datasource"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

// Dashboards reads every dashboard JSON of DashboardsDir.
func Dashboards(root string) ([]Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(root, DashboardsDir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards in %s; run go run ./tools/grafana", DashboardsDir)
	}
	sort.Strings(files)
	var out []Dashboard
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := Dashboard{File: filepath.Base(f)}
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", d.File, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// DashboardQueries returns the PromQL of every Prometheus query in the dashboards:
// panel targets and query variables.
func DashboardQueries(ds []Dashboard) []Query {
	var out []Query
	for _, d := range ds {
		for _, p := range d.Panels {
			for _, t := range p.Targets {
				ref := t.Datasource
				if ref == nil {
					ref = p.Datasource
				}
				if ref != nil && ref.Type == "prometheus" && t.Expr != "" {
					out = append(out, Query{Where: d.File + ": " + p.Title, Expr: t.Expr})
				}
			}
		}
		for _, v := range d.Templating.List {
			q, _ := v.Query.(string)
			if v.Type == "query" && v.Datasource != nil && v.Datasource.Type == "prometheus" {
				if m := labelValues.FindStringSubmatch(q); m != nil {
					out = append(out, Query{Where: d.File + ": variable " + v.Name, Expr: m[1]})
				}
			}
		}
	}
	return out
}

// labelValues is Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// Rule is an alerting rule of the PrometheusRule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// PrometheusRule is the Prometheus Operator object holding the alert rules.
type PrometheusRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []Rule `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
	// SpecYAML is the spec as YAML: the rule file format Prometheus reads.
	SpecYAML []byte `yaml:"-"`
}

// Rules reads the PrometheusRule of RulesFile, refusing unknown fields.
func Rules(root string) (*PrometheusRule, error) {
	data, err := os.ReadFile(filepath.Join(root, RulesFile))
	if err != nil {
		return nil, err
	}
	var pr PrometheusRule
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&pr); err != nil {
		return nil, fmt.Errorf("%s: %w", RulesFile, err)
	}
	var raw struct {
		Spec yaml.Node `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", RulesFile, err)
	}
	if pr.SpecYAML, err = yaml.Marshal(&raw.Spec); err != nil {
		return nil, err
	}
	return &pr, nil
}

// RuleQueries returns every alert's expression.
func RuleQueries(pr *PrometheusRule) []Query {
	var out []Query
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			out = append(out, Query{Where: "alert " + r.Alert, Expr: r.Expr})
		}
	}
	return out
}

// grafanaVars are Grafana's interval variables, and any other variable, as Grafana
// replaces them before the query reaches Prometheus.
var (
	grafanaInterval = regexp.MustCompile(`\$__(rate_interval|interval|range|auto)\b`)
	grafanaVar      = regexp.MustCompile(`\$\{\w+(:\w+)?\}|\$\w+`)
)

// Parse parses a PromQL expression as Prometheus does, after replacing Grafana's
// variables with values of the right kind (intervals with 5m, others with "x").
func Parse(expr string) (parser.Expr, error) {
	e := grafanaInterval.ReplaceAllString(expr, "5m")
	e = grafanaVar.ReplaceAllString(e, "x")
	return parser.NewParser(parser.Options{}).ParseExpr(e)
}

// MetricNames returns the metric names an expression selects, sorted, each once. A
// selector without a metric name (only possible with a __name__ regex) is an error:
// the check could not hold it against /metrics.
func MetricNames(expr string) ([]string, error) {
	ast, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var bad error
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" && m.Type.String() == "=" {
					name = m.Value
				}
			}
		}
		if name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
			return nil
		}
		seen[name] = true
		return nil
	})
	if bad != nil {
		return nil, bad
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// AllQueries returns the Prometheus queries of the dashboards and the alert rules.
func AllQueries(root string) ([]Query, error) {
	ds, err := Dashboards(root)
	if err != nil {
		return nil, err
	}
	pr, err := Rules(root)
	if err != nil {
		return nil, err
	}
	return append(DashboardQueries(ds), RuleQueries(pr)...), nil
}

// LabelUses returns, for each metric an expression selects, the label names it
// relies on the metric having: those its selectors match on, and those the nearest
// enclosing aggregation groups by (sum by (exporter) (rate(x[5m])) relies on x having
// exporter). Without-clauses and __name__ are left out.
func LabelUses(expr string) (map[string][]string, error) {
	ast, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	parser.Inspect(ast, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || vs.Name == "" {
			return nil
		}
		if out[vs.Name] == nil {
			out[vs.Name] = map[string]bool{}
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != "__name__" {
				out[vs.Name][m.Name] = true
			}
		}
		for i := len(path) - 1; i >= 0; i-- {
			if agg, ok := path[i].(*parser.AggregateExpr); ok {
				if !agg.Without {
					for _, l := range agg.Grouping {
						out[vs.Name][l] = true
					}
				}
				break
			}
		}
		return nil
	})
	res := map[string][]string{}
	for name, ls := range out {
		for l := range ls {
			res[name] = append(res[name], l)
		}
		sort.Strings(res[name])
	}
	return res, nil
}
