package sentryexporter

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Sentry exporter's own metrics, beside the exporterhelper.Metrics every
// exporter shares (whose record counts are envelopes here). Create them once per
// process with NewMetrics and pass them to every Exporter, including those built
// after a configuration reload.
type Metrics struct {
	rateLimited *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg; a nil reg leaves them
// unregistered (tests).
//
// outrider_sentry_rate_limited_seconds_total{exporter,category} counts the seconds
// of rate limiting Sentry announced for a data category ("all" for a limit on every
// category, "other" for a category outrider does not know). Only the part of an
// announcement that moves the category's deadline counts, so overlapping
// announcements are not counted twice and rate() of the counter is the fraction of
// time the category was limited.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_sentry_rate_limited_seconds_total",
			Help: "Seconds of rate limiting Sentry announced, by data category (all: every category); rate() is the fraction of time the category was limited.",
		}, []string{"exporter", "category"}),
	}
	if reg != nil {
		reg.MustRegister(m.rateLimited)
	}
	return m
}

// metricCategories are the data categories that get their own metric label; the
// label set stays bounded whatever a server sends.
var metricCategories = map[string]bool{
	"all": true, "default": true, "error": true, "transaction": true, "security": true,
	"attachment": true, "attachment_item": true, "session": true, "profile": true,
	"profile_chunk": true, "profile_duration": true, "replay": true, "monitor": true,
	"span": true, "log_item": true, "log_byte": true, "feedback": true,
	"metric_bucket": true, "internal": true, "user_report_v2": true, "uptime": true,
	"trace_metric": true,
}

func metricCategory(c string) string {
	if metricCategories[c] {
		return c
	}
	return "other"
}
