package monitoring

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// alertScenarios holds, for each alert, series (in the notation of Prometheus' rule
// tests, one sample a minute from Unix time 0: "0+10x30" is 0, 10, … 300) of an agent in the trouble the alert is about, and of a
// healthy agent. Every alert of the PrometheusRule must have one.
var alertScenarios = map[string]struct{ bad, good string }{
	"OutriderNotReady": {
		bad:  `outrider_ready{namespace="shop", pod="web-0"} 1 1 0x28`,
		good: `outrider_ready{namespace="shop", pod="web-0"} 0 0 1x28`,
	},
	"OutriderConfigReloadRejected": {
		bad: `outrider_config_reloads_total{namespace="shop", pod="web-0", result="rejected"} 0x25 1x5
outrider_config_reloads_total{namespace="shop", pod="web-0", result="success"} 0x30`,
		good: `outrider_config_reloads_total{namespace="shop", pod="web-0", result="rejected"} 0x30
outrider_config_reloads_total{namespace="shop", pod="web-0", result="success"} 0x25 1x5`,
	},
	"OutriderBackendDown": {
		bad: `outrider_exporter_requests_total{namespace="shop", pod="web-0", exporter="loki", result="retry"} 0+10x30
outrider_exporter_requests_total{namespace="shop", pod="web-0", exporter="loki", result="success"} 100x30`,
		good: `outrider_exporter_requests_total{namespace="shop", pod="web-0", exporter="loki", result="retry"} 0+1x30
outrider_exporter_requests_total{namespace="shop", pod="web-0", exporter="loki", result="success"} 0+100x30`,
	},
	"OutriderTailLagHigh": {
		bad:  `outrider_tail_position_lag_bytes{namespace="shop", pod="web-0", source="app"} 0+10000000x30`,
		good: `outrider_tail_position_lag_bytes{namespace="shop", pod="web-0", source="app"} 65536x30`,
	},
	"OutriderRecordsDropped": {
		bad:  `outrider_exporter_dropped_records_total{namespace="shop", pod="web-0", exporter="loki", reason="too_old"} 0x25 0+3x5`,
		good: `outrider_exporter_dropped_records_total{namespace="shop", pod="web-0", exporter="loki", reason="too_old"} 0x30`,
	},
	"OutriderLogDataLost": {
		bad: `outrider_tail_lost_bytes_total{namespace="shop", pod="web-0", source="app", reason="deleted"} 0x28 4096 4096 4096
outrider_tail_cut_lines_dropped_total{namespace="shop", pod="web-0", source="app"} 0x30`,
		good: `outrider_tail_lost_bytes_total{namespace="shop", pod="web-0", source="app", reason="deleted"} 0x30
outrider_tail_cut_lines_dropped_total{namespace="shop", pod="web-0", source="app"} 0x30`,
	},
	"OutriderQueueFilling": {
		bad: `outrider_queue_bytes{namespace="shop", pod="web-0", queue="traces"} 0+10000000x30
outrider_queue_capacity_bytes{namespace="shop", pod="web-0", queue="traces"} 268435456x30`,
		good: `outrider_queue_bytes{namespace="shop", pod="web-0", queue="traces"} 8388608x30
outrider_queue_capacity_bytes{namespace="shop", pod="web-0", queue="traces"} 268435456x30`,
	},
	"OutriderQueueFull": {
		bad:  `outrider_queue_rejected_full_total{namespace="shop", pod="web-0", queue="traces"} 0x27 2 5 9`,
		good: `outrider_queue_rejected_full_total{namespace="shop", pod="web-0", queue="traces"} 0x30`,
	},
	"OutriderQueueQuarantine": {
		bad:  `outrider_queue_quarantined_total{namespace="shop", pod="web-0", queue="logs"} 0x29 1 1`,
		good: `outrider_queue_quarantined_total{namespace="shop", pod="web-0", queue="logs"} 0x30`,
	},
	"OutriderVaultAuthFailing": {
		bad: `outrider_vault_logins_total{namespace="shop", pod="web-0", result="failure"} 0+1x30
outrider_vault_logins_total{namespace="shop", pod="web-0", result="success"} 1x30`,
		good: `outrider_vault_logins_total{namespace="shop", pod="web-0", result="failure"} 0x25 1x5
outrider_vault_logins_total{namespace="shop", pod="web-0", result="success"} 1x26 2x4`,
	},
	"OutriderVaultTokenExpiring": {
		bad:  `outrider_vault_token_ttl_seconds{namespace="shop", pod="web-0"} 240x30`,
		good: `outrider_vault_token_ttl_seconds{namespace="shop", pod="web-0"} 0x30`,
	},
	"OutriderSecretsStale": {
		// The value is a Unix time; the series start at Unix time 0.
		bad:  `outrider_secrets_last_success_timestamp_seconds{namespace="shop", pod="web-0"} 60x30`,
		good: `outrider_secrets_last_success_timestamp_seconds{namespace="shop", pod="web-0"} 0+60x30`,
	},
	"OutriderSecretRotationFailing": {
		bad: `outrider_secrets_rotations_total{namespace="shop", pod="web-0", result="error"} 0x28 1 2 3
outrider_secrets_lease_renewals_total{namespace="shop", pod="web-0", result="error"} 0x30`,
		good: `outrider_secrets_rotations_total{namespace="shop", pod="web-0", result="error"} 0x30
outrider_secrets_lease_renewals_total{namespace="shop", pod="web-0", result="error"} 0x30`,
	},
	"OutriderAppReloadFailing": {
		bad:  `outrider_secrets_reloads_total{namespace="shop", pod="web-0", method="signal", result="error"} 0x28 4 8 12`,
		good: `outrider_secrets_reloads_total{namespace="shop", pod="web-0", method="signal", result="error"} 0x30`,
	},
	"OutriderErrorEventsFailing": {
		bad:  `outrider_error_events_total{namespace="shop", pod="web-0", source="log", result="failed"} 0x29 1 2`,
		good: `outrider_error_events_total{namespace="shop", pod="web-0", source="log", result="failed"} 0x30`,
	},
	"OutriderSentryRateLimited": {
		bad:  `outrider_sentry_rate_limited_seconds_total{namespace="shop", pod="web-0", exporter="sentry", category="error"} 0+60x30`,
		good: `outrider_sentry_rate_limited_seconds_total{namespace="shop", pod="web-0", exporter="sentry", category="error"} 0+6x30`,
	},
}

// TestAlertsFireOnTheirTrouble evaluates each alert's expression with Prometheus'
// engine over series of an agent in the trouble the alert names, where it must
// return the agent (with its namespace and pod, which the summary names), and of a
// healthy agent, where it must return nothing.
func TestAlertsFireOnTheirTrouble(t *testing.T) {
	pr, err := Rules(Root())
	if err != nil {
		t.Fatal(err)
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	at := time.Unix(0, 0).Add(30 * time.Minute)
	seen := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			seen[r.Alert] = true
			sc, ok := alertScenarios[r.Alert]
			if !ok {
				t.Errorf("alert %s has no scenario in alertScenarios: add the series of an agent in its trouble and of a healthy one", r.Alert)
				continue
			}
			t.Run(r.Alert, func(t *testing.T) {
				for _, c := range []struct {
					name   string
					series string
					fires  bool
				}{{"trouble", sc.bad, true}, {"healthy", sc.good, false}} {
					st, err := loadSeries(c.series)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					q, err := engine.NewInstantQuery(context.Background(), st, nil, r.Expr, at)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					res := q.Exec(context.Background())
					if res.Err != nil {
						t.Fatalf("%s: %v", c.name, res.Err)
					}
					vec, err := res.Vector()
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					switch {
					case c.fires && len(vec) == 0:
						t.Errorf("silent on an agent in trouble:\n%s", c.series)
					case !c.fires && len(vec) > 0:
						t.Errorf("fires on a healthy agent (%v):\n%s", vec, c.series)
					}
					for _, s := range vec {
						if s.Metric.Get("namespace") == "" || s.Metric.Get("pod") == "" {
							t.Errorf("%s: the alert's series %v lacks namespace or pod", c.name, s.Metric)
						}
					}
					q.Close()
				}
			})
		}
	}
	for name := range alertScenarios {
		if !seen[name] {
			t.Errorf("alertScenarios has %s, which is no alert of %s", name, RulesFile)
		}
	}
}

// loadSeries reads series lines, `name{labels} values`, sampled once a minute from
// Unix time 0, into an in-memory queryable.
func loadSeries(text string) (storage.Queryable, error) {
	var q memQueryable
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		lset, vals, err := parser.NewParser(parser.Options{}).ParseSeriesDesc(line)
		if err != nil {
			return nil, err
		}
		var samples []chunks.Sample
		for i, v := range vals {
			if !v.Omitted {
				samples = append(samples, floatSample{t: int64(i) * 60_000, f: v.Value})
			}
		}
		q = append(q, storage.NewListSeries(lset, samples))
	}
	return q, nil
}

// floatSample is one float sample.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }

// memQueryable is a few series in memory; it is its own Querier.
type memQueryable []storage.Series

func (q memQueryable) Querier(int64, int64) (storage.Querier, error) { return q, nil }

func (q memQueryable) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, s := range q {
		match := true
		for _, m := range ms {
			match = match && m.Matches(s.Labels().Get(m.Name))
		}
		if match {
			out = append(out, s)
		}
	}
	return &seriesSet{series: out, i: -1}
}

func (q memQueryable) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q memQueryable) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q memQueryable) Close() error { return nil }

type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }
