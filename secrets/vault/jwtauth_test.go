package vault

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/kubetest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// signer is vaulttest.JWTSigner failing the test on an error.
type signer struct{ s *vaulttest.JWTSigner }

func newSigner(t *testing.T) *signer {
	t.Helper()
	s, err := vaulttest.NewJWTSigner()
	if err != nil {
		t.Fatal(err)
	}
	return &signer{s}
}

func (s *signer) publicPEM(t *testing.T) string {
	t.Helper()
	p, err := s.s.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *signer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	jwt, err := s.s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

func TestJWTLogin(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	mount := unique("jwt")
	enableAuth(t, "jwt", mount)
	rootWrite(t, "auth/"+mount+"/config", map[string]any{"jwt_validation_pubkeys": []string{s.publicPEM(t)}})
	rootWrite(t, "auth/"+mount+"/role/web", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"outrider"},
		"token_policies": []string{"outrider-all"}, "token_ttl": "5m",
	})
	now := time.Now()
	jwt := s.sign(t, map[string]any{"sub": "web-1", "aud": "outrider", "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	dir := t.TempDir()
	tokenPath := writeFile(t, dir, "jwt", jwt)
	name := unique("jwtapp")
	kvPut(t, "secret", name, map[string]any{"k": "jwt-value"})

	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodJWT, MountPath: mount, Role: "web", TokenPath: tokenPath}}, rec.settings())
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	sec, err := c.Read(ctxT(t), "secret/"+name, nil)
	if err != nil || dataOf(t, sec)["k"] != "jwt-value" {
		t.Fatalf("Read = %v, %v", sec, err)
	}
	if strings.Contains(rec.text(), jwt) || strings.Contains(rec.text(), strings.Split(jwt, ".")[1]) {
		t.Fatal("the JWT leaked into logs or audit")
	}

	t.Run("wrong role", func(t *testing.T) {
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodJWT, MountPath: mount, Role: "nope", TokenPath: tokenPath}}, Settings{})
		wantErr(t, c.Login(ctxT(t)), ErrAuth, `vault auth failed: role "nope" not found at auth/`+mount, "check auth.role")
	})
	t.Run("wrong audience", func(t *testing.T) {
		bad := s.sign(t, map[string]any{"sub": "web-1", "aud": "someone-else", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodJWT, MountPath: mount, Role: "web", TokenPath: writeFile(t, t.TempDir(), "jwt", bad)}}, Settings{})
		err := c.Login(ctxT(t))
		wantErr(t, err, ErrAuth, `vault auth failed: jwt login at auth/`+mount+` (role "web")`, "bound_audiences")
		if strings.Contains(err.Error(), bad) {
			t.Error("the JWT leaked into the error")
		}
	})
	t.Run("signed by another key", func(t *testing.T) {
		other := newSigner(t).sign(t, map[string]any{"sub": "web-1", "aud": "outrider", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodJWT, MountPath: mount, Role: "web", TokenPath: writeFile(t, t.TempDir(), "jwt", other)}}, Settings{})
		wantErr(t, c.Login(ctxT(t)), ErrAuth, `jwt login at auth/`+mount+` (role "web")`, "jwt_validation_pubkeys")
	})
}

// TestKubernetesLogin logs in with real service-account tokens from a real
// kube-apiserver: Vault's kubernetes auth asks that API server's TokenReview, so a
// token of a deleted service account is refused even though its claims look right.
func TestKubernetesLogin(t *testing.T) {
	t.Parallel()
	cluster := kubetest.Shared(t)
	ctx := ctxT(t)
	ns := unique("vault-k8s")
	webToken, err := cluster.ServiceAccountToken(ctx, ns, "web", "vault")
	if err != nil {
		t.Fatal(err)
	}
	otherToken, err := cluster.ServiceAccountToken(ctx, ns, "other", "vault")
	if err != nil {
		t.Fatal(err)
	}
	reviewer, err := cluster.TokenReviewerJWT(ctx)
	if err != nil {
		t.Fatal(err)
	}

	mount := unique("kubernetes")
	enableAuth(t, "kubernetes", mount)
	rootWrite(t, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host": cluster.URL(), "kubernetes_ca_cert": string(cluster.CAPEM()),
		"token_reviewer_jwt": reviewer, "disable_local_ca_jwt": true,
	})
	rootWrite(t, "auth/"+mount+"/role/web", map[string]any{
		"bound_service_account_names": "web", "bound_service_account_namespaces": ns, "audience": "vault",
		"token_policies": "outrider-all", "token_ttl": "5m",
	})
	dir := t.TempDir()
	webPath := writeFile(t, dir, "token", webToken)

	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodKubernetes, MountPath: mount, Role: "web", TokenPath: webPath}}, rec.settings())
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if ev := rec.find(audit.KindAuth, "ok"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "method=kubernetes mount=auth/"+mount+" role=web") {
		t.Fatalf("audit = %+v", ev)
	}

	t.Run("wrong role", func(t *testing.T) {
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodKubernetes, MountPath: mount, Role: "nope", TokenPath: webPath}}, Settings{})
		wantErr(t, c.Login(ctxT(t)), ErrAuth,
			`vault auth failed: role "nope" not found at auth/`+mount+`; check the role name and that the service account is bound to it`)
	})
	t.Run("service account deleted", func(t *testing.T) {
		gone, err := cluster.ServiceAccountToken(ctx, ns+"-gone", "web", "vault")
		if err != nil {
			t.Fatal(err)
		}
		rootWrite(t, "auth/"+mount+"/role/gone", map[string]any{
			"bound_service_account_names": "web", "bound_service_account_namespaces": ns + "-gone", "audience": "vault",
			"token_policies": "outrider-all", "token_ttl": "5m",
		})
		if err := cluster.Delete(ctx, "/api/v1/namespaces/"+ns+"-gone/serviceaccounts/web"); err != nil {
			t.Fatal(err)
		}
		// The API server checks a token's service account in its informer cache,
		// which learns of the deletion a moment later: on a busy machine a login
		// right after the delete was still accepted.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			st, err := cluster.TokenReview(ctx, gone, "vault")
			if err == nil && !st.Authenticated {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the API server still accepts the deleted service account's token after 30s (TokenReview: %+v, %v)", st, err)
			}
		}
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodKubernetes, MountPath: mount, Role: "gone", TokenPath: writeFile(t, dir, "gone", gone)}}, Settings{})
		wantErr(t, c.Login(ctxT(t)), ErrAuth, `kubernetes login at auth/`+mount+` (role "gone") was denied`,
			"no longer accepts the service-account token")
	})
	t.Run("service account not bound", func(t *testing.T) {
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodKubernetes, MountPath: mount, Role: "web", TokenPath: writeFile(t, dir, "other", otherToken)}}, Settings{})
		err := c.Login(ctxT(t))
		wantErr(t, err, ErrAuth, `vault auth failed: kubernetes login at auth/`+mount+` (role "web") was denied`,
			"bound_service_account_names", "service account name not authorized")
		if IsRetryable(err) {
			t.Error("a denied login is not retryable")
		}
	})
}
