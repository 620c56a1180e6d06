package reload

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// signalNames are the signals accepted by name: those applications use to reload,
// rotate logs or stop.
var signalNames = map[string]syscall.Signal{
	"HUP":   syscall.SIGHUP,
	"INT":   syscall.SIGINT,
	"QUIT":  syscall.SIGQUIT,
	"USR1":  syscall.SIGUSR1,
	"USR2":  syscall.SIGUSR2,
	"TERM":  syscall.SIGTERM,
	"WINCH": syscall.SIGWINCH,
}

// maxSignal is the highest signal number accepted (Linux: 64, the last real-time
// signal).
const maxSignal = 64

// ParseSignal parses a signal name (SIGHUP, HUP, sighup; SIGUSR1, SIGUSR2, SIGTERM,
// SIGINT, SIGQUIT, SIGWINCH) or a number from 1 to 64.
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty signal; write a name such as SIGHUP or a number")
	}
	if t[0] >= '0' && t[0] <= '9' {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > maxSignal {
			return 0, fmt.Errorf("signal number %q must be between 1 and %d", s, maxSignal)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(t)
	name = strings.TrimPrefix(name, "SIG")
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q; use SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGQUIT, SIGWINCH or a number", s)
}

// signalName returns the conventional name of sig ("SIGHUP"), or "signal N".
func signalName(sig syscall.Signal) string {
	for name, s := range signalNames {
		if s == sig {
			return "SIG" + name
		}
	}
	return "signal " + strconv.Itoa(int(sig))
}
