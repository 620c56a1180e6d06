package sentryexporter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/confval"
)

// TestDSNFile checks dsn_file: the DSN is read from the file (a mounted Secret), and
// no problem with it shows the file's content.
func TestDSNFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const key = "f00dfacef00dfacef00dface"
	good := write("good", "https://"+key+"@o1.ingest.sentry.io/42\n")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"from file", Config{DSNFile: good}, ""},
		{"both", Config{DSN: "https://k@h/1", DSNFile: good}, "dsn_file: set either dsn or dsn_file, not both"},
		{"missing", Config{DSNFile: filepath.Join(dir, "nope")}, "dsn_file: cannot read"},
		{"empty", Config{DSNFile: write("empty", "\n")}, "dsn_file: is required"},
		{"not a dsn", Config{DSNFile: write("bad", key+"${\n\"'")}, "dsn_file: must start with https://"},
		{"too large", Config{DSNFile: write("large", strings.Repeat(key, 1000))}, "larger than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ApplyDefaults()
			var p confval.Problems
			tt.cfg.Validate(&p)
			err := p.Err()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				e, err := New(tt.cfg, Settings{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(e.url, "o1.ingest.sentry.io") || e.upstream.key != key {
					t.Errorf("the exporter does not use the file's DSN: %s", e.url)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("the error shows the file's content: %v", err)
			}
		})
	}
}
