#!/usr/bin/env bash
# Builds the pinned real backends the integration tests and benchmarks run against,
# once per machine, into a cache outside the clone. Skips what is already cached.
#
#   tools/backends/build.sh            # everything the tests need
#   tools/backends/build.sh loki       # one backend
#
# The cache is ${OUTRIDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outrider}/bin/NAME-VERSION.
set -euo pipefail

LOKI_VERSION=v3.7.8
OTELCOL_VERSION=v0.160.0

here=$(cd "$(dirname "$0")" && pwd)
cache=${OUTRIDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outrider}
bin=$cache/bin
src=$cache/src
mkdir -p "$bin" "$src"

log() { printf '[backends %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# copy_module MODULE VERSION DIR: a writable copy of a module's source from the proxy.
copy_module() {
	local mod=$1 ver=$2 dir=$3 from
	from=$(go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$from" ] || { echo "go mod download $mod@$ver gave no Dir" >&2; return 1; }
	rm -rf "$dir"; mkdir -p "$dir"
	cp -r "$from/." "$dir"
	chmod -R u+w "$dir"
}

build_loki() {
	local out=$bin/loki-$LOKI_VERSION
	if [ -x "$out" ]; then log "loki $LOKI_VERSION cached at $out"; return; fi
	log "loki $LOKI_VERSION: building (cold build takes ~15 min on 2 cores)"
	local dir=$src/loki-$LOKI_VERSION
	copy_module github.com/grafana/loki/v3 "$LOKI_VERSION" "$dir"
	(cd "$dir" && go mod edit -dropreplace github.com/grafana/loki/pkg/push &&
		go build -mod=mod -trimpath -ldflags "-s -w" -o "$out.tmp" ./cmd/loki)
	mv "$out.tmp" "$out"
	rm -rf "$dir"
	log "loki $LOKI_VERSION: built $out"
}

build_otelcol() {
	local out=$bin/otelcol-$OTELCOL_VERSION
	if [ -x "$out" ]; then log "otelcol $OTELCOL_VERSION cached at $out"; return; fi
	log "otelcol $OTELCOL_VERSION: building with the official builder (~5 min)"
	GOBIN=$bin go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_VERSION"
	mv "$bin/builder" "$bin/ocb-$OTELCOL_VERSION"
	local dir=$src/otelcol-$OTELCOL_VERSION
	rm -rf "$dir"; mkdir -p "$dir"
	sed "s|@OUT@|$dir/out|" "$here/otelcol-builder.yaml" >"$dir/manifest.yaml"
	"$bin/ocb-$OTELCOL_VERSION" --config "$dir/manifest.yaml"
	mv "$dir/out/otelcol-bench" "$out"
	rm -rf "$dir"
	log "otelcol $OTELCOL_VERSION: built $out"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(loki otelcol)
for b in "${want[@]}"; do
	case $b in
	loki) build_loki ;;
	otelcol) build_otelcol ;;
	*) echo "unknown backend $b (known: loki otelcol)" >&2; exit 2 ;;
	esac
done
log "done: $(ls "$bin" | tr '\n' ' ')"
