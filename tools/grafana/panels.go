package main

//lint:file-ignore SA1019 the dashboards are Grafana's classic JSON model (v1), which file provisioning loads in the compose stack's Grafana 12.1; schema v2 needs the Dynamic Dashboards and kubernetesDashboards feature toggles there

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/loki"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/tempo"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Names of the datasource variables; panels refer to "${name}", whose default is the
// provisioned UID, so a Grafana with other UIDs picks its own in the variable.
const (
	varPrometheus = "datasource"
	varLoki       = "loki_datasource"
	varTempo      = "tempo_datasource"
)

func ref(typ, uid string) common.DataSourceRef { return common.DataSourceRef{Type: &typ, Uid: &uid} }

var (
	promDS  = ref("prometheus", "${"+varPrometheus+"}")
	lokiDS  = ref("loki", "${"+varLoki+"}")
	tempoDS = ref("tempo", "${"+varTempo+"}")
)

// datasourceVar is a datasource variable of the plugin type typ defaulting to uid.
func datasourceVar(name, label, typ, uid string) *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(name).
		Label(label).
		Type(typ).
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr(uid)},
			Value: dashboard.StringOrArrayOfString{String: cog.ToPtr(uid)},
		})
}

// queryVar is a multi-value variable from a query, "All" by default.
func queryVar(name, label string, ds common.DataSourceRef, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(ds).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr("All")},
			Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")},
		})
}

// board builds one dashboard: it places panels left to right in rows of 24 columns
// and records what each panel queries.
type board struct {
	b      *dashboard.DashboardBuilder
	panels []panelInfo
	x, y   int
	rowH   int
	lastID uint32
}

// id returns the next panel ID: Grafana needs them unique within a dashboard.
func (bd *board) id() uint32 {
	bd.lastID++
	return bd.lastID
}

func newBoard(uid, title, description string, tags ...string) *board {
	return &board{b: dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags(tags).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser)}
}

// pos returns the next w×h place, starting a new line when the row is full.
func (bd *board) pos(w, h int) dashboard.GridPos {
	if bd.x+w > 24 {
		bd.x, bd.y, bd.rowH = 0, bd.y+bd.rowH, 0
	}
	p := dashboard.GridPos{X: uint32(bd.x), Y: uint32(bd.y), W: uint32(w), H: uint32(h)}
	bd.x += w
	bd.rowH = max(bd.rowH, h)
	return p
}

// row starts a titled row on a line of its own.
func (bd *board) row(title string) {
	if bd.x > 0 {
		bd.x, bd.y, bd.rowH = 0, bd.y+bd.rowH, 0
	}
	bd.b.WithRow(dashboard.NewRowBuilder(title).Id(bd.id()).GridPos(dashboard.GridPos{X: 0, Y: uint32(bd.y), W: 24, H: 1}))
	bd.y++
}

// q is one Prometheus query of a panel and its legend.
type q struct{ expr, legend string }

func (bd *board) record(title string, queries []string) {
	bd.panels = append(bd.panels, panelInfo{title: title, queries: queries})
}

// timeseries adds a time series panel of Prometheus queries.
func (bd *board) timeseries(w int, title, description, unit string, qs ...q) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Id(bd.id()).
		Title(title).
		Description(description).
		Datasource(promDS).
		Unit(unit).
		GridPos(bd.pos(w, 8)).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	var exprs []string
	for i, x := range qs {
		p.WithTarget(prometheus.NewDataqueryBuilder().Expr(x.expr).LegendFormat(x.legend).RefId(string(rune('A' + i))))
		exprs = append(exprs, x.expr)
	}
	bd.b.WithPanel(p)
	bd.record(title, exprs)
	return p
}

// stat adds a single-value panel of one Prometheus query, coloured by thresholds
// (value, colour pairs, the first from -Inf).
func (bd *board) stat(w int, title, description, unit string, x q, steps ...dashboard.Threshold) {
	p := stat.NewPanelBuilder().
		Id(bd.id()).
		Title(title).
		Description(description).
		Datasource(promDS).
		Unit(unit).
		GridPos(bd.pos(w, 4)).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeBackground).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		WithTarget(prometheus.NewDataqueryBuilder().Expr(x.expr).LegendFormat(x.legend).RefId("A"))
	if len(steps) > 0 {
		p.Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps))
	}
	bd.b.WithPanel(p)
	bd.record(title, []string{x.expr})
}

// lokiTimeseries adds a time series panel of LogQL metric queries.
func (bd *board) lokiTimeseries(w int, title, description string, qs ...q) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Id(bd.id()).
		Title(title).
		Description(description).
		Datasource(lokiDS).
		Unit("short").
		GridPos(bd.pos(w, 8)).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	var exprs []string
	for i, x := range qs {
		p.WithTarget(loki.NewDataqueryBuilder().Expr(x.expr).LegendFormat(x.legend).RefId(string(rune('A' + i))).QueryType("range"))
		exprs = append(exprs, x.expr)
	}
	bd.b.WithPanel(p)
	bd.record(title, exprs)
	return p
}

// logs adds a logs panel of one LogQL query; the Loki datasource's derived fields turn
// trace_id and sentry_event_id into links.
func (bd *board) logs(w, h int, title, description, expr string) {
	bd.b.WithPanel(logs.NewPanelBuilder().
		Id(bd.id()).
		Title(title).
		Description(description).
		Datasource(lokiDS).
		GridPos(bd.pos(w, h)).
		ShowTime(true).
		WrapLogMessage(true).
		EnableLogDetails(true).
		SortOrder(common.LogsSortOrderDescending).
		DedupStrategy(common.LogsDedupStrategyNone).
		WithTarget(loki.NewDataqueryBuilder().Expr(expr).RefId("A").QueryType("range").MaxLines(200)))
	bd.record(title, []string{expr})
}

// traces adds a table of the traces a TraceQL query finds; each trace ID opens the
// trace, and from there its logs (traces to logs).
func (bd *board) traces(w, h int, title, description, traceql string) {
	bd.b.WithPanel(table.NewPanelBuilder().
		Id(bd.id()).
		Title(title).
		Description(description).
		Datasource(tempoDS).
		GridPos(bd.pos(w, h)).
		WithTarget(tempo.NewDataqueryBuilder().
			QueryType("traceql").
			Query(traceql).
			Limit(20).
			TableType(tempo.SearchTableTypeTraces).
			RefId("A")))
	bd.record(title, []string{traceql})
}

// thresholds is a threshold list: the first colour from -Inf, then (value, colour).
func thresholds(base string, steps ...any) []dashboard.Threshold {
	out := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		out = append(out, dashboard.Threshold{Value: cog.ToPtr(steps[i].(float64)), Color: steps[i+1].(string)})
	}
	return out
}
