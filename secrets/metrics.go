package secrets

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/vault"
)

// Results, the values of the result label of the Syncer's counters.
const (
	ResultOK        = "ok"        // done
	ResultUnchanged = "unchanged" // a render whose bytes were already in the file
	ResultError     = "error"     // failed; see the logs and the audit events
	ResultSkipped   = "skipped"   // a revocation not made because the reload failed
)

// Metrics are the secrets side's metrics: the Vault client's, the reloaders' and the
// Syncer's own. The agent creates them once per process with NewMetrics and passes
// them to every Syncer, including those built after a configuration reload; a
// Syncer registers nothing itself.
type Metrics struct {
	// Vault are the Vault client's metrics (requests, logins, token TTL).
	Vault *vault.Metrics
	// Reload are the reloaders' metrics.
	Reload *reload.Metrics

	renders     *prometheus.CounterVec
	rotations   *prometheus.CounterVec
	renewals    *prometheus.CounterVec
	revocations *prometheus.CounterVec
	leaseTTL    *prometheus.GaugeVec
	lastSuccess prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg; a nil reg leaves them
// unregistered (tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Vault:  vault.NewMetrics(reg),
		Reload: reload.NewMetrics(reg),
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_secrets_renders_total",
			Help: "Renders of secret files, by result: ok (file written), unchanged (same bytes, not written) or error (last good file kept).",
		}, []string{"result"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_secrets_rotations_total",
			Help: "Rotations: new credentials fetched and rendered before the old lease ran out (or a certificate re-issued), by result.",
		}, []string{"result"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_secrets_lease_renewals_total",
			Help: "Lease renewals, by result.",
		}, []string{"result"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_secrets_lease_revocations_total",
			Help: "Revocations of leases replaced by a rotation, by result: ok, error, or skipped (the application did not reload, so the old credentials were kept).",
		}, []string{"result"}),
		leaseTTL: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrider_secrets_lease_ttl_seconds",
			Help: "TTL of each secret's lease (or certificate) as of its last fetch or renewal, by Vault path.",
		}, []string{"path"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrider_secrets_last_success_timestamp_seconds",
			Help: "When every secret file was last known fresh: all rendered and every secret checked without error (Unix time).",
		}),
	}
	for _, r := range []string{ResultOK, ResultUnchanged, ResultError} {
		m.renders.WithLabelValues(r)
	}
	for _, r := range []string{ResultOK, ResultError} {
		m.rotations.WithLabelValues(r)
		m.renewals.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.renders, m.rotations, m.renewals, m.revocations, m.leaseTTL, m.lastSuccess)
	}
	return m
}
