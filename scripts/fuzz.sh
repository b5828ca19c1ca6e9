#!/usr/bin/env bash
# Runs every Go fuzz target of the project for a short time each ($1, default 5s).
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" failure at the -fuzztime boundary, writing no
# failing input (golang/go#75804, fixed in Go 1.27). Such a run is reported
# as that race and does not fail the pass; any run that writes a failing
# input, or fails in any other way, does.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-5s}
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./db/... ./services/ingest/... ./services/api/...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "==> $pkg $target ($fuzztime)"
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" = 0 ]; then
      continue
    fi
    if grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log" &&
      [ "$(grep -c -- '--- FAIL' "$log")" = 1 ]; then
      echo "==> $target: stopped by Go's fuzz-coordinator deadline race (golang/go#75804), no failing input; not a finding"
      continue
    fi
    status=1
  done
done
exit $status
