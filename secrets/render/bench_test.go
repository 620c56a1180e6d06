package render

import (
	"context"
	"testing"
)

// typicalTemplate is what a service's secret file usually looks like: database
// credentials, a few KV v2 values, a certificate.
const typicalTemplate = `{{ with secret "database/creds/app" -}}
DB_USER={{ .Data.username }}
DB_PASS={{ .Data.password }}
{{ end -}}
{{ with secret "secret/data/app" -}}
API_KEY={{ .Data.data.api_key }}
PASSWORD_B64={{ .Data.data.password | base64Encode }}
{{ end -}}
{{ with pkiCert "pki/issue/web" "common_name=web.svc" -}}
TLS_CERT={{ .Cert | toJSON }}
TLS_KEY={{ .Key | toJSON }}
{{ end -}}
`

func BenchmarkRender(b *testing.B) {
	tm := mustTemplate(b, typicalTemplate)
	f := &cachedFetcher{secrets: testSecrets()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, deps, err := tm.Render(ctx, f)
		if err != nil || len(out) == 0 || len(deps) != 3 {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderShortEnv(b *testing.B) {
	tm, err := NewTemplate(FileConfig{Path: "/vault/secrets/app.env", Source: "secret/data/app"})
	if err != nil {
		b.Fatal(err)
	}
	f := &cachedFetcher{secrets: testSecrets()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tm.Render(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
}

// cachedFetcher is a Fetcher that does no bookkeeping, as the Syncer's cache hit is.
type cachedFetcher struct{ secrets map[string]*Secret }

func (c *cachedFetcher) Secret(_ context.Context, path string, args []string) (*Secret, error) {
	key := path
	for _, a := range args {
		key += " " + a
	}
	s, ok := c.secrets[key]
	if !ok {
		return nil, ErrNotFound
	}
	return s, nil
}
