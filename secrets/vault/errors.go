package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Sentinel errors callers can branch on with errors.Is. The errors the client
// returns carry a message that says what to check; these only classify them.
var (
	// ErrAuth marks a failed login.
	ErrAuth = errors.New("vault auth failed")
	// ErrNotFound marks a path with no secret (or a deleted KV v2 version).
	ErrNotFound = errors.New("vault: not found")
	// ErrPermissionDenied marks a request Vault refused even after a fresh login.
	ErrPermissionDenied = errors.New("vault: permission denied")
	// ErrNotKVv2 is returned by KVVersion for a path that is not on a KV v2 mount.
	ErrNotKVv2 = errors.New("vault: not a KV v2 mount")
	// ErrNotRenewable marks a lease Vault refuses to renew (e.g. a PKI certificate's
	// lease); fetch a new secret instead.
	ErrNotRenewable = errors.New("vault: lease is not renewable")
)

// Error is an error from the client: a message for the user, whether retrying may
// help, and what it wraps (a sentinel above and the underlying *api.ResponseError or
// network error).
type Error struct {
	msg       string
	retryable bool
	kind      error
	cause     error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var out []error
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// Retryable reports whether retrying the request later may succeed.
func (e *Error) Retryable() bool { return e.retryable }

// IsRetryable reports whether err is worth retrying later: Vault unreachable,
// timeouts, 5xx (sealed, standby, overloaded), 412 and 429. Permanent errors — 400,
// 403 after a fresh login, 404, a server certificate that does not verify, bad
// configuration — and a cancelled context are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.retryable
	}
	return retryableCause(err)
}

func retryableStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed
}

func retryableCause(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return retryableStatus(re.StatusCode)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if tlsVerifyError(err) {
		return false // a certificate that does not verify will not verify on retry: fix the configuration
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue)
}

// responseError returns the *api.ResponseError in err, if any.
func responseError(err error) *api.ResponseError {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re
	}
	return nil
}

// statusOf returns the HTTP status of a Vault answer in err, or 0 when Vault did not
// answer.
func statusOf(err error) int {
	if re := responseError(err); re != nil {
		return re.StatusCode
	}
	return 0
}

// vaultSaid returns Vault's own error messages on one line.
func vaultSaid(re *api.ResponseError) string {
	var parts []string
	for _, e := range re.Errors {
		for _, line := range strings.Split(e, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
			if line != "" && !strings.HasSuffix(line, "errors occurred:") && !strings.HasSuffix(line, "error occurred:") {
				parts = append(parts, line)
			}
		}
	}
	if len(parts) == 0 {
		return http.StatusText(re.StatusCode)
	}
	return strings.Join(parts, "; ")
}

func isPermissionDenied(err error) bool {
	re := responseError(err)
	return re != nil && re.StatusCode == http.StatusForbidden && strings.Contains(strings.Join(re.Errors, " "), "permission denied")
}

// describe explains err — Vault's answer, or why Vault could not be reached — and
// what to check. It never includes request bodies (where credentials travel).
func (c *Client) describe(err error) string {
	if re := responseError(err); re != nil {
		msg := fmt.Sprintf("Vault answered %d: %s", re.StatusCode, vaultSaid(re))
		switch {
		case re.StatusCode == http.StatusServiceUnavailable:
			msg += "; Vault may be sealed or in standby: check `vault status`"
		case re.StatusCode == http.StatusTooManyRequests:
			msg += "; Vault is rate-limiting this client (a quota)"
		}
		return msg
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	if tlsVerifyError(err) {
		return fmt.Sprintf("TLS to Vault at %s failed: %v; check tls.ca_file (or VAULT_CACERT) and tls.server_name (or VAULT_TLS_SERVER_NAME)", c.cfg.Address, cause)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer from Vault at %s in time (%v); check that Vault is healthy, or raise timeout", c.cfg.Address, cause)
	}
	return fmt.Sprintf("cannot reach Vault at %s: %v; check address (or VAULT_ADDR), DNS and network policy", c.cfg.Address, cause)
}

// requestError builds the error of a failed request on path: what was attempted, why
// it failed and what to check.
func (c *Client) requestError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	status := statusOf(err)
	out := &Error{cause: err, retryable: retryableCause(err)}
	switch {
	case status == http.StatusNotFound:
		out.kind = ErrNotFound
		out.msg = fmt.Sprintf("secret not found at %s: check the path and mount", path)
	case status == http.StatusForbidden:
		out.kind = ErrPermissionDenied
		re := responseError(err)
		apiPath, capability := deniedRequest(re)
		out.msg = fmt.Sprintf("permission denied: %s %s: the token from %s may not %s %s; check that its policies grant %q on %s",
			verb(op), path, c.authDesc(), capability, apiPath, capability, apiPath)
		if said := vaultSaid(re); said != "permission denied" {
			out.msg += " (Vault: " + said + ")"
		}
	default:
		out.msg = fmt.Sprintf("vault %s %s: %s", verb(op), path, c.describe(err))
	}
	return out
}

func verb(op string) string {
	switch op {
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpKVVersion:
		return "read KV metadata of"
	case OpRenewLease:
		return "renew lease"
	case OpRevokeLease:
		return "revoke lease"
	case OpMounts:
		return "look up the mount of"
	default:
		return op
	}
}

// tlsVerifyError reports whether err is a failed verification of Vault's certificate.
func tlsVerifyError(err error) bool {
	var ce *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var ie x509.CertificateInvalidError
	return errors.As(err, &ce) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &ie)
}

// deniedRequest returns the API path (without /v1/ and query) and the policy
// capability of the request Vault denied.
func deniedRequest(re *api.ResponseError) (path, capability string) {
	path = re.URL
	if u, err := url.Parse(re.URL); err == nil {
		path = u.Path
	}
	if i := strings.Index(path, "/v1/"); i >= 0 {
		path = path[i+len("/v1/"):]
	}
	switch re.HTTPMethod {
	case http.MethodGet:
		if strings.HasPrefix(path, "sys/internal/ui/mounts/") {
			return strings.TrimPrefix(path, "sys/internal/ui/mounts/"), "read"
		}
		return path, "read"
	case "LIST":
		return path, "list"
	case http.MethodDelete:
		return path, "delete"
	default:
		return path, "update"
	}
}
