package agent

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is what /readyz and /healthz answer (and `outrider status` prints): whether
// the agent is ready and healthy, and each unit's state with its last error.
type Status struct {
	// Summary is the answer in a word: "ready" or "not ready" from /readyz, "ok" or
	// "unhealthy" from /healthz.
	Summary string `json:"status,omitempty"`
	Ready   bool   `json:"ready"`
	Healthy bool   `json:"healthy"`
	// Reasons say why the agent is not ready or not healthy, one line each.
	Reasons []string     `json:"reasons,omitempty"`
	Units   []UnitStatus `json:"units"`
	// LastReload is the last configuration reload's outcome, if any.
	LastReload *ReloadStatus `json:"last_reload,omitempty"`
	Build      BuildInfo     `json:"build"`
}

// ReloadStatus is the outcome of a configuration reload.
type ReloadStatus struct {
	Time     time.Time `json:"time"`
	Result   string    `json:"result"`
	Replaced []string  `json:"replaced,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// handler serves /metrics, /healthz and /readyz (and pprof when asked).
func (a *Agent) handler(pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		st := a.Status()
		st.Summary = map[bool]string{true: "ok", false: "unhealthy"}[st.Healthy]
		writeStatus(w, st, st.Healthy)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := a.Status()
		st.Summary = map[bool]string{true: "ready", false: "not ready"}[st.Ready]
		writeStatus(w, st, st.Ready)
	})
	if pprofOn {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func writeStatus(w http.ResponseWriter, st Status, ok bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
