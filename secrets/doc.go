// Package secrets keeps the application's secret files correct: the Syncer logs in
// to Vault, renders every configured file (package render) from the secrets its
// template or short form names, writes it atomically, and then keeps it fresh —
// polling KV secrets, renewing and rotating leases, re-issuing certificates — telling
// the application to reload (package reload) whenever a file changes. It registers
// every live secret value with the log scrubber (Redactor) and reports everything it
// does as audit events, never with a value.
//
// # Dependencies
//
// Each distinct (path, arguments) a template asks for is a dependency, fetched once
// and shared by every file that uses it (so two files rendering the same database
// credentials get the same user): a read when there are no arguments, a write with
// the key=value arguments otherwise (pki/issue/ROLE). What keeps a dependency fresh
// depends on what Vault answered:
//
//   - KV v2: every poll_interval, one metadata request (Client.KVVersion); a new
//     version is read and its dependent files re-rendered. When the token may read
//     the secret but not its metadata, it is polled by reading it instead (also one
//     request per interval).
//   - KV v1 and every other answer without a lease (a read): re-read every
//     poll_interval and compared; a difference re-renders the dependents.
//   - A renewable lease (database credentials): renewed at about two thirds of its
//     TTL, asking for the lease's original duration again. When Vault grants less
//     than asked, the lease has reached its max TTL and will end for good: it is
//     rotated at once, leaving the whole remaining TTL for the switch.
//   - A lease Vault will not renew (PKI with generate_lease): rotated at about two
//     thirds of its TTL.
//   - A certificate issued by a write without a lease: re-issued at about two thirds
//     of its validity (from issue, or NotBefore if later, to NotAfter).
//   - Any other write: issued once.
//
// # Rotation without a credential gap
//
// A rotation fetches new credentials (a new lease), renders every dependent file and
// notifies their reloaders. The old lease is revoked only after every one of those
// reloads succeeded and revoke_grace has passed since, so the application never holds
// credentials that no longer work. When a dependent file cannot be rendered, or the
// application does not reload, the old lease is not revoked (it expires on its own):
// an audit event and a log line say so. Leases are not revoked when the Syncer stops
// either; the files keep working credentials until their leases end.
//
// Vault also revokes every lease a token created when that token ends. The Vault
// client logs in again before its token's max TTL (and when renewal fails or Vault
// rejects the token); as soon as it has a new token, every lease fetched with an
// older one is rotated as above, while the previous token still lives, instead of at
// its next renewal, after Vault has already dropped the credentials.
//
// # Vault unreachable
//
// Files keep their last good content. Each dependency is retried with full-jitter
// exponential backoff (retry.initial_interval to retry.max_interval, and never longer
// than poll_interval, so everything is fresh again within one interval after Vault
// returns); the Vault client's request-rate cap holds whatever the backoff says.
// Ready reports true once every file has been rendered, and stays true.
//
// # Scrubbing
//
// For every dependency, the string values of its data (of a KV v2 secret, its keys'
// values) of at least 6 bytes — and each line of at least 16 bytes of a multi-line
// value such as a PEM private key — are registered with the Redactor under the
// dependency's key, with the previous values kept until the next change (the
// application may still use them). Public PEM certificates are not registered.
// Values are removed when no file uses the dependency any more.
package secrets
