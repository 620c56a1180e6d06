#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (make fuzz), stopping at the
# first one that finds a failing input (written to the package's testdata/fuzz/).
#
#   tools/fuzz/run.sh                 # every target, 10s each
#   FUZZTIME=1m tools/fuzz/run.sh     # longer
#
# Go 1.26's fuzzing coordinator can end a target that found nothing with "context
# deadline exceeded" when -fuzztime runs out while a worker is mid-input
# (go.dev/issue/75804, fixed in Go 1.27). Such a run writes no failing input; it is
# reported and counted as passed. Any other failure stops the run.
set -euo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

count() { { find "$1" -maxdepth 1 -type f 2>/dev/null || true; } | wc -l; }

targets=0 races=0
while read -r pkg dir; do
	for f in $($GO test -list '^Fuzz' "$pkg" </dev/null | grep '^Fuzz' || true); do
		echo "== $pkg $f"
		targets=$((targets + 1))
		corpus="$dir/testdata/fuzz/$f"
		before=$(count "$corpus")
		if $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" "$pkg" </dev/null 2>&1 | tee "$out"; then
			continue
		fi
		if [ "$(count "$corpus")" = "$before" ] && grep -q '^    context deadline exceeded$' "$out"; then
			echo "== $f: stopped by Go's fuzzing coordinator at the end of -fuzztime (go.dev/issue/75804); no failing input, counted as passed"
			races=$((races + 1))
			continue
		fi
		echo "== $f failed (above); a failing input it found is in $corpus, and go test -run '^$f\$' $pkg replays it" >&2
		exit 1
	done
done < <($GO list -f '{{.ImportPath}} {{.Dir}}' ./...)
echo "== $targets fuzz targets passed, $FUZZTIME each ($races ended by the coordinator's race)"
