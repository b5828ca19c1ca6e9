#!/usr/bin/env bash
# `make up`: bring sensorhub up on this machine.
#   1. PostgreSQL: $DATABASE_URL if set, else a local cluster in .data/postgres
#      started from the PostgreSQL binaries on PATH (as the postgres user when
#      run as root, since initdb refuses root);
#   2. migrate the schema and ensure the least-privilege login roles;
#   3. load the sample data: the reference dataset beside the checkout
#      (../shared/datasets/sensor-target/data.json) when present, else a
#      generated one (or $SAMPLE_FILE);
#   4. serve the API on :8080 (SENSORHUB_API_ADDR) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .data bin
echo "==> building" >&2
go build -o bin/ ./db/cmd/migrate ./db/cmd/localpg ./services/ingest ./services/api

if [ -z "${DATABASE_URL:-}" ]; then
  echo "==> starting local PostgreSQL in .data/postgres" >&2
  admin_dsn=$(bin/localpg start -dir .data/postgres -db sensorhub)
  # Local trust authentication: the roles need no password here.
  as_user() { sed -E "s#://[^@/]*@#://$1@#" <<<"$admin_dsn"; }
  ingest_dsn=$(as_user sensorhub_ingest)
  api_dsn=$(as_user sensorhub_api)
  export SENSORHUB_API_DB_USER=sensorhub_api SENSORHUB_INGEST_DB_USER=sensorhub_ingest
else
  admin_dsn=$DATABASE_URL
  ingest_dsn=${INGEST_DATABASE_URL:-$DATABASE_URL}
  api_dsn=${API_DATABASE_URL:-$DATABASE_URL}
fi

echo "==> migrating" >&2
DATABASE_URL=$admin_dsn bin/migrate

sample=${SAMPLE_FILE:-../shared/datasets/sensor-target/data.json}
if [ ! -f "$sample" ]; then
  sample=.data/sample.json
  echo "==> reference dataset not found; generating $sample" >&2
  bin/ingest gen -seed 1 -o "$sample"
fi
echo "==> loading $sample" >&2
status=0
DATABASE_URL=$ingest_dsn bin/ingest load -rejects .data/rejects.ndjson "$sample" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
  echo "load failed (exit $status)" >&2
  exit "$status"
fi
# The load leaves its rollups pending (answers stay exact, from the raw
# readings); plain PostgreSQL has no scheduler to materialize them.
DATABASE_URL=$ingest_dsn bin/ingest refresh

# Requests that work with what was loaded: the file's first device and its
# first parameter (the reference dataset and the generated sample share the
# format {"<device>": [{"parameter": "<name>", ...}, ...], ...}).
# The first numeric parameter, so that avg applies; else the first one.
# Bash's own matching: a grep | head pipeline would die of SIGPIPE under
# pipefail once head has its line.
head=$(head -c 65536 "$sample" | tr '\n' ' ')
device="" parameter="" day=2024-03-07
re='"([^"]+)"[[:space:]]*:[[:space:]]*\['
[[ $head =~ $re ]] && device=${BASH_REMATCH[1]}
re='"parameter"[[:space:]]*:[[:space:]]*"([^"]+)"[^}]*"type"[[:space:]]*:[[:space:]]*"numeric"'
if [[ $head =~ $re ]]; then
  parameter=${BASH_REMATCH[1]}
else
  re='"parameter"[[:space:]]*:[[:space:]]*"([^"]+)"'
  [[ $head =~ $re ]] && parameter=${BASH_REMATCH[1]}
fi
re='"timestamp"[[:space:]]*:[[:space:]]*"([0-9]{4}-[0-9]{2}-[0-9]{2})'
[[ $head =~ $re ]] && day=${BASH_REMATCH[1]}
next=$(date -u -d "$day + 1 day" +%F 2>/dev/null || echo "$day")
port=${SENSORHUB_API_ADDR:-:8080}
port=${port##*:}
wport=${INGEST_SERVE_ADDR:-:8081}
wport=${wport##*:}
{
  echo "==> try (device $device, parameter $parameter):"
  echo "  curl -s localhost:$port/v1/devices"
  echo "  curl -s 'localhost:$port/v1/readings?device_id=$device&parameter=$parameter&limit=3'"
  echo "  curl -s 'localhost:$port/v1/aggregates?device_id=$device&parameter=$parameter&from=${day}T00:00:00Z&to=${next}T00:00:00Z&bucket=1h&agg=count,avg'"
  echo "  curl -s 'localhost:$port/api/v1/core/process_request?device_id=$device&limit=2'"
  echo "  open http://localhost:$port/docs"
  echo "  curl -s localhost:$wport/v1/write -H 'Content-Type: application/x-ndjson' --data-binary '{\"device_id\":\"$device\",\"parameter\":\"pushed\",\"timestamp\":\"$(date -u +%FT%TZ)\",\"value\":1}'"
} >&2
# The write service beside the API, stopped with it (Ctrl-C reaches the
# whole process group; the trap covers the API exiting on its own).
echo "==> serving the write API on ${INGEST_SERVE_ADDR:-:8081} (no write keys: development only)" >&2
INGEST_AUTH=${INGEST_AUTH:-off} DATABASE_URL=$ingest_dsn bin/ingest serve &
writer=$!
trap 'kill "$writer" 2>/dev/null || true' EXIT
echo "==> serving the API on ${SENSORHUB_API_ADDR:-:8080} (Ctrl-C stops it; 'make down' stops PostgreSQL)" >&2
# Local development only: no API keys (the API logs a warning saying so).
# Export SENSORHUB_AUTH=on and SENSORHUB_API_KEYS to try authentication.
SENSORHUB_AUTH=${SENSORHUB_AUTH:-off} DATABASE_URL=$api_dsn bin/api
