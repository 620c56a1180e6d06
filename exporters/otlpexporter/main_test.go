package otlpexporter

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/internal/jaegertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jaegertest.StopShared(code == 0)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
