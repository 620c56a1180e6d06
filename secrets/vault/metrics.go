package vault

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Vault client's metrics. Create them once per process with
// NewMetrics and pass them to every Client, including clients built after a
// configuration reload.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tokenTTL prometheus.Gauge
	logins   *prometheus.CounterVec
}

// Operations, the values of the op label: one per kind of HTTP request to Vault.
const (
	OpLogin       = "login"        // auth/<mount>/login
	OpTokenLookup = "token_lookup" // auth/token/lookup-self (token method)
	OpTokenRenew  = "token_renew"  // auth/token/renew-self
	OpUnwrap      = "unwrap"       // sys/wrapping/lookup and unwrap (wrapped secret_id)
	OpMounts      = "mounts"       // sys/internal/ui/mounts/<path> (KV mount discovery)
	OpRead        = "read"
	OpWrite       = "write"
	OpKVVersion   = "kv_version"   // <mount>/metadata/<path>
	OpRenewLease  = "renew_lease"  // sys/leases/renew
	OpRevokeLease = "revoke_lease" // sys/leases/revoke
	OpOther       = "other"
)

// Request results, the values of the result label.
const (
	ResultSuccess   = "success"   // a 2xx or 3xx answer
	ResultRetryable = "retryable" // no answer, 5xx, 412 or 429
	ResultPermanent = "permanent" // any other 4xx
)

// Login results, the values of the result label of outrider_vault_logins_total.
const (
	LoginSuccess = "success"
	LoginFailure = "failure"
)

// NewMetrics creates the metrics and registers them with reg; a nil reg leaves them
// unregistered (tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_vault_requests_total",
			Help: "HTTP requests sent to Vault, by operation and result (success, retryable, permanent).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrider_vault_request_duration_seconds",
			Help:    "Duration of HTTP requests to Vault (not counting the wait for the request-rate cap), by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		tokenTTL: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrider_vault_token_ttl_seconds",
			Help: "TTL of the client's Vault token as of its last login or renewal; 0 for a token that never expires.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrider_vault_logins_total",
			Help: "Logins to Vault, by result (success, failure).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.tokenTTL, m.logins)
	}
	return m
}
