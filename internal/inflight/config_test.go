package inflight

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestLimitsDefaultsAndValidate(t *testing.T) {
	var d Limits
	d.ApplyDefaults(8<<20, 4<<20)
	if d.MaxInflightBytes != 16<<20 || d.MaxConnections != DefaultMaxConnections || d.ReadTimeout != DefaultReadTimeout || d.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("defaults: %+v (the budget must hold %d requests' worth)", d, CostFactor)
	}
	for _, tc := range []struct {
		name string
		l    Limits
		want []string
	}{
		{"defaults", d, nil},
		{"everything wrong", Limits{MaxInflightBytes: 1 << 20, MaxConnections: -1, ReadTimeout: time.Millisecond, IdleTimeout: time.Millisecond},
			[]string{"max_inflight_bytes: must be at least 4 times max_request_bytes (16MiB)", "max_connections: must be between", "read_timeout: must be between", "idle_timeout: must be at least"}},
		{"too long a read", Limits{MaxInflightBytes: 16 << 20, MaxConnections: 1, ReadTimeout: time.Hour, IdleTimeout: time.Second},
			[]string{"read_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p confval.Problems
			tc.l.Validate(&p, 4<<20, "max_request_bytes")
			err := p.Err()
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("Validate: %v, want problems %q", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v does not say %q", err, w)
				}
			}
		})
	}
}
