#!/usr/bin/env bash
# Replaces the vendored Stoplight Elements with another version from npm:
#
#   services/api/internal/docsui/update.sh 9.0.25
#
# It copies only what /docs serves (the web component bundle and its
# stylesheet) and the licenses, and records the version. Then run
# `go test ./services/api/internal/docsui/` (a headless Chromium renders
# /docs with outside requests refused) and commit the result.
set -euo pipefail
version=${1:?usage: update.sh VERSION (an @stoplight/elements release on npm)}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@stoplight/elements@$version" >/dev/null && tar xzf ./*.tgz)
for f in web-components.min.js styles.min.css LICENSE web-components.min.js.LICENSE.txt; do
  cp "$tmp/package/$f" "$here/elements/$f"
done
echo "$version" >"$here/elements/VERSION"
echo "Stoplight Elements $version vendored into $here/elements" >&2
