package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/vault/api"
)

func TestIsRetryable(t *testing.T) {
	resp := func(code int, msgs ...string) error {
		return &api.ResponseError{StatusCode: code, Errors: msgs}
	}
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/v1/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"500", resp(500, "internal error"), true},
		{"503 sealed", resp(503, "Vault is sealed"), true},
		{"429", resp(429, "quota exceeded"), true},
		{"412", resp(412, "required index state not present"), true},
		{"400", resp(400, "invalid request"), false},
		{"403", resp(403, "permission denied"), false},
		{"404", resp(404), false},
		{"connection refused", refused, true},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
		{"wrapped canceled url error", &url.Error{Op: "Get", URL: "x", Err: context.Canceled}, false},
		{"plain", errors.New("bad config"), false},
		{"Error retryable", &Error{msg: "x", retryable: true}, true},
		{"Error permanent wrapping 503", &Error{msg: "x", cause: resp(503)}, false},
		{"wrapped Error", fmt.Errorf("syncer: %w", &Error{msg: "x", retryable: true}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsRetryable(tc.err); got != tc.want {
				t.Fatalf("IsRetryable(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

func TestVaultSaid(t *testing.T) {
	for _, tc := range []struct {
		errs []string
		want string
	}{
		{[]string{"permission denied"}, "permission denied"},
		{[]string{"2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"}, "permission denied; invalid token"},
		{[]string{"a", "b"}, "a; b"},
		{nil, "Bad Request"},
	} {
		if got := vaultSaid(&api.ResponseError{StatusCode: 400, Errors: tc.errs}); got != tc.want {
			t.Errorf("vaultSaid(%q) = %q, want %q", tc.errs, got, tc.want)
		}
	}
}

func TestErrorUnwrap(t *testing.T) {
	cause := &api.ResponseError{StatusCode: 404}
	err := fmt.Errorf("ctx: %w", &Error{msg: "secret not found", kind: ErrNotFound, cause: cause})
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuth) {
		t.Fatal("errors.Is")
	}
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 404 {
		t.Fatal("errors.As cause")
	}
}

func TestRequestErrorMessages(t *testing.T) {
	c := &Client{cfg: Config{Address: "http://127.0.0.1:1", Auth: AuthConfig{Method: MethodAppRole, MountPath: "approle", Role: "web"}}}
	for _, tc := range []struct {
		name string
		err  error
		want string
		kind error
	}{
		{"404", &api.ResponseError{StatusCode: 404}, "secret not found at secret/app: check the path and mount", ErrNotFound},
		{"403", &api.ResponseError{StatusCode: 403, HTTPMethod: "GET", URL: "http://127.0.0.1:1/v1/secret/data/app?version=2", Errors: []string{"permission denied"}},
			`permission denied: read secret/app: the token from approle login at auth/approle (role "web") may not read secret/data/app; check that its policies grant "read" on secret/data/app`, ErrPermissionDenied},
		{"403 on the mount lookup", &api.ResponseError{StatusCode: 403, HTTPMethod: "GET", URL: "http://127.0.0.1:1/v1/sys/internal/ui/mounts/secret/app",
			Errors: []string{`preflight capability check returned 403, please ensure client's policies grant access to path "secret/"`}},
			`may not read secret/app; check that its policies grant "read" on secret/app (Vault: preflight capability check returned 403`, ErrPermissionDenied},
		{"403 on a write", &api.ResponseError{StatusCode: 403, HTTPMethod: "PUT", URL: "http://127.0.0.1:1/v1/pki/issue/web", Errors: []string{"permission denied"}},
			`may not update pki/issue/web; check that its policies grant "update" on pki/issue/web`, ErrPermissionDenied},
		{"503", &api.ResponseError{StatusCode: 503, Errors: []string{"Vault is sealed"}}, "vault read secret/app: Vault answered 503: Vault is sealed; Vault may be sealed or in standby", nil},
		{"refused", &url.Error{Op: "Get", URL: "x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
			"cannot reach Vault at http://127.0.0.1:1: dial tcp: connection refused; check address (or VAULT_ADDR), DNS and network policy", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.requestError(OpRead, "secret/app", tc.err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, tc.want)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("%v does not wrap %v", err, tc.kind)
			}
		})
	}
}
