package config

import (
	"errors"
	"reflect"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Check is Parse for `outrider validate`: it goes on after the problems of one phase
// (decoding, then validation) so that every problem is listed at once. It returns the
// configuration as far as it could be decoded (nil when the YAML itself could not be
// read: too large, malformed, aliases) and an error listing every problem. A
// configuration returned with an error must never be run; callers may only check it
// further (listeners, files on this host) and add those problems to the list.
func Check(name string, data []byte) (*Config, error) {
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	cfg := Default()
	p := &confval.Problems{}
	newDecoder(p).decode(root, reflect.ValueOf(&cfg).Elem(), "")
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		var ce *confval.Error
		if !errors.As(err, &ce) {
			return &cfg, err
		}
		for _, msg := range ce.Problems {
			p.Addf("", "%s", msg)
		}
	}
	return &cfg, p.Err()
}
