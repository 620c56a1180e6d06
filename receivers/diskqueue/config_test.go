package diskqueue

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	want := Config{MaxSize: 256 << 20, SegmentSize: 8 << 20, Fsync: FsyncInterval, FsyncInterval: time.Second, QuarantineMaxSize: 64 << 20}
	if c != want {
		t.Fatalf("defaults %+v; want %+v", c, want)
	}
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	set := Config{MaxSize: 1 << 30, SegmentSize: 1 << 20, Fsync: FsyncAlways, FsyncInterval: time.Minute, QuarantineMaxSize: 1 << 20}
	got := set
	got.ApplyDefaults()
	if got != set {
		t.Fatalf("ApplyDefaults changed set fields: %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := Config{}
		c.ApplyDefaults()
		return c
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"max_size below twice the segment", func(c *Config) { c.MaxSize = 10 << 20 },
			[]string{"queue.max_size: 10MiB is less than twice segment_size (8MiB); raise max_size to at least 16MiB or lower segment_size"}},
		{"negative max_size", func(c *Config) { c.MaxSize = -1 }, []string{"queue.max_size: must be positive"}},
		{"segment too small", func(c *Config) { c.SegmentSize = 100 }, []string{"queue.segment_size: 100B is too small; use at least 4KiB"}},
		{"segment too large", func(c *Config) { c.SegmentSize = 2 << 30; c.MaxSize = 8 << 30 }, []string{"queue.segment_size: 2GiB is too large; use at most 1GiB"}},
		{"unknown fsync", func(c *Config) { c.Fsync = "sometimes" }, []string{`queue.fsync: unknown policy "sometimes"; use "always", "interval" or "never"`}},
		{"negative interval", func(c *Config) { c.FsyncInterval = -time.Second }, []string{"queue.fsync_interval: must be positive"}},
		{"all at once", func(c *Config) { c.MaxSize = 0; c.Fsync = "x"; c.FsyncInterval = -1 },
			[]string{"queue.max_size", "queue.fsync:", "queue.fsync_interval"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.modify(&c)
			var root confval.Problems
			c.Validate(root.At("queue"))
			err := root.Err()
			if err == nil {
				t.Fatal("no problem reported")
			}
			if root.Len() != len(tc.want) {
				t.Fatalf("%d problems, want %d: %v", root.Len(), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
