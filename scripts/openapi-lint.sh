#!/usr/bin/env bash
# Lints openapi-3.0.yaml and openapi-write-3.0.yaml with Redocly CLI's recommended rules (redocly.yaml),
# from npm at the version pinned here. Errors fail; so does any warning that
# .redocly.lint-ignore.yaml does not waive with a reason. Used by .ci/run and
# the GitHub Actions CI.
set -euo pipefail
cd "$(dirname "$0")/.."
REDOCLY_VERSION=2.77.0
dir=$(mktemp -d /tmp/sensorhub-redocly.XXXXXX)
trap 'rm -rf "$dir"' EXIT
npm install --silent --no-audit --no-fund --prefix "$dir" "@redocly/cli@$REDOCLY_VERSION" >/dev/null
for doc in openapi-3.0.yaml openapi-write-3.0.yaml; do
  out=$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true "$dir/node_modules/.bin/redocly" lint --format=stylish "$doc" 2>&1) ||
    { echo "$out"; exit 1; }
  if grep -qE '^ +[0-9]+:[0-9]+ +warning' <<<"$out"; then
    echo "$out"
    echo "$doc: Redocly warnings not waived in .redocly.lint-ignore.yaml" >&2
    exit 1
  fi
  grep -E 'valid|ignored' <<<"$out" || true
done
