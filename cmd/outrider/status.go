package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outrider-dev/outrider/agent"
)

type statusOpts struct {
	addr    string
	config  string
	timeout time.Duration
}

func (o *statusOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", "", "the agent's server.listen (default: from --config, else 127.0.0.1:8686)")
	fs.StringVar(&o.config, "config", "", "read server.listen from this configuration file")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "how long to wait for the agent's answer")
}

// maxStatusBytes bounds the agent's answer.
const maxStatusBytes = 1 << 20

// runStatus prints a running agent's readiness, health and units: exit 0 when ready
// and healthy, 1 when not or unreachable, 2 on usage errors.
func runStatus(args []string, stdout, stderr io.Writer) int {
	var o statusOpts
	if !parseFlags("status", args, stderr, o.register) {
		return exitUsage
	}
	addr := o.addr
	if addr == "" && o.config != "" {
		cfg, code := loadConfig(o.config, nil, stderr)
		if code != exitOK {
			return code
		}
		addr = cfg.Server.Listen
	}
	if addr == "" {
		addr = "127.0.0.1:8686"
	}
	if strings.HasPrefix(addr, ":") || strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "127.0.0.1" + addr[strings.LastIndex(addr, ":"):]
	}
	client := http.Client{Timeout: o.timeout}
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "outrider status: cannot reach the agent at %s: %v; is it running, and is --addr its server.listen?\n", addr, err)
		return exitFailed
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		fmt.Fprintf(stderr, "outrider status: reading the answer of %s: %v\n", addr, err)
		return exitFailed
	}
	var st agent.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "outrider status: %s answered %s, not an outrider status (%v); is --addr the agent's server.listen?\n", addr, resp.Status, err)
		return exitFailed
	}
	printStatus(stdout, addr, st)
	if !st.Ready || !st.Healthy {
		return exitFailed
	}
	return exitOK
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printStatus(w io.Writer, addr string, st agent.Status) {
	fmt.Fprintf(w, "agent %s: ready %s, healthy %s (outrider %s, commit %s)\n", addr, yesNo(st.Ready), yesNo(st.Healthy), st.Build.Version, st.Build.Revision)
	for _, r := range st.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tSTATE\tSINCE\tDETAIL")
	for _, u := range st.Units {
		detail := u.Detail
		if u.LastError != "" {
			if detail != "" {
				detail += "; "
			}
			detail += "last error: " + u.LastError
		}
		since := "-"
		if !u.Since.IsZero() {
			since = time.Since(u.Since).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.State, since, detail)
	}
	tw.Flush()
	if r := st.LastReload; r != nil {
		fmt.Fprintf(w, "\nlast reload: %s at %s", r.Result, r.Time.Format(time.RFC3339))
		if len(r.Replaced) > 0 {
			fmt.Fprintf(w, " (units %s)", strings.Join(r.Replaced, ", "))
		}
		if r.Error != "" {
			fmt.Fprintf(w, ": %s", r.Error)
		}
		fmt.Fprintln(w)
	}
}
