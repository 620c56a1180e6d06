package kubetest

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// TestVaultKubernetesLogin configures a real Vault's Kubernetes auth against the
// cluster as the package documentation says, and logs in with real service-account
// tokens: Vault's TokenReview call reaches this API server and decides.
func TestVaultKubernetesLogin(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	ctx := testContext(t)
	v, err := vaulttest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()

	reviewer, err := c.TokenReviewerJWT(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Client.Sys().EnableAuthWithOptionsWithContext(ctx, "kubernetes", &api.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().WriteWithContext(ctx, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":      c.URL(),
		"kubernetes_ca_cert":   string(c.CAPEM()),
		"token_reviewer_jwt":   reviewer,
		"disable_local_ca_jwt": true,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().WriteWithContext(ctx, "auth/kubernetes/role/app", map[string]any{
		"bound_service_account_names":      "app",
		"bound_service_account_namespaces": "kubetest-vault",
		"token_policies":                   "default",
		"token_ttl":                        "10m",
	}); err != nil {
		t.Fatal(err)
	}

	login, err := v.Client.Clone()
	if err != nil {
		t.Fatal(err)
	}
	login.ClearToken()
	// A token of a service account deleted since: its claims still name the bound
	// account, and only the API server's TokenReview knows it is no longer valid.
	revoked, err := c.ServiceAccountToken(ctx, "kubetest-vault", "app")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "/api/v1/namespaces/kubetest-vault/serviceaccounts/app"); err != nil {
		t.Fatal(err)
	}
	// The API server's token authenticator sees the deletion through an informer.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := c.TokenReview(ctx, revoked)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Authenticated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token of a deleted service account still authenticates after 30 s")
		}
	}
	for _, tc := range []struct {
		name, sa, jwt, wantErr string
	}{
		{"bound service account", "app", "", ""},
		{"other service account", "other", "", "service account name not authorized"},
		{"deleted service account", "app", revoked, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwt := tc.jwt
			if jwt == "" {
				var err error
				if jwt, err = c.ServiceAccountToken(ctx, "kubetest-vault", tc.sa); err != nil {
					t.Fatal(err)
				}
			}
			s, err := login.Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{"role": "app", "jwt": jwt})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("login = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Auth == nil || s.Auth.ClientToken == "" || s.Auth.Metadata["service_account_name"] != "app" ||
				s.Auth.Metadata["service_account_namespace"] != "kubetest-vault" {
				t.Fatalf("login answered %+v", s.Auth)
			}
		})
	}
}
