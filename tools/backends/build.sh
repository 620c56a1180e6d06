#!/usr/bin/env bash
# Builds the pinned real backends the integration tests and benchmarks run against,
# once per machine, into a cache outside the clone. Skips what is already cached.
#
#   tools/backends/build.sh            # everything the tests need (loki vault postgres jaeger etcd kube-apiserver prometheus)
#   tools/backends/build.sh loki       # one backend
#
# The cache is ${OUTRIDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outrider}/bin/NAME-VERSION.
set -euo pipefail

LOKI_VERSION=v3.7.8
OTELCOL_VERSION=v0.160.0
# Vault v1.21.0 matches the published api/sdk modules it requires; later patch
# releases carry an in-tree sdk that matches no published version.
VAULT_VERSION=v1.21.0
# Jaeger's v1.x module tags carry the 2.x releases; Jaeger v2 ingests OTLP through the
# same collector receiver as Tempo, which the module proxy refuses.
JAEGER_VERSION=v1.76.0
# kube-apiserver and etcd (the injector's end-to-end tests) are built from the tools
# modules in tools/backends/kube and tools/backends/kube/etcd, whose go.mod/go.sum pin
# them; these versions must match those files. etcd is a go build rather than Debian's
# etcd-server so that the version does not drift with the apt archive.
KUBE_VERSION=v1.31.4
ETCD_VERSION=v3.5.17
# Prometheus (the OTLP metrics exporter's backend) from its module tag v0.316.0, which is
# Prometheus 3.16.0; without the builtinassets tag the web UI is not embedded, so no npm,
# and remove_all_sd leaves out every service discovery (the cloud SDKs are most of a
# full build; the tests push over OTLP and scrape nothing). Its module carries a
# go.work for its own sub-modules, hence GOWORK=off.
PROMETHEUS_VERSION=v0.316.0

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

build_vault() {
	local out=$bin/vault-$VAULT_VERSION
	if [ -x "$out" ]; then log "vault $VAULT_VERSION cached at $out"; return; fi
	log "vault $VAULT_VERSION: building (cold build takes ~15-25 min on 2 cores)"
	local dir=$src/vault-$VAULT_VERSION
	copy_module github.com/hashicorp/vault "$VAULT_VERSION" "$dir"
	(cd "$dir" && go mod edit \
		-dropreplace github.com/hashicorp/vault/api \
		-dropreplace github.com/hashicorp/vault/api/auth/approle \
		-dropreplace github.com/hashicorp/vault/api/auth/kubernetes \
		-dropreplace github.com/hashicorp/vault/api/auth/userpass \
		-dropreplace github.com/hashicorp/vault/sdk &&
		go build -mod=mod -trimpath -ldflags "-s -w" -o "$out.tmp" .)
	mv "$out.tmp" "$out"
	rm -rf "$dir"
	log "vault $VAULT_VERSION: built $out"
}

build_jaeger() {
	local out=$bin/jaeger-$JAEGER_VERSION
	if [ -x "$out" ]; then log "jaeger $JAEGER_VERSION cached at $out"; return; fi
	log "jaeger $JAEGER_VERSION: building (cold build takes ~10-15 min on 2 cores)"
	local dir=$src/jaeger-$JAEGER_VERSION
	copy_module github.com/jaegertracing/jaeger "$JAEGER_VERSION" "$dir"
	(cd "$dir" && go build -mod=mod -trimpath -ldflags "-s -w" -o "$out.tmp" ./cmd/jaeger)
	mv "$out.tmp" "$out"
	rm -rf "$dir"
	log "jaeger $JAEGER_VERSION: built $out"
}

build_kube_apiserver() {
	local out=$bin/kube-apiserver-$KUBE_VERSION
	if [ -x "$out" ]; then log "kube-apiserver $KUBE_VERSION cached at $out"; return; fi
	log "kube-apiserver $KUBE_VERSION: building (3 min with a warm Go build cache, up to ~20 min cold, on 2 cores)"
	# The version stamps are what hack/lib/version.sh sets; without them /version
	# answers v0.0.0-master and clients cannot tell which features the server has.
	local pkg=k8s.io/component-base/version
	local ld="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1"
	ld="$ld -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean"
	(cd "$here/kube" && go build -trimpath -ldflags "$ld" -o "$out.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
	mv "$out.tmp" "$out"
	log "kube-apiserver $KUBE_VERSION: built $out"
}

build_etcd() {
	local out=$bin/etcd-$ETCD_VERSION
	if [ -x "$out" ]; then log "etcd $ETCD_VERSION cached at $out"; return; fi
	log "etcd $ETCD_VERSION: building (~1-4 min on 2 cores)"
	(cd "$here/kube/etcd" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" go.etcd.io/etcd/server/v3)
	mv "$out.tmp" "$out"
	log "etcd $ETCD_VERSION: built $out"
}

build_prometheus() {
	local out=$bin/prometheus-$PROMETHEUS_VERSION
	if [ -x "$out" ]; then log "prometheus $PROMETHEUS_VERSION cached at $out"; return; fi
	log "prometheus $PROMETHEUS_VERSION: building (cold build takes ~10 min on 2 cores)"
	local dir=$src/prometheus-$PROMETHEUS_VERSION
	copy_module github.com/prometheus/prometheus "$PROMETHEUS_VERSION" "$dir"
	local pkg=github.com/prometheus/common/version
	(cd "$dir" && GOWORK=off go build -mod=mod -trimpath -tags remove_all_sd \
		-ldflags "-s -w -X $pkg.Version=$(cat VERSION) -X $pkg.Branch=HEAD -X $pkg.Revision=$PROMETHEUS_VERSION" \
		-o "$out.tmp" ./cmd/prometheus)
	mv "$out.tmp" "$out"
	rm -rf "$dir"
	log "prometheus $PROMETHEUS_VERSION: built $out"
}

# postgres installs Debian's PostgreSQL server (Vault's database secrets engine needs a
# real database); the tests run it as the postgres user on 127.0.0.1.
build_postgres() {
	if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
		log "postgresql installed: $(ls -d /usr/lib/postgresql/*/bin | head -n1)"
		return
	fi
	log "postgresql: installing Debian's package"
	if [ "$(id -u)" -ne 0 ]; then
		echo "PostgreSQL is missing and installing it needs root: run 'sudo apt-get install -y postgresql'" >&2
		return 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	log "postgresql: installed $(ls -d /usr/lib/postgresql/*/bin | head -n1)"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(loki vault postgres jaeger etcd kube-apiserver prometheus)
for b in "${want[@]}"; do
	case $b in
	loki) build_loki ;;
	vault) build_vault ;;
	postgres) build_postgres ;;
	otelcol) build_otelcol ;;
	jaeger) build_jaeger ;;
	etcd) build_etcd ;;
	kube-apiserver) build_kube_apiserver ;;
	prometheus) build_prometheus ;;
	*) echo "unknown backend $b (known: loki vault postgres jaeger etcd kube-apiserver prometheus otelcol)" >&2; exit 2 ;;
	esac
done
log "done: $(ls "$bin" | tr '\n' ' ')"
