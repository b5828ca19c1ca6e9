#!/usr/bin/env bash
# Ingest benchmark (not a test): loads a generated 10M-reading dataset in the
# reference format with `ingest load`, then — in the same run, on the same
# cluster — loads exactly the same readings with `psql \copy` from CSV into the
# same table and indexes, and prints rows/s of both, their ratio and ingest's
# peak RSS.
#
# The job also refreshes the rollups (on plain PostgreSQL, ~0.7 rollup rows per
# reading at one reading a minute), which the readings-only \copy does not
# do. So the run also times `psql \copy` of the very rollup rows the job
# computed, and compares the whole job with \copy of readings + rollups: the
# same final database, loaded as fast as PostgreSQL loads a CSV.
#
#   bench/ingest.sh                 # 10M readings (20 devices x 50 params x 10,000 points)
#   POINTS=1000 bench/ingest.sh     # 1M, for a quick look
#
# Needs: Go, the PostgreSQL server binaries (initdb, pg_ctl) and psql on PATH,
# /usr/bin/time. Everything it writes stays under bench/out/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${DEVICES:-20}
PARAMS=${PARAMS:-50}
POINTS=${POINTS:-10000}
WORKERS=${WORKERS:-2}
out=bench/out
mkdir -p "$out"
N=$((DEVICES * PARAMS * POINTS))

echo "building" >&2
go build -o "$out/ingest" ./services/ingest
go build -o "$out/migrate" ./db/cmd/migrate
go build -o "$out/localpg" ./db/cmd/localpg

data="$out/readings-$N.json"
if [ ! -s "$data" ]; then
  echo "generating $N readings into $data" >&2
  "$out/ingest" gen -seed 1 -devices "$DEVICES" -params "$PARAMS" -points "$POINTS" -interval 1m \
    -text-share 0.3 -start 2024-01-01T00:00:00.000001+02:00 -format reference -o "$data"
fi

dsn=$("$out/localpg" start -dir "$out/pg" -port 0 -db postgres)
# db NAME: the cluster's DSN with another database name.
db() { sed -E "s#/[^/?]+(\?|$)#/$1\1#" <<<"$dsn"; }
trap '"$out/localpg" stop -dir "$out/pg" >/dev/null 2>&1 || true' EXIT

for d in bench_ingest bench_copy; do
  psql -q "$dsn" -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d"
  "$out/migrate" -database-url "$(db $d)" 2>/dev/null
done

echo "ingest load ($WORKERS workers)" >&2
/usr/bin/time -f '%e %M' -o "$out/ingest.time" \
  "$out/ingest" load -database-url "$(db bench_ingest)" -workers "$WORKERS" -log-format json -rejects "$out/rejects.ndjson" "$data" \
  >"$out/ingest.summary" 2>"$out/ingest.log"
read -r ingest_wall ingest_rss_kb <"$out/ingest.time"
# The load phase alone (parse + COPY + catalog), from the job's own log line.
load_ns=$(grep '"msg":"file loaded"' "$out/ingest.log" | sed -E 's/.*"duration":([0-9]+).*/\1/')
inserted=$(grep '"msg":"ingest finished"' "$out/ingest.log" | sed -E 's/.*"inserted":([0-9]+).*/\1/')
[ "$inserted" = "$N" ] || { echo "ingest inserted $inserted of $N readings" >&2; exit 1; }

echo "exporting the same readings as CSV" >&2
psql -q "$(db bench_ingest)" -c "\\copy (SELECT series_id, time, utc_offset_min, value_num, value_text FROM sensorhub.readings) TO '$out/readings.csv' CSV"
psql -q "$(db bench_ingest)" -c "\\copy (SELECT series_id, device_id, parameter, value_type FROM sensorhub.series) TO '$out/series.csv' CSV"
for w in 1m 1h 1d; do
  psql -q "$(db bench_ingest)" -c "\\copy sensorhub.rollup_$w TO '$out/rollup_$w.csv' CSV"
done
range=$(psql -qAt "$(db bench_ingest)" -c "SELECT min(time), max(time) FROM sensorhub.readings" | tr '|' ' ')
read -r lo_d lo_t hi_d hi_t <<<"$range"

# Same catalog and partitions in the copy database, so \copy meets the same
# table, partitions and primary key index as ingest did.
psql -q "$(db bench_copy)" -c "\\copy sensorhub.series (series_id, device_id, parameter, value_type) FROM '$out/series.csv' CSV" \
  -c "SELECT sensorhub.ensure_partitions(ARRAY(SELECT generate_series(timestamptz '$lo_d $lo_t', timestamptz '$hi_d $hi_t', interval '1 day')) || timestamptz '$hi_d $hi_t')" >/dev/null

echo "psql \\copy" >&2
copy_start=$(date +%s.%N)
psql -q "$(db bench_copy)" -c "\\copy sensorhub.readings FROM '$out/readings.csv' CSV"
copy_end=$(date +%s.%N)
rollup_start=$(date +%s.%N)
for w in 1m 1h 1d; do
  psql -q "$(db bench_copy)" -c "\\copy sensorhub.rollup_$w FROM '$out/rollup_$w.csv' CSV"
done
rollup_end=$(date +%s.%N)
rollup_rows=$(psql -qAt "$(db bench_copy)" -c "SELECT (SELECT count(*) FROM sensorhub.rollup_1m) + (SELECT count(*) FROM sensorhub.rollup_1h) + (SELECT count(*) FROM sensorhub.rollup_1d)")
copied=$(psql -qAt "$(db bench_copy)" -c "SELECT count(*) FROM sensorhub.readings")
[ "$copied" = "$N" ] || { echo "psql copied $copied of $N readings" >&2; exit 1; }

awk -v n="$N" -v load_ns="$load_ns" -v wall="$ingest_wall" -v rss="$ingest_rss_kb" -v cs="$copy_start" -v ce="$copy_end" \
    -v rs="$rollup_start" -v re="$rollup_end" -v rn="$rollup_rows" 'BEGIN {
  load_s = load_ns / 1e9; copy_s = ce - cs; rollup_s = re - rs; state_s = copy_s + rollup_s
  printf "readings                     %d\n", n
  printf "psql \\copy (baseline)        %8.1f s  %10.0f rows/s\n", copy_s, n / copy_s
  printf "ingest load phase            %8.1f s  %10.0f rows/s  ratio %.2fx\n", load_s, n / load_s, copy_s / load_s
  printf "ingest whole run (+rollups)  %8.1f s  %10.0f rows/s  ratio %.2fx\n", wall, n / wall, copy_s / wall
  printf "psql \\copy of its %d rollup rows %5.1f s\n", rn, rollup_s
  printf "psql \\copy readings + rollups %7.1f s  %10.0f rows/s\n", state_s, n / state_s
  printf "ingest whole run vs that      %7s    %10s         ratio %.2fx\n", "", "", state_s / wall
  printf "ingest peak RSS              %8.1f MB\n", rss / 1024
}'
