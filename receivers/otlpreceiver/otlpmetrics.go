package otlpreceiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// consumeMetrics checks, enriches, scrubs and stores one metrics request, like
// consumeLogs. Metrics without a name, which no backend can store (Prometheus
// refuses the whole request for one), are refused in a partial success with their
// data points counted.
func (r *Receiver) consumeMetrics(ctx context.Context, md pmetric.Metrics, transport string) outcome {
	if r.metrics == nil {
		r.m.requests.WithLabelValues("metrics", transport, resultInvalid).Inc()
		return outcome{err: errNoMetrics}
	}
	var o outcome
	if n := dropUnnamedMetrics(md); n > 0 {
		o.rejected, o.message = n, unnamedMetricsMessage(n)
		r.m.items.WithLabelValues("metrics", "rejected").Add(float64(n))
	}
	count := md.DataPointCount()
	if count > 0 {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			r.enrich.apply(rms.At(i).Resource())
		}
		if r.scrub.active() {
			r.scrub.metrics(md)
		}
		var m pmetric.ProtoMarshaler
		data, err := m.MarshalMetrics(md)
		if err == nil {
			err = r.store(ctx, r.metrics, KindMetrics, count, data)
		}
		if err != nil {
			r.m.items.WithLabelValues("metrics", "refused").Add(float64(count))
			r.m.requests.WithLabelValues("metrics", transport, resultOf(err)).Inc()
			return outcome{err: err}
		}
		r.m.items.WithLabelValues("metrics", "accepted").Add(float64(count))
	}
	res := resultOK
	if o.rejected > 0 {
		res = resultPartial
	}
	r.m.requests.WithLabelValues("metrics", transport, res).Inc()
	return o
}

// metricsResponse is the export response for o, with its partial success.
func metricsResponse(o outcome) pmetricotlp.ExportResponse {
	resp := pmetricotlp.NewExportResponse()
	if o.rejected > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(int64(o.rejected))
		resp.PartialSuccess().SetErrorMessage(o.message)
	}
	return resp
}

// dropUnnamedMetrics removes metrics without a name, and scopes and resources left
// empty, and returns how many data points it removed.
func dropUnnamedMetrics(md pmetric.Metrics) int {
	dropped := 0
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				if m.Name() == "" {
					dropped += dataPoints(m)
					return true
				}
				return false
			})
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
	return dropped
}

// dataPoints is the number of data points of m, as pmetric.Metrics.DataPointCount
// counts them.
func dataPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

func unnamedMetricsMessage(n int) string {
	return fmt.Sprintf("%d data points rejected: their metric has no name; every metric needs one", n)
}

// metrics scrubs every string a metrics request carries: attributes (keys and values)
// at every level — resources (and their entity references), scopes, metric metadata,
// data points, exemplars — and names, descriptions, units and schema URLs.
func (s scrubber) metrics(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		s.resource(rm.Resource())
		s.set(rm.SchemaUrl, rm.SetSchemaUrl)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			s.scope(sm.Scope(), sm.SchemaUrl, sm.SetSchemaUrl)
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				s.metric(ms.At(k))
			}
		}
	}
}

func (s scrubber) metric(m pmetric.Metric) {
	s.set(m.Name, m.SetName)
	s.set(m.Description, m.SetDescription)
	s.set(m.Unit, m.SetUnit)
	s.attrs(m.Metadata())
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		s.numberPoints(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		s.numberPoints(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			s.point(dps.At(i).Attributes(), dps.At(i).Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			s.point(dps.At(i).Attributes(), dps.At(i).Exemplars())
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			s.attrs(dps.At(i).Attributes())
		}
	}
}

func (s scrubber) numberPoints(dps pmetric.NumberDataPointSlice) {
	for i := 0; i < dps.Len(); i++ {
		s.point(dps.At(i).Attributes(), dps.At(i).Exemplars())
	}
}

func (s scrubber) point(attrs pcommon.Map, exs pmetric.ExemplarSlice) {
	s.attrs(attrs)
	for i := 0; i < exs.Len(); i++ {
		s.attrs(exs.At(i).FilteredAttributes())
	}
}
