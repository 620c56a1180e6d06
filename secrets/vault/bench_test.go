package vault

import (
	"testing"
)

// The client's own cost per request against a real Vault (rate cap lifted): what a
// KV v2 change poll and a read allocate on top of the HTTP round trip.
func BenchmarkKVVersion(b *testing.B) {
	name := unique("bench")
	kvPut(b, "secret", name, map[string]any{"password": "x"})
	c := newClient(b, Config{MaxRequestsPerSecond: 1e6, Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(b).Token())}}, Settings{})
	ctx := ctxT(b)
	if _, err := c.KVVersion(ctx, "secret/"+name); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.KVVersion(ctx, "secret/"+name); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	name := unique("bench")
	kvPut(b, "secret", name, map[string]any{"password": "x", "user": "app"})
	c := newClient(b, Config{MaxRequestsPerSecond: 1e6, Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(b).Token())}}, Settings{})
	ctx := ctxT(b)
	if _, err := c.Read(ctx, "secret/"+name, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Read(ctx, "secret/"+name, nil); err != nil {
			b.Fatal(err)
		}
	}
}
