// Package vault is outrider's Vault client, built on github.com/hashicorp/vault/api.
//
// It logs in with one of four methods — kubernetes (a projected service-account
// token), approle (role_id and secret_id files, the secret_id optionally
// response-wrapped), jwt, or a plain token (file, config or $VAULT_TOKEN) — and keeps
// the token alive in Run: renewal with the api's lifetime watcher, a fresh login
// before the token's max TTL, after a failed renewal, and when Vault answers
// "permission denied" to a request (an expired or revoked token). Login errors name
// the method, mount and role and say what to check.
//
// Reads understand KV v1 and v2: a path such as secret/app on a KV v2 mount is read
// from secret/data/app (any version), and KVVersion polls a secret's metadata with one
// request. Writes, lease renewal and revocation complete what the secrets syncer
// needs for dynamic secrets and PKI certificates.
//
// Every HTTP request to Vault — logins, renewals and retries included — passes a
// token bucket with a burst of one (max_requests_per_second), so a client can never
// flood Vault, however often its caller retries. Errors say whether a retry may help
// (IsRetryable) and wrap sentinels (ErrNotFound, ErrPermissionDenied, ErrAuth,
// ErrNotKVv2, ErrNotRenewable).
//
// Secrets never leave through this package's side channels: logs, audit events,
// metrics and error messages carry paths, lease ids, versions and outcomes, never a
// token, secret_id, JWT or secret value; Secret prints and logs without its data. The
// token is held in memory only, unless token_sink asks for a file.
package vault
