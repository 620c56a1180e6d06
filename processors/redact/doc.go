// Package redact removes live secret values from telemetry before it leaves the
// agent.
//
// The secrets syncer registers, per owner (a Vault path, a rendered file), the
// current and the previous value of every secret with Registry.Set, and forgets them
// with Registry.Remove. A value no owner holds any more stays registered for the
// retention (SetRetention: 24h and at most 1000 values by default; the agent sets
// secrets.redact_retention), so a backlog read after several quick rotations is still
// scrubbed. Sink, placed in front of the exporters, replaces every occurrence of a
// registered value in a record's line, request id and metadata names and values with
// Marker; Registry.Redact does the same for any other string (span attributes and
// their keys, events, error event fields, envelope items). Overlapping or touching
// occurrences become a single Marker.
//
// # What is registered
//
// A value shorter than MinValueLen (6) bytes is ignored and counted. Otherwise each
// spelling of the value — as given; without surrounding white space; for a value
// with non-ASCII characters its NFC, NFD, NFKC and NFKD forms and their Unicode upper
// and lower case — is registered in these forms:
//
//   - as is (skipped for a value that is not valid UTF-8, which cannot appear in a
//     record's text);
//   - JSON-escaped, as it appears between the quotes of a JSON string, in the
//     flavours of the common encoders: minimal (only '"', '\\' and control
//     characters), Go's encoding/json (also <, >, & and U+2028/U+2029 as \u escapes),
//     Python's json.dumps and Jackson's ASCII output (non-ASCII as \uXXXX, surrogate
//     pairs above U+FFFF), PHP's json_encode (the same and "/" as "\/"), and ASCII
//     output with HTML escapes;
//   - HTML character references: html.EscapeString's, named (&quot; &apos;), decimal
//     and hexadecimal for the special and non-ASCII characters, and for every
//     character;
//   - URL-encoded: url.QueryEscape (space as '+'), url.PathEscape (space as %20), and
//     every byte as %XX;
//   - base64, in the standard and the URL alphabet: padded, unpadded, and — because
//     a value is often encoded together with other bytes, as in an HTTP basic auth
//     header base64("user:password") — for each of its three possible alignments
//     inside a longer encoding, the run of characters that depend on the value's
//     bytes alone (leaving out the character at each end that mixes in bits of a
//     neighbouring byte);
//   - base32, standard and hex alphabets, unpadded (a prefix of the padded form);
//   - hex, plain and with ':', '-' or ' ' between bytes (MAC-address style, hex
//     dumps, fingerprints).
//
// Every form but base64 is matched without regard to ASCII case: hex digits,
// percent escapes, \u escapes, base32 and HTML references are case-insensitive for
// their decoders, and an application that upper-cases a value still leaks it.
// Identical forms are registered once; a value registered by two owners stays until
// both have dropped it (and then for the retention).
//
// Beyond fixed forms, the matcher finds a registered form with line breaks ("\n",
// "\r\n") anywhere inside it — a value split over two lines of one record, base64
// wrapped every 64 or 76 characters as in MIME and PEM bodies — and a prefix of at
// least 8 bytes of a form at the very end of a text (a line cut at max_line_bytes).
//
// Not covered: other transformations (hashing, encryption, compression, double
// encoding such as JSON in JSON, quoted printable, \x escapes), the rest of a value
// whose beginning ended the previous record, and the stream labels, level, TraceID
// and SpanID of a record (the agent's identity, configured labels and validated hex
// ids).
//
// # The matcher
//
// The log hot path runs Redact on every line, almost always finding nothing, so the
// no-match case decides the cost. The matcher is a q-gram filter with a stride, in
// the manner of Wu-Manber: every pattern is at least minLen bytes, so probing the
// text's 4-byte gram every stride = minLen-3 bytes lands inside every occurrence,
// and indexing each pattern by its grams at offsets 0 to stride-1 finds each
// occurrence exactly once. The stride is 3 to 5, for a shortest pattern of 6 to 12
// bytes, or 10 for 13 bytes or more (the usual Vault secrets: half the probes);
// at stride 10 one more probe, 8 bytes before the end of the text, finds the
// prefixes of 8 to 12 bytes at its end that the grid can miss.
// Grams are folded to ASCII lower case before hashing; the full comparison is exact
// or case-insensitive per pattern. A text holding a line break is searched again
// with its breaks removed, and what is found is mapped back. A probe tests one bit of
// a bitset indexed by the high half of the gram's hash (32 bits per gram: 0.6% of
// the probes of access-log lines with hex trace ids pass with 100 secrets); those
// that pass test two bits of one word of a blocked Bloom filter of the candidates'
// 8-byte keys (16 bits per candidate) with the text's 8 bytes from the probe — many
// probed grams are indexed ones (hex digits, JSON, HTML and percent escapes, the
// beginnings other values share) followed by other bytes; those that pass that look
// up the candidates of that gram, compare the 8 bytes of each pattern kept in its
// index entry, and only then the whole pattern (from its end: candidates often
// share a beginning). MayHold, which finds prefixes ending anywhere, uses a filter
// of the grams instead of the keys'. At strides 5 and 10 the probe loop takes five
// probes at a time and ORs their filter words, with one bounds check and one branch
// per five strides: about 12 instructions per probe. With nothing registered, Redact is one atomic load.
// With values registered, a line without any allocates nothing; a line with one
// allocates its result, or takes it from a block the batch's scrubbed texts share
// (Sink).
//
// Measured per loggen line (~215-byte JSON, 1% of them holding a secret; 2 vCPUs,
// Xeon, other work running; BenchmarkRedact in tools/bench/cmd/benchredact), before
// the encodings of 2026-12 (8.6 patterns per value) were added:
//
//	no value registered                                   2.3 ns
//	10 secrets (84 patterns, stride 5)                 65–80 ns
//	100 secrets (860 patterns, stride 5)               80–95 ns
//	1000 secrets (8,494 patterns, stride 5)          125–155 ns
//	100 secrets of 6 bytes (580 patterns, stride 3)  125–140 ns (the worst case)
//
// The alternatives measured then on the same lines and 860 patterns: a dense
// Aho-Corasick automaton (38,000 states, a 12 MiB transition table over byte
// classes) about 700 ns, one dependent load per byte that misses the cache; the same
// gram filter probed at every byte (a "first bytes" table) about 600 ns.
//
// Timings on this machine vary with what else runs; instruction counts do not.
// callgrind counts them for a Go binary with GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off
// (valgrind 3.19 does not decode RDTSCP and mishandles the preemption signal):
//
//	GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off GOMAXPROCS=1 valgrind --tool=callgrind \
//	  --toggle-collect='*redact.(*Registry).Redact' ./benchredact.test -test.run '^$' \
//	  -test.bench 'BenchmarkRedact/^secrets=100$/^$' -test.benchtime 40960x
//
// On bench-redact's lines (100 secrets: 2,693 patterns, the 14 with non-ASCII letters
// giving half of them; every 100th line holding a secret in one of 32 encodings)
// Redact took 1,294 instructions per line, then 963 with the blocked probe loop and
// candidates compared from the end, 915 with each candidate's 8 bytes in its index
// entry, and 954 with the filter of keys instead of grams. Inside the pipeline the
// instructions are not what counts but the cache misses: the blocked loop left the
// CPU time in redact.Sink where it was (about 250 ns per line, load 8–16), while the
// candidates' 8 bytes, which spare a line holding a secret dozens of cache misses,
// took it to 180–225 ns. A change inside the pipeline is best measured in one run,
// alternating it with the old code batch by batch and adding up each one's thread
// CPU time (runs differ by more than most changes save): reading the filters in
// order before a batch took the sink from 176 to 158 ns per line, not searching a
// request id inside a line that held nothing 176 → 168, and the filter of keys
// 154 → 118; over whole runs (make bench-redact, load 7–11) it went from ~216 to
// ~130 ns per line, about 7% of the whole file → Loki pipeline's ~1.9 µs of CPU per
// line. Most of what is left: the lines arrive from memory (~25 ns per line to read
// them) and the probe loop itself (~55 ns with everything in cache).
//
// # Concurrency
//
// The matcher is immutable. Set and Remove build a new one under a mutex and publish
// it with an atomic pointer; Redact and Sink never wait for a writer, and see either
// the old or the new set of values. A change costs about 0.4 ms with 100 values and
// 6 ms with 1000.
package redact
