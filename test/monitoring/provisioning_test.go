package monitoring

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// datasources reads the provisioned datasources: UID → plugin type, and the jsonData
// of each.
func datasources(t *testing.T) (types map[string]string, jsonData map[string]map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Root(), DatasourcesFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name     string         `yaml:"name"`
			Type     string         `yaml:"type"`
			UID      string         `yaml:"uid"`
			URL      string         `yaml:"url"`
			Access   string         `yaml:"access"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", DatasourcesFile, err)
	}
	if f.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", DatasourcesFile, f.APIVersion)
	}
	types, jsonData = map[string]string{}, map[string]map[string]any{}
	names := map[string]bool{}
	for _, d := range f.Datasources {
		if d.UID == "" || d.Name == "" || d.Type == "" || d.URL == "" {
			t.Errorf("%s: datasource %+v needs a name, type, uid and url", DatasourcesFile, d)
		}
		if _, dup := types[d.UID]; dup || names[d.Name] {
			t.Errorf("%s: uid %q or name %q used twice", DatasourcesFile, d.UID, d.Name)
		}
		types[d.UID], jsonData[d.UID], names[d.Name] = d.Type, d.JSONData, true
	}
	return types, jsonData
}

// TestDatasourceCorrelations checks that every link between the provisioned
// datasources names an existing datasource of the type the link needs, and that the
// correlations outrider's data is shaped for are there.
func TestDatasourceCorrelations(t *testing.T) {
	types, js := datasources(t)
	want := func(where string, uid any, typ string) {
		t.Helper()
		s, _ := uid.(string)
		if got, ok := types[s]; !ok || got != typ {
			t.Errorf("%s: datasourceUid %q is not a provisioned %s datasource (have %v)", where, s, typ, types)
		}
	}
	m := func(v any) map[string]any { x, _ := v.(map[string]any); return x }
	list := func(v any) []any { x, _ := v.([]any); return x }
	for uid, typ := range types {
		j := js[uid]
		switch typ {
		case "loki":
			fields := map[string]map[string]any{}
			for _, f := range list(j["derivedFields"]) {
				fm := m(f)
				name, _ := fm["name"].(string)
				fields[name] = fm
				if u, ok := fm["datasourceUid"]; ok {
					want(uid+" derived field "+name, u, "tempo")
				}
			}
			if f := fields["trace_id"]; f == nil || f["matcherType"] != "label" || f["matcherRegex"] != "trace_id" || f["datasourceUid"] == nil {
				t.Errorf("%s: derived field trace_id must read the structured metadata trace_id and open Tempo: %v", uid, f)
			}
			if f := fields["sentry_event_id"]; f == nil || f["matcherType"] != "label" || f["matcherRegex"] != "sentry_event_id" || !strings.Contains(f["url"].(string), "$${__value.raw}") {
				t.Errorf("%s: derived field sentry_event_id must read the structured metadata sentry_event_id and link the event: %v", uid, f)
			}
		case "tempo":
			l := m(j["tracesToLogsV2"])
			want(uid+" tracesToLogsV2", l["datasourceUid"], "loki")
			mapped := false
			for _, tag := range list(l["tags"]) {
				mapped = mapped || (m(tag)["key"] == "service.name" && m(tag)["value"] == "service")
			}
			if !mapped || l["filterByTraceID"] != true {
				t.Errorf("%s: tracesToLogsV2 must filter by trace ID and map service.name to outrider's service label: %v", uid, l)
			}
			if q, _ := l["query"].(string); l["customQuery"] == true && !strings.Contains(q, `trace_id="$${__span.traceId}"`) {
				t.Errorf("%s: the custom logs query %q must filter on the structured metadata trace_id", uid, q)
			}
			mt := m(j["tracesToMetrics"])
			want(uid+" tracesToMetrics", mt["datasourceUid"], "prometheus")
			for _, q := range list(mt["queries"]) {
				expr := strings.NewReplacer("$$__tags", `job="x"`, `$${__span.tags["service.name"]}`, "shop").Replace(m(q)["query"].(string))
				if strings.Contains(expr, "$") {
					t.Errorf("%s: tracesToMetrics query %q uses a variable the check does not know", uid, expr)
				}
				if _, err := Parse(expr); err != nil {
					t.Errorf("%s: tracesToMetrics query %q: %v", uid, expr, err)
				}
			}
			want(uid+" serviceMap", m(j["serviceMap"])["datasourceUid"], "prometheus")
			want(uid+" lokiSearch", m(j["lokiSearch"])["datasourceUid"], "loki")
		case "prometheus":
			dests := list(j["exemplarTraceIdDestinations"])
			if len(dests) == 0 {
				t.Errorf("%s: no exemplarTraceIdDestinations", uid)
			}
			for _, d := range dests {
				want(uid+" exemplarTraceIdDestinations", m(d)["datasourceUid"], "tempo")
			}
		}
	}
	for _, typ := range []string{"prometheus", "loki", "tempo"} {
		found := false
		for _, t := range types {
			found = found || t == typ
		}
		if !found {
			t.Errorf("no %s datasource provisioned", typ)
		}
	}
}

// TestDashboardsReferenceProvisionedDatasources checks every panel's and target's
// datasource: a provisioned UID of the right type, or a datasource variable of that
// type whose default is one.
func TestDashboardsReferenceProvisionedDatasources(t *testing.T) {
	types, _ := datasources(t)
	ds, err := Dashboards(Root())
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, d := range ds {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", d.File)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s have the same uid %q", d.File, other, d.UID)
		}
		uids[d.UID] = d.File
		vars := map[string]Variable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		check := func(where string, ref *DatasourceRef) {
			if ref == nil {
				t.Errorf("%s: %s has no datasource", d.File, where)
				return
			}
			uid := ref.UID
			if name, ok := strings.CutPrefix(uid, "${"); ok {
				v, found := vars[strings.TrimSuffix(name, "}")]
				cur, _ := v.Current.Value.(string)
				if !found || v.Type != "datasource" || types[cur] != ref.Type {
					t.Errorf("%s: %s uses %s, which is not a %s datasource variable defaulting to a provisioned %s datasource", d.File, where, uid, ref.Type, ref.Type)
				}
				return
			}
			if types[uid] != ref.Type {
				t.Errorf("%s: %s uses datasource %q of type %q, not provisioned", d.File, where, uid, ref.Type)
			}
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q has id %d, zero or used twice", d.File, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.File, p.Title)
			}
			check("panel "+p.Title, p.Datasource)
			for _, tg := range p.Targets {
				if tg.Datasource != nil {
					check("a query of panel "+p.Title, tg.Datasource)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check("variable "+v.Name, v.Datasource)
			}
		}
	}
}

// TestDashboardQueriesParse parses every Prometheus query of the dashboards with
// Prometheus' parser and checks each reads named metrics.
func TestDashboardQueriesParse(t *testing.T) {
	ds, err := Dashboards(Root())
	if err != nil {
		t.Fatal(err)
	}
	qs := DashboardQueries(ds)
	if len(qs) < 20 {
		t.Fatalf("%d Prometheus queries in the dashboards; the agent dashboard alone has more", len(qs))
	}
	for _, q := range qs {
		names, err := MetricNames(q.Expr)
		if err != nil || len(names) == 0 {
			t.Errorf("%s: %q: %v (metrics %v)", q.Where, q.Expr, err, names)
		}
	}
}

// TestDashboardProvider checks the provider that loads the dashboards.
func TestDashboardProvider(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(Root(), ProviderFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", ProviderFile, err)
	}
	if f.APIVersion != 1 || len(f.Providers) != 1 || f.Providers[0].Type != "file" || !filepath.IsAbs(f.Providers[0].Options.Path) {
		t.Errorf("%s: %+v, want one file provider with an absolute path", ProviderFile, f)
	}
}

// TestAgentConfigsLinkProvisionedDatasources checks the agent configurations under
// examples/: the datasource UIDs their grafana section gives Sentry events' links
// must be provisioned datasources of the right type, or the links open nothing.
func TestAgentConfigsLinkProvisionedDatasources(t *testing.T) {
	types, _ := datasources(t)
	files, err := filepath.Glob(filepath.Join(Root(), "examples", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Grafana *struct {
				URL   string `yaml:"url"`
				Tempo string `yaml:"tempo_datasource_uid"`
				Loki  string `yaml:"loki_datasource_uid"`
			} `yaml:"grafana"`
		}
		if yaml.Unmarshal(data, &cfg) != nil || cfg.Grafana == nil {
			continue // not an agent configuration
		}
		n++
		rel, _ := filepath.Rel(Root(), f)
		for _, c := range []struct{ key, uid, typ string }{{"tempo_datasource_uid", cfg.Grafana.Tempo, "tempo"}, {"loki_datasource_uid", cfg.Grafana.Loki, "loki"}} {
			if c.uid != "" && types[c.uid] != c.typ {
				t.Errorf("%s: grafana.%s %q is not a provisioned %s datasource (%s)", rel, c.key, c.uid, c.typ, DatasourcesFile)
			}
		}
	}
	t.Logf("%d agent configurations with a grafana section", n)
}

// TestComposeRunsTheProvisioning checks examples/compose against the provisioning it
// mounts: Grafana gets the datasources and dashboard provider, the dashboards folder
// lands at the provider's path, and every datasource URL names a service of the stack.
func TestComposeRunsTheProvisioning(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(Root(), "examples", "compose", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	g, ok := compose.Services["grafana"]
	if !ok {
		t.Fatal("examples/compose/docker-compose.yml has no grafana service")
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	pdata, err := os.ReadFile(filepath.Join(Root(), ProviderFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(pdata, &prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("%s: %v", ProviderFile, err)
	}
	mounts := map[string]string{} // target → source, relative to the repository
	for _, v := range g.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		src, _ := filepath.Rel(Root(), filepath.Join(Root(), "examples", "compose", parts[0]))
		mounts[parts[1]] = src
	}
	for target, want := range map[string]string{
		"/etc/grafana/provisioning/datasources": filepath.Dir(DatasourcesFile),
		"/etc/grafana/provisioning/dashboards":  filepath.Dir(ProviderFile),
		prov.Providers[0].Options.Path:          DashboardsDir,
	} {
		if mounts[target] != want {
			t.Errorf("grafana mounts %q at %s, want %s", mounts[target], target, want)
		}
	}
	var ds struct {
		Datasources []struct {
			Name string `yaml:"name"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	ddata, err := os.ReadFile(filepath.Join(Root(), DatasourcesFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ddata, &ds); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds.Datasources {
		u, err := url.Parse(d.URL)
		if err != nil || u.Hostname() == "" {
			t.Errorf("%s: url %q", d.Name, d.URL)
			continue
		}
		if _, ok := compose.Services[u.Hostname()]; !ok {
			t.Errorf("%s: url %s names no service of examples/compose", d.Name, d.URL)
		}
	}
}
