package vault

import (
	"context"
	"fmt"
	"strings"
)

// mountInfo is what sys/internal/ui/mounts says about the mount a path is on.
type mountInfo struct {
	path string // with its trailing slash, e.g. "secret/"; "" when unknown
	typ  string // engine type, e.g. "kv", "pki"
	kv   int    // KV version: 0 (not KV), 1 or 2
}

// parseMount reads a sys/internal/ui/mounts answer.
func parseMount(data map[string]any) mountInfo {
	m := mountInfo{}
	m.path, _ = data["path"].(string)
	m.typ, _ = data["type"].(string)
	if m.typ == "kv" || m.typ == "generic" {
		m.kv = 1
		if opts, ok := data["options"].(map[string]any); ok {
			if v, _ := opts["version"].(string); v == "2" {
				m.kv = 2
			}
		}
	}
	if m.path != "" && !strings.HasSuffix(m.path, "/") {
		m.path += "/"
	}
	return m
}

// under reports whether path is on mount m.
func (m mountInfo) under(path string) bool {
	return m.path != "" && strings.HasPrefix(path+"/", m.path)
}

// mountOf finds the mount path is on. Mounts are cached for the client's lifetime, as
// consul-template and Vault Agent do: Vault does not allow one mount inside another,
// so the cached mount that prefixes a path is its mount. Paths on unknown mounts cost
// one sys/internal/ui/mounts request, once per mount.
func (c *Client) mountOf(ctx context.Context, path string) (mountInfo, error) {
	c.mountsMu.Lock()
	for _, m := range c.mounts {
		if m.under(path) {
			c.mountsMu.Unlock()
			return m, nil
		}
	}
	c.mountsMu.Unlock()
	sec, err := c.api.Logical().ReadWithContext(withOp(ctx, OpMounts), "sys/internal/ui/mounts/"+path)
	if err != nil {
		return mountInfo{}, err
	}
	if sec == nil {
		// No such endpoint (a very old Vault) or no mount: read the path as is.
		return mountInfo{}, nil
	}
	m := parseMount(sec.Data)
	if m.under(path) {
		c.mountsMu.Lock()
		c.mounts[m.path] = m
		c.mountsMu.Unlock()
	}
	return m, nil
}

// kvRest returns path relative to the KV v2 mount, without a leading "data/".
func kvRest(mount, path string) (string, error) {
	if path+"/" == mount || !strings.HasPrefix(path, mount) {
		return "", fmt.Errorf("path %q names the KV mount %s itself, not a secret on it; add the secret's name, e.g. %sapp", path, mount, mount)
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(path, mount), "data/")
	if rest == "" {
		return "", fmt.Errorf("path %q names the KV mount %s itself; add the secret's name, e.g. %sapp", path, mount, mount)
	}
	return rest, nil
}

// kvDataPath maps a path on KV v2 mount to the API path that reads it:
// secret/app → secret/data/app. A path that already starts with data/ after the mount
// is used as is (so a secret literally named "data/x" must be written
// secret/data/data/x).
func kvDataPath(mount, path string) (string, error) {
	rest, err := kvRest(mount, path)
	if err != nil {
		return "", err
	}
	return mount + "data/" + rest, nil
}

// kvMetadataPath maps a path on KV v2 mount to its metadata path:
// secret/app and secret/data/app → secret/metadata/app.
func kvMetadataPath(mount, path string) (string, error) {
	rest, err := kvRest(mount, path)
	if err != nil {
		return "", err
	}
	return mount + "metadata/" + rest, nil
}

// cleanPath trims the slashes users write around Vault paths and rejects what cannot
// be a path.
func cleanPath(path string) (string, error) {
	p := strings.Trim(strings.TrimSpace(path), "/")
	switch {
	case p == "":
		return "", fmt.Errorf("empty Vault path; write e.g. secret/app")
	case strings.ContainsAny(p, "?#\r\n"):
		return "", fmt.Errorf("vault path %q must not contain '?', '#' or line breaks; pass query parameters separately", path)
	case strings.HasPrefix(p, "v1/"):
		return "", fmt.Errorf("vault path %q starts with v1/: write the path without the API prefix, e.g. %s", path, strings.TrimPrefix(p, "v1/"))
	}
	return p, nil
}
