package confval

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"64MiB": 64 << 20, "512KiB": 512 << 10, "10MB": 10e6, "1GiB": 1 << 30, "1000": 1000, "1.5KiB": 1536, " 2 Ki ": 2048, "0": 0} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1", "1XB", "99999999999TiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	if s := ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %s", s)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "password", s)
	outs := []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s), buf.String()}
	text, _ := s.MarshalText()
	outs = append(outs, string(text))
	for _, o := range outs {
		if strings.Contains(o, "hunter2") {
			t.Errorf("secret revealed: %s", o)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Error("Reveal")
	}
}

func TestProblemsPaths(t *testing.T) {
	var p Problems
	if p.Err() != nil {
		t.Fatal("empty problems give an error")
	}
	p.At("logs").At("sources[1]").Addf("path", "must be absolute")
	p.At("logs.sources").At("[2]").Addf("", "bad")
	p.Addf("data_dir", "x %d", 1)
	err := p.Err()
	for _, want := range []string{"logs.sources[1].path: must be absolute", "logs.sources[2]: bad", "data_dir: x 1", "3 problems"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if !IsConfigError(fmt.Errorf("wrap: %w", err)) {
		t.Error("IsConfigError through wrapping")
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5KB", "0", "-3", "1e3", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseByteSize(s)
		if err == nil && v < 0 {
			t.Fatalf("negative size %d from %q", v, s)
		}
	})
}
