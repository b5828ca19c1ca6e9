#!/usr/bin/env bash
# Runs every Go fuzz target of the project for a short time each ($1, default 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-5s}
status=0
for pkg in $(go list ./db/... ./services/ingest/... ./services/api/...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "==> $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" || status=1
  done
done
exit $status
