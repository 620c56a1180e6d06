package vault

import (
	"strings"
	"testing"
)

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string]any
		want mountInfo
	}{
		{"kv v2", map[string]any{"path": "secret/", "type": "kv", "options": map[string]any{"version": "2"}}, mountInfo{"secret/", "kv", 2}},
		{"kv v1", map[string]any{"path": "kv/", "type": "kv", "options": map[string]any{"version": "1"}}, mountInfo{"kv/", "kv", 1}},
		{"kv without options", map[string]any{"path": "kv/", "type": "kv", "options": nil}, mountInfo{"kv/", "kv", 1}},
		{"generic", map[string]any{"path": "old/", "type": "generic"}, mountInfo{"old/", "generic", 1}},
		{"pki", map[string]any{"path": "pki/", "type": "pki"}, mountInfo{"pki/", "pki", 0}},
		{"no trailing slash", map[string]any{"path": "secret", "type": "kv", "options": map[string]any{"version": "2"}}, mountInfo{"secret/", "kv", 2}},
		{"garbage", map[string]any{"path": 3, "type": []any{}}, mountInfo{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseMount(tc.data); got != tc.want {
				t.Fatalf("parseMount = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMountUnder(t *testing.T) {
	m := mountInfo{path: "secret/"}
	for path, want := range map[string]bool{"secret/app": true, "secret/a/b": true, "secret": true, "secrets/app": false, "sec": false} {
		if got := m.under(path); got != want {
			t.Errorf("under(%q) = %t", path, got)
		}
	}
	if (mountInfo{}).under("secret/app") {
		t.Error("an unknown mount is under nothing")
	}
}

func TestKVPaths(t *testing.T) {
	for _, tc := range []struct {
		mount, path, data, meta, err string
	}{
		{"secret/", "secret/app", "secret/data/app", "secret/metadata/app", ""},
		{"secret/", "secret/team/app", "secret/data/team/app", "secret/metadata/team/app", ""},
		{"secret/", "secret/data/app", "secret/data/app", "secret/metadata/app", ""},
		{"secret/", "secret/data/data/app", "secret/data/data/app", "secret/metadata/data/app", ""},
		{"team/kv/", "team/kv/app", "team/kv/data/app", "team/kv/metadata/app", ""},
		{"secret/", "secret", "", "", "names the KV mount secret/ itself"},
		{"secret/", "secret/data", "secret/data/data", "secret/metadata/data", ""},
		{"secret/", "other/app", "", "", "names the KV mount"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			d, err := kvDataPath(tc.mount, tc.path)
			m, err2 := kvMetadataPath(tc.mount, tc.path)
			if tc.err != "" {
				if err == nil || err2 == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %q, %v; want error %q", d, m, err, tc.err)
				}
				return
			}
			if err != nil || err2 != nil || d != tc.data || m != tc.meta {
				t.Fatalf("data %q meta %q (%v, %v); want %q %q", d, m, err, err2, tc.data, tc.meta)
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"secret/app", "secret/app", ""},
		{"/secret/app/", "secret/app", ""},
		{" secret/app ", "secret/app", ""},
		{"", "", "empty Vault path"},
		{"/", "", "empty Vault path"},
		{"secret/app?version=2", "", "must not contain '?'"},
		{"v1/secret/app", "", "without the API prefix, e.g. secret/app"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := cleanPath(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("cleanPath(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("cleanPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzKVPaths checks the path mapping for any configured path: a cleaned path on a
// KV v2 mount maps to a data path and a metadata path on the same mount, naming the
// same secret.
func FuzzKVPaths(f *testing.F) {
	for _, s := range []string{"secret/app", "/secret/data/app/", "secret", "secret/data", "secret/a/b/c", "v1/x", "secret/\n", "secret//x"} {
		f.Add("secret/", s)
	}
	f.Add("team/kv/", "team/kv/data/x")
	f.Fuzz(func(t *testing.T, mount, path string) {
		p, err := cleanPath(path)
		if err != nil {
			return
		}
		if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#\n\r") {
			t.Fatalf("cleanPath(%q) = %q", path, p)
		}
		m := mountInfo{path: strings.Trim(mount, "/") + "/"}
		if m.path == "/" || !m.under(p) {
			return
		}
		d, err := kvDataPath(m.path, p)
		if err != nil {
			return
		}
		md, err := kvMetadataPath(m.path, p)
		if err != nil {
			t.Fatalf("data path %q but metadata error %v", d, err)
		}
		if !strings.HasPrefix(d, m.path+"data/") || !strings.HasPrefix(md, m.path+"metadata/") {
			t.Fatalf("%q on %q -> %q, %q", p, m.path, d, md)
		}
		if strings.TrimPrefix(d, m.path+"data/") != strings.TrimPrefix(md, m.path+"metadata/") {
			t.Fatalf("data %q and metadata %q name different secrets", d, md)
		}
		if again, err := kvDataPath(m.path, d); err != nil || again != d {
			t.Fatalf("mapping %q again gave %q, %v", d, again, err)
		}
	})
}
