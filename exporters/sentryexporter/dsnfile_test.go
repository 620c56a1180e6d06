package sentryexporter

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/sentryenv"
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
				if cur := e.targets.get(); !strings.Contains(cur.url, "o1.ingest.sentry.io") || cur.ids.key != key {
					t.Errorf("the exporter does not use the file's DSN: %s", cur.url)
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

// secretVolume writes files as the kubelet writes a Secret volume: each version in a
// directory of its own, ..data a symlink to the current one, and every key a symlink
// through ..data, swapped by renaming a new ..data over the old.
type secretVolume struct {
	t   *testing.T
	dir string
	n   int
}

func (v *secretVolume) write(key, content string) string {
	v.t.Helper()
	v.n++
	version := filepath.Join(v.dir, fmt.Sprintf("..2026_12_06_%d", v.n))
	if err := os.Mkdir(version, 0o755); err != nil {
		v.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, key), []byte(content), 0o400); err != nil {
		v.t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	path := filepath.Join(v.dir, key)
	if _, err := os.Lstat(path); err != nil {
		if err := os.Symlink(filepath.Join("..data", key), path); err != nil {
			v.t.Fatal(err)
		}
	}
	return path
}

// TestDSNFileChangeIsUsedWithoutRestart rotates the DSN in a Secret volume while the
// exporter runs: the next envelope goes to the new project with the new key (in the
// auth header, the envelope's dsn and the trace's public_key); a file that holds no
// valid DSN keeps the last good one, says so once, and never shows its content.
func TestDSNFileChangeIsUsedWithoutRestart(t *testing.T) {
	first, second := newFakeSentry(t, nil), newFakeSentry(t, nil)
	const otherKey = "0123456789abcdef0123456789abcdef"
	secondDSN := "http://" + otherKey + "@" + second.srv.Listener.Addr().String() + "/7"
	vol := &secretVolume{t: t, dir: t.TempDir()}
	path := vol.write("dsn", string(first.dsn())+"\n")
	cfg := testConfig(first)
	cfg.DSN, cfg.DSNFile = "", path
	h := newHarness(t, cfg)

	send := func(n int, f *fakeSentry, key string) {
		t.Helper()
		h.export(t, n, makeEnvelope(t, eventID(n), "event"))
		if err := h.acks.Wait(t, n); err != nil {
			t.Fatalf("envelope %d acknowledged with %v", n, err)
		}
		calls := callsOf(f.waitFor(t, eventID(n), func(c []*call) bool { return len(callsOf(c, eventID(n))) > 0 }), eventID(n))
		c := calls[len(calls)-1]
		if got := c.header.Get("X-Sentry-Auth"); !strings.Contains(got, "sentry_key="+key) {
			t.Errorf("envelope %d: auth %q, want the key %s", n, got, key)
		}
		if got := fmt.Sprint(c.env.Header["dsn"]); !strings.Contains(got, key+"@") {
			t.Errorf("envelope %d: dsn header %q, want the key %s", n, got, key)
		}
		if got := c.env.Header["trace"].(map[string]any)["public_key"]; got != key {
			t.Errorf("envelope %d: trace public_key %v, want %s", n, got, key)
		}
	}
	send(1, first, upstreamKey)

	vol.write("dsn", secondDSN+"\n")
	send(2, second, otherKey)
	if !strings.Contains(h.log.String(), "the DSN in dsn_file changed") {
		t.Errorf("the change is not logged:\n%s", h.log.String())
	}

	const garbage = "not-a-dsn-" + upstreamKey
	vol.write("dsn", garbage)
	send(3, second, otherKey)
	send(4, second, otherKey)
	log := h.log.String()
	if n := strings.Count(log, "cannot use the DSN in dsn_file"); n != 1 {
		t.Errorf("the bad DSN is logged %d times, want once:\n%s", n, log)
	}
	for _, secret := range []string{upstreamKey, otherKey, garbage} {
		if strings.Contains(log, secret) {
			t.Errorf("the log shows %q:\n%s", secret, log)
		}
	}

	vol.write("dsn", string(first.dsn()))
	send(5, first, upstreamKey)
}

// TestHeaderFollowsUpstreamAtSending: an envelope prepared under one DSN and sent after
// dsn_file changed carries the new DSN and key; a foreign trace key stays.
func TestHeaderFollowsUpstreamAtSending(t *testing.T) {
	next := &upstreamIDs{dsn: "https://0123456789abcdef0123456789abcdef@sentry.example/7", key: "0123456789abcdef0123456789abcdef"}
	own := newEnvelope(makeEnvelope(t, eventID(1), "event"), testUpstream)
	parsed, err := sentryenv.Parse(own.appendHeader(nil, time.Now(), next), sentryenv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["dsn"] != next.dsn || parsed.Header["trace"].(map[string]any)["public_key"] != next.key {
		t.Errorf("header %v, want the new DSN and key", parsed.Header)
	}
	foreign, err := sentryenv.Parse(makeEnvelope(t, eventID(2), "event"), sentryenv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	foreign.Header["trace"].(map[string]any)["public_key"] = "0ther0project0key"
	other := newEnvelope(foreign.Marshal(), testUpstream)
	parsed, err = sentryenv.Parse(other.appendHeader(nil, time.Now(), next), sentryenv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := parsed.Header["trace"].(map[string]any)["public_key"]; got != "0ther0project0key" {
		t.Errorf("trace public_key %v, want the other project's kept", got)
	}
}
