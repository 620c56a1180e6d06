package main

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/inject"
)

func TestInjectCommand(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown flag", []string{"inject", "--nope"}, 2, "flag provided but not defined"},
		{"argument", []string{"inject", "serve"}, 2, `unexpected argument "serve"`},
		{"bad default", []string{"inject", "--loki-url", "loki:3100"}, 2, "loki_url (--loki-url)"},
		{"bad mode", []string{"inject", "--sidecar-mode", "x"}, 2, "sidecar_mode: must be"},
		{"bad config file", []string{"inject", "--config", write("bad.yaml", "imagee: x\n")}, 2, "field imagee not found"},
		{"config file then flag", []string{"inject", "--config", write("ok.yaml", "loki_url: ftp://x\n"), "--loki-url", "http://loki:3100", "--log-level", "loud"}, 2, "--log-level must be"},
		{"missing certificate", []string{"inject", "--tls-cert", filepath.Join(dir, "nope.crt"), "--tls-key", filepath.Join(dir, "nope.key"), "--listen", "127.0.0.1:0"}, 1, "nope.crt"},
		{"self-signed without dir", []string{"inject", "--self-signed", "--namespace", "ns"}, 2, "--out-dir"},
		{"ca-secret outside a cluster", []string{"inject", "--self-signed", "--namespace", "ns", "--out-dir", certs, "--ca-secret", "ca"}, 2, "not running in a cluster"},
		{"ca-secret renewal window", []string{"inject", "--self-signed", "--namespace", "ns", "--out-dir", certs, "--ca-secret", "ca", "--ca-validity", "720h", "--ca-renew-before", "720h"}, 2, "--ca-validity"},
		{"self-signed outside a cluster", []string{"inject", "--self-signed", "--namespace", "ns", "--out-dir", certs, "--webhook-config", "outrider"}, 2, "not running in a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, stderr.String(), tt.code, tt.stderr)
			}
		})
	}
}

func TestInjectSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	args := []string{"inject", "--self-signed", "--service", "outrider-injector", "--namespace", "outrider", "--out-dir", dir, "--extra-names", "127.0.0.1, localhost"}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	bundle, err := base64.StdEncoding.DecodeString(strings.TrimSpace(stdout.String()))
	if err != nil {
		t.Fatalf("stdout is not base64: %v", err)
	}
	if b, _ := pem.Decode(bundle); b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("the caBundle is not a PEM certificate: %q", bundle)
	}
	ca, err := os.ReadFile(filepath.Join(dir, inject.CAFileName))
	if err != nil || !bytes.Equal(ca, bundle) {
		t.Errorf("ca.crt differs from the printed caBundle (%v)", err)
	}
	var again bytes.Buffer
	stderr.Reset()
	if code := run(args, &again, &stderr); code != exitOK || again.String() != stdout.String() || !strings.Contains(stderr.String(), "kept the certificates") {
		t.Errorf("second run: exit %d, %q; want the same CA kept", code, stderr.String())
	}
}

// TestInjectFlagsCoverDefaults checks that every field of inject.Defaults has a flag
// named after its YAML key and that a flag on the command line overrides the --config
// file for each of them.
func TestInjectFlagsCoverDefaults(t *testing.T) {
	var f injectFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f.register(fs)
	var d inject.Defaults
	copies := overrides(&d, &f.defaults)
	typ := reflect.TypeOf(d)
	for i := 0; i < typ.NumField(); i++ {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		name := strings.ReplaceAll(key, "_", "-")
		if fs.Lookup(name) == nil {
			t.Errorf("Defaults.%s (%s) has no flag --%s", typ.Field(i).Name, key, name)
			continue
		}
		copyField, ok := copies[name]
		if !ok {
			t.Errorf("--%s does not override the --config file", name)
			continue
		}
		switch fv := reflect.ValueOf(&f.defaults).Elem().Field(i); fv.Kind() {
		case reflect.String:
			fv.SetString("from-flag")
		case reflect.Int:
			fv.SetInt(7)
		}
		copyField()
		if got, want := reflect.ValueOf(d).Field(i).Interface(), reflect.ValueOf(f.defaults).Field(i).Interface(); got != want {
			t.Errorf("--%s copies %v, want %v", name, got, want)
		}
	}
	if len(copies) != typ.NumField() {
		t.Errorf("%d overrides for %d fields", len(copies), typ.NumField())
	}
}
