package vault

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"
)

// Secret is what Vault answered to a read, a write or a lease renewal.
//
// Data holds secret values: never log it. Secret's String, GoString and LogValue
// leave Data out, so printing or logging a *Secret is safe.
type Secret struct {
	// Data is the response's data in Vault's own shape. For a KV v2 read it is
	// {"data": {...the secret's keys...}, "metadata": {...}}, as Vault Agent templates
	// expect (.Data.data.password); for everything else it is the engine's data. JSON
	// numbers are json.Number.
	Data map[string]any
	// LeaseID identifies the lease of a dynamic secret ("" when there is none).
	LeaseID string
	// LeaseDuration is the lease's TTL (or, for KV v1, the ttl key's advice).
	LeaseDuration time.Duration
	// Renewable says whether RenewLease can extend the lease.
	Renewable bool
	// Warnings are Vault's warnings about the request.
	Warnings []string
	// KV is set for reads from a KV v2 mount.
	KV *KVInfo
}

// KVInfo describes the KV v2 version a Read returned.
type KVInfo struct {
	// Mount is the mount path with its trailing slash, e.g. "secret/".
	Mount string
	// Version is the version read.
	Version int
	// CreatedTime is when that version was written.
	CreatedTime time.Time
}

// String describes the secret without its data.
func (s Secret) String() string {
	out := fmt.Sprintf("vault.Secret{keys: %d, lease_id: %q, lease_duration: %s, renewable: %t", len(s.Data), s.LeaseID, s.LeaseDuration, s.Renewable)
	if s.KV != nil {
		out += fmt.Sprintf(", kv: %s version %d", s.KV.Mount, s.KV.Version)
	}
	return out + "}"
}

// GoString is String, so %#v does not print the data either.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without the data.
func (s Secret) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Int("keys", len(s.Data))}
	if s.LeaseID != "" {
		attrs = append(attrs, slog.String("lease_id", s.LeaseID), slog.Duration("lease_duration", s.LeaseDuration), slog.Bool("renewable", s.Renewable))
	}
	if s.KV != nil {
		attrs = append(attrs, slog.String("kv_mount", s.KV.Mount), slog.Int("kv_version", s.KV.Version))
	}
	return slog.GroupValue(attrs...)
}

func fromAPI(s *api.Secret) *Secret {
	if s == nil {
		return &Secret{}
	}
	return &Secret{
		Data:          s.Data,
		LeaseID:       s.LeaseID,
		LeaseDuration: time.Duration(s.LeaseDuration) * time.Second,
		Renewable:     s.Renewable,
		Warnings:      s.Warnings,
	}
}

// intOf reads a JSON number Vault sent (json.Number, or a float64/int from other
// decoders).
func intOf(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(n.String())
		return i, err == nil
	case float64:
		return int(n), n == float64(int(n))
	case int:
		return n, true
	case int64:
		return int(n), true
	}
	return 0, false
}

// kvInfo reads a KV v2 response's metadata.
func kvInfo(mount string, data map[string]any) *KVInfo {
	info := &KVInfo{Mount: mount}
	md, _ := data["metadata"].(map[string]any)
	if v, ok := intOf(md["version"]); ok {
		info.Version = v
	}
	if s, ok := md["created_time"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			info.CreatedTime = t
		}
	}
	return info
}
