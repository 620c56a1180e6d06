package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/outrider-dev/outrider/config"
)

// overlayFlags collects --overlay and --optional-overlay in the order given, which is
// the order the overlays are merged in.
type overlayFlags []config.OverlayFile

func (o *overlayFlags) register(fs *flag.FlagSet) {
	fs.Func("overlay", "a YAML overlay merged over --config (repeatable; later ones win); it must exist", func(s string) error {
		return o.add(s, false)
	})
	fs.Func("optional-overlay", "like --overlay, but left out while the file does not exist (a ConfigMap volume marked optional)", func(s string) error {
		return o.add(s, true)
	})
}

func (o *overlayFlags) add(path string, optional bool) error {
	if path == "" || path == "-" {
		return errors.New("give the path of a YAML file; the agent watches it for changes")
	}
	if len(*o) == config.MaxOverlays {
		return fmt.Errorf("at most %d overlays", config.MaxOverlays)
	}
	*o = append(*o, config.OverlayFile{Path: path, Optional: optional})
	return nil
}

// loadAgentConfig loads the base configuration and its overlays. When the base is
// valid and an overlay is not, the agent starts on the base alone and reports the
// overlay's problem on /readyz until it is fixed: the returned problem is then set.
func loadAgentConfig(path string, overlays overlayFlags, stderr io.Writer) (cfg *config.Config, code int, problem error) {
	if len(overlays) == 0 {
		cfg, code := loadConfig(path, nil, stderr)
		return cfg, code, nil
	}
	cfg, err := config.LoadLayers(path, overlays)
	if err == nil {
		return cfg, exitOK, nil
	}
	base, code := loadConfig(path, nil, stderr)
	if code != exitOK {
		return nil, code, nil
	}
	fmt.Fprintf(stderr, "outrider: the overlays of %s are invalid; starting on %s alone, not ready until they are fixed: %v\n", path, path, err)
	return base, exitOK, err
}
