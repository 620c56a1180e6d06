// Package render turns secrets into the bytes of files and writes those files
// atomically. It knows nothing of Vault: a Fetcher supplies the data (the Syncer in
// package secrets implements it on Vault), so everything here is pure and unit-tested.
//
// # Files
//
// Each FileConfig describes one file, whose content comes from exactly one of:
//
//   - template / template_file: a Go text/template (below);
//   - source: the short form, one Vault path written in a format (below).
//
// Write replaces the file atomically, with mode 0400 unless configured (never
// world-accessible), chown when uid/gid >= 0, and skips the write when the bytes, mode
// and owner are already right. With error_on_missing_key (the default) a reference to a
// missing key fails the render, so the caller keeps the last good file.
//
// # Templates
//
// Templates are Go text/template with these functions:
//
//	secret PATH [k=v ...]   the Vault response for PATH (*Secret): a read, or a write with
//	                        the k=v arguments (consul-template's semantics). Use it in
//	                        {{ with secret "database/creds/app" }}{{ .Data.username }}{{ end }}
//	                        or as a value: {{ (secret "secret/data/app").Data.data.password }}.
//	                        KV v2 data is under .Data.data, KV v1 and dynamic secrets under
//	                        .Data; .LeaseID, .LeaseDuration (seconds) and .Renewable too.
//	pkiCert PATH [k=v ...]  writes to a PKI issue/sign endpoint and returns a *PKICert:
//	                        .Cert from the response's certificate, .Key from private_key,
//	                        .CA from issuing_ca, .CAChain from ca_chain. For example
//	                        {{ with pkiCert "pki/issue/web" "common_name=web.svc" }}{{ .Key }}{{ end }}.
//	base64Encode, base64URLEncode       standard / URL-safe alphabet, padded
//	base64Decode, base64URLDecode       padded or not
//	toJSON, toJSONPretty    JSON without HTML escaping, no trailing newline
//	toYAML                  YAML, no trailing newline
//	env NAME                the agent's environment variable NAME ("" when unset)
//	join SEP LIST, split SEP S, trimSpace S, toUpper S, toLower S,
//	replaceAll OLD NEW S, contains NEEDLE HAYSTACK, default DEF VALUE
//	                        in pipeline order: {{ .Data.hosts | join "," }},
//	                        {{ .Data.url | replaceAll "http:" "https:" }}. contains looks
//	                        for a substring, a list element or a map key; default returns
//	                        DEF for nil, "" and empty lists or maps.
//
// plus text/template's own (printf, index, len, eq …). Functions that take text accept
// any value: strings as they are, nil as "", anything else as compact JSON. An unknown
// function is a parse error naming it.
//
// Within one render each distinct secret PATH/arguments is requested once; a repeated
// {{ secret }} or {{ pkiCert }} with the same arguments gets the same response, so a
// certificate and its key always match. Render returns the requests it made, in order,
// for the caller to watch, renew and re-render on.
//
// With error_on_missing_key on, templates run with missingkey=error: {{ .Data.nope }}
// fails naming the file, the line and the key. For an optional key write
// {{ index .Data "nope" | default "x" }} (index does not fail on a missing key). With it
// off, a missing key prints "<no value>", as in Vault Agent.
//
// Errors never include secret values. text/template's execution errors can print the
// value being evaluated, so they are rebuilt: the file, the line and column, the
// expression (template source), and the reason when it is known to carry only names and
// types; otherwise the reason is withheld. Every string fetched during the render is
// also scrubbed from the message.
//
// # Short forms
//
// source names one Vault path, read with Secret(path, nil). A KV v2 response (data with
// exactly "data" and "metadata", the metadata having a "version") is unwrapped to the
// inner data. Values are written as text the same way everywhere: strings as they are,
// null as "", numbers, booleans, lists and maps as compact JSON.
//
//   - env: one KEY=value line per key, sorted by name. Keys become names matching
//     [A-Za-z_][A-Za-z0-9_]*: any other character becomes '_', a leading digit gets a
//     '_' before it; two keys giving the same name, an empty key and a value holding a
//     NUL byte are errors. Values are written
//     1. bare when made only of [A-Za-z0-9_@%+,./:=-] (or empty);
//     2. else in single quotes, as they are inside, when they hold no single quote and
//     do not end in a backslash;
//     3. else in double quotes, with a backslash before each \, ", $ and `.
//     POSIX sh reads every value back exactly with ". FILE" (run "set -a" first to
//     export them); newlines, tabs, quotes, $, backticks and unicode included.
//     docker compose's env_file takes single-quoted values literally too, so it reads
//     back every value of forms 1 and 2; of form 3 it reads \\, \" and \$ as sh does,
//     but recent versions keep the backslash of \` and none reads a value ending in a
//     backslash. `docker run --env-file` does not parse quotes at all: it reads form 1
//     only (and keeps the quotes of the others); give it bare values or use a template.
//   - json: a JSON object, keys sorted, two-space indentation, no HTML escaping,
//     trailing newline.
//   - yaml: a YAML mapping, keys sorted, two-space indentation.
//   - properties: key=value lines sorted by key, escaped as
//     java.util.Properties.store(OutputStream) does: \ = : # ! escaped with a backslash,
//     tab, newline, carriage return and form feed as \t \n \r \f, spaces escaped in keys
//     and at the start of a value, every other character outside printable ASCII as
//     \uXXXX (UTF-16), so Properties.load reads it back exactly whatever its charset.
//   - raw: the value of key only, with no newline added. With error_on_missing_key off, a
//     missing key gives an empty file.
package render
