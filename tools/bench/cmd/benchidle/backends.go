package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// The secret the sidecar renders, and how it logs in for it.
const (
	secretMount = "secret"
	secretName  = "shop/db"
	jwtMount    = "jwt"
	jwtRole     = "web"
	jwtAudience = "vault"
	policyName  = "shop-web"
)

// secretValue is the rendered secret's value, which the benchmark checks in the file.
const secretValue = "benchidle-db-password-3f9c2a"

// backends are the real servers the sidecar talks to: Vault and Loki run as child
// processes, Sentry and the OTLP trace endpoint are counting sinks in benchidle.
type backends struct {
	vault  *vaulttest.Vault
	loki   *lokitest.Loki
	sentry *sentrytest.Server
	otlp   *traceSink
	// jwt is a service-account-like token that Vault's jwt auth at jwtMount accepts
	// for jwtRole.
	jwt string
}

// startBackends starts Vault (with the jwt auth, the role, the policy and the secret),
// Loki, and the two sinks, their files under dir.
func startBackends(ctx context.Context, dir string) (b *backends, err error) {
	b = &backends{}
	defer func() {
		if err != nil {
			b.stop()
		}
	}()
	if b.vault, err = vaulttest.Start(ctx, filepath.Join(dir, "vault")); err != nil {
		return nil, err
	}
	if b.jwt, err = setUpVault(ctx, b.vault); err != nil {
		return nil, fmt.Errorf("set up vault: %w", err)
	}
	if b.loki, err = lokitest.Start(ctx, filepath.Join(dir, "loki")); err != nil {
		return nil, err
	}
	if b.otlp, err = startTraceSink(); err != nil {
		return nil, err
	}
	return b, nil
}

// startSentry starts the Sentry sink, accepting envelopes for the key.
func (b *backends) startSentry(key string) {
	b.sentry = sentrytest.New(sentrytest.WithPublicKey(key))
}

func (b *backends) stop() {
	if b.sentry != nil {
		b.sentry.Close()
	}
	if b.otlp != nil {
		b.otlp.stop()
	}
	if b.loki != nil {
		b.loki.Stop()
	}
	if b.vault != nil {
		b.vault.Stop()
	}
}

// setUpVault enables jwt auth with a fresh signing key, a role that may read the
// secret, and writes the secret; it returns a token signed for the role.
func setUpVault(ctx context.Context, v *vaulttest.Vault) (string, error) {
	signer, err := vaulttest.NewJWTSigner()
	if err != nil {
		return "", err
	}
	pub, err := signer.PublicPEM()
	if err != nil {
		return "", err
	}
	c := v.Client
	policy := fmt.Sprintf(`path "%[1]s/data/%[2]s" { capabilities = ["read"] }
path "%[1]s/metadata/%[2]s" { capabilities = ["read"] }`, secretMount, secretName)
	if err := c.Sys().PutPolicyWithContext(ctx, policyName, policy); err != nil {
		return "", err
	}
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, jwtMount, &vaultapi.EnableAuthOptions{Type: "jwt"}); err != nil {
		return "", err
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+jwtMount+"/config", map[string]any{"jwt_validation_pubkeys": []string{pub}}); err != nil {
		return "", err
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+jwtMount+"/role/"+jwtRole, map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{jwtAudience},
		"token_policies": []string{policyName}, "token_ttl": "1h",
	}); err != nil {
		return "", err
	}
	if _, err := c.KVv2(secretMount).Put(ctx, secretName, map[string]any{"password": secretValue}); err != nil {
		return "", err
	}
	now := time.Now()
	return signer.Sign(map[string]any{
		"sub": "system:serviceaccount:shop:web", "aud": jwtAudience,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(6 * time.Hour).Unix(),
	})
}

// traceSink is an OTLP/gRPC trace endpoint that counts the spans it receives.
type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	ln    net.Listener
	srv   *grpc.Server
	spans atomic.Int64
}

func startTraceSink() (*traceSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &traceSink{ln: ln, srv: grpc.NewServer()}
	ptraceotlp.RegisterGRPCServer(s.srv, s)
	// When Serve fails the count stops, and the run reports the spans missing.
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Export counts the request's spans.
func (s *traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

func (s *traceSink) url() string { return "http://" + s.ln.Addr().String() }

func (s *traceSink) stop() { s.srv.Stop() }
