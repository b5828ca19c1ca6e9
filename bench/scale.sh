#!/usr/bin/env bash
# Growth benchmark (not a test): loads datasets of one shape at 1M, 10M and
# 100M readings (more series and more time: 100 parameters a device, one
# reading every 10 minutes), each into a fresh database of one cluster, and
# reports for each size
#   - ingest: `ingest load` rows/s until it exits (its readings committed),
#     and with `ingest refresh` (the rollups materialized) after it;
#   - on TimescaleDB, the compression policy's run over the loaded chunks;
#   - disk bytes per reading: readings (table, indexes), rollups, all of it,
#     on TimescaleDB before and after compression;
#   - p50 and p99 latency of one client repeating each API request for
#     DURATION, response cache off (every request runs its SQL):
#     /v1/aggregates 7 d x 1 h, 90 d x 1 d and 1 d x 1 m; /v1/readings 1,000
#     rows at a series' start, middle and end; /v1/latest, /v1/series for a
#     device; /v1/devices; process_request for a device;
# and the issue 13 targets: every API p50 at the largest size within 1.5x
# of the smallest, and ingest rows/s at the largest >= 0.8x the middle one.
#
#   bench/scale.sh                          # 1M, 10M and 100M, plain PostgreSQL (100M: about 15 min, 25 GB)
#   SIZES="1 10" bench/scale.sh             # 1M and 10M only
#   FLAVOR=timescaledb bench/scale.sh       # sensorhub's TimescaleDB schema (bench/flavor.sh)
#
# Settings, from the environment:
#   SIZES      millions of readings, of 1, 10 and 100 (1 10 100); the shapes are
#              1: 4 devices x 100 x 2,500 points (17 days); 10: 16 x 100 x 6,250 (43 days);
#              100: 64 x 100 x 15,625 (108 days): 4x the series and 2.5x the time a step
#   FLAVOR     postgres or timescaledb (postgres)
#   DURATION   length of each latency run, whole seconds (3s)
#   KEEP=1     keep each size's database (bench_scale_<size>m); by default it is
#              dropped once measured, and the generated input file too
#
# The input is generated with `ingest gen` into bench/out (the reference format,
# about 110 bytes a reading: 11 GB at 100M, removed after its load unless
# KEEP=1); the generation is not timed. TimescaleDB's background jobs are
# paused in the bench databases (as in bench/ingest.sh), so that refresh and
# compression run when this script runs them. Needs: Go, the PostgreSQL 15
# binaries (or $SENSORHUB_PG_BINDIR), psql, wrk, curl, jq. Results in
# bench/out/scale-$FLAVOR.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "scale.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

FLAVOR=${FLAVOR:-postgres}
SIZES=${SIZES:-1 10 100}
DURATION=${DURATION:-3s}
KEEP=${KEEP:-0}
out=bench/out
say() { echo "scale.sh: $*" >&2; }
die() { say "$*"; exit 1; }
secs=${DURATION%s}
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds such as 3s, not $DURATION"
for s in $SIZES; do
  case $s in 1 | 10 | 100) ;; *) die "SIZES holds $s: sizes are 1, 10 and 100 (millions)" ;; esac
done
command -v initdb >/dev/null 2>&1 || PATH=/usr/lib/postgresql/15/bin:$PATH
for tool in go psql wrk curl jq; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install wrk jq curl postgresql-15)"
done
mkdir -p "$out" && chmod 755 "$out"

# shellcheck source=bench/flavor.sh
. bench/flavor.sh

say "building"
go build -o "$out/ingest" ./services/ingest
go build -o "$out/migrate" ./db/cmd/migrate
go build -o "$out/localpg" ./db/cmd/localpg
go build -o "$out/api" ./services/api

pgdir=$out/cluster-$FLAVOR
dsn=$("$out/localpg" start -dir "$pgdir" -port 0 -db postgres)
api_pid=
stop_api() {
  if [ -n "$api_pid" ]; then
    kill -TERM "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    api_pid=
  fi
}
trap 'stop_api; "$out/localpg" stop -dir "$pgdir" >/dev/null 2>&1 || true' EXIT
db() { sed -E "s#/[^/?]+(\?|$)#/$1\1#" <<<"$dsn"; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
qv() { q -At "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
if [ "$FLAVOR" = timescaledb ]; then
  [ "$(qv "$dsn" -c "SELECT current_setting('shared_preload_libraries') LIKE '%timescaledb%'")" = t ] ||
    die "the cluster in $pgdir does not preload TimescaleDB; stop it ($out/localpg stop -dir $pgdir) or set SENSORHUB_PG_BINDIR"
fi

declare -A R

# sizes NAME PREFIX: bytes of the readings table (and its indexes) and of the
# rollups, into R[PREFIX.*].
sizes() {
  local name=$1 p=$2
  if [ "$FLAVOR" = timescaledb ]; then
    read -r R["$p.rd_table"] R["$p.rd_index"] < <(qv -F' ' "$(db "$name")" -c "
      SELECT table_bytes + toast_bytes, index_bytes FROM hypertable_detailed_size('sensorhub.readings')")
    R[$p.rollups]=$(qv "$(db "$name")" -c "
      SELECT coalesce(sum(hypertable_size(format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)::regclass)), 0)
      FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'sensorhub'")
  else
    read -r R["$p.rd_table"] R["$p.rd_index"] < <(qv -F' ' "$(db "$name")" -c "
      SELECT sum(pg_table_size(relid)), sum(pg_indexes_size(relid)) FROM pg_partition_tree('sensorhub.readings')")
    R[$p.rollups]=$(qv "$(db "$name")" -c "
      SELECT sum(pg_total_relation_size(relid)) FROM (
        SELECT t::regclass AS relid FROM unnest(ARRAY['sensorhub.rollup_1m', 'sensorhub.rollup_1h', 'sensorhub.rollup_1d']) t
        UNION SELECT p.relid FROM unnest(ARRAY['sensorhub.rollup_1m', 'sensorhub.rollup_1h', 'sensorhub.rollup_1d']) t,
          LATERAL pg_partition_tree(t::regclass) p) r")
  fi
  R[$p.db]=$(qv "$(db "$name")" -c "SELECT pg_database_size(current_database())")
}

# latency KEY PATH: one client repeating PATH for DURATION; p50/p99 in ms.
latency() {
  local key=$1 path=$2 line code
  code=$(curl -sS -o "$out/scale-check.json" -w '%{http_code}' "$base$path")
  [ "$code" = 200 ] || { head -c 400 "$out/scale-check.json" >&2; die "GET $path answered $code"; }
  R[$size.$key.bytes]=$(stat -c %s "$out/scale-check.json")
  echo "$path" >"$out/scale-path.txt"
  line=$(wrk -t1 -c1 -d"${secs}s" --timeout 60s -s bench/api-wrk.lua "$base" -- "$out/scale-path.txt" | grep '^WRK ') ||
    die "wrk $path: no summary"
  local requests duration_us bytes p50_us p99_us mean_us max_us err_connect err_read err_write err_status err_timeout
  eval "$(sed 's/^WRK //; s/ /\n/g' <<<"$line")"
  [ $((err_connect + err_read + err_write + err_status + err_timeout)) = 0 ] || die "wrk $path: errors: $line"
  R[$size.$key.p50]=$(awk -v x="$p50_us" 'BEGIN {printf "%.2f", x / 1000}')
  R[$size.$key.p99]=$(awk -v x="$p99_us" 'BEGIN {printf "%.2f", x / 1000}')
  R[$size.$key.n]=$requests
}

endpoints=(agg7d1h agg90d1d agg1d1m rd_start rd_middle rd_end latest series devices legacy)
declare -A label=(
  [agg7d1h]="/v1/aggregates 7 d x 1 h" [agg90d1d]="/v1/aggregates 90 d x 1 d" [agg1d1m]="/v1/aggregates 1 d x 1 m"
  [rd_start]="/v1/readings 1,000 at start" [rd_middle]="/v1/readings 1,000 in the middle" [rd_end]="/v1/readings 1,000 at the end"
  [latest]="/v1/latest of a device" [series]="/v1/series of a device" [devices]="/v1/devices" [legacy]="process_request of a device"
)

START=2024-01-01T00:00:00Z
for size in $SIZES; do
  case $size in
  1) devices=4 points=2500 ;;
  10) devices=16 points=6250 ;;
  100) devices=64 points=15625 ;;
  esac
  n=$((devices * 100 * points))
  name=bench_scale_${size}m
  file=$out/scale-${devices}x100x${points}.json
  if [ ! -s "$file" ]; then
    say "${size}M: generating $n readings into $file"
    "$out/ingest" gen -seed 1 -devices "$devices" -params 100 -points "$points" -interval 10m -text-share 0.3 \
      -start "$START" -format reference -o "$file.tmp"
    mv "$file.tmp" "$file"
  fi
  say "${size}M: database $name"
  q "$dsn" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
  SENSORHUB_API_DB_USER=bench_scale_reader "$out/migrate" -database-url "$(db "$name")" -flavor "$FLAVOR" \
    >"$out/scale-migrate.log" 2>&1 || { tail "$out/scale-migrate.log" >&2; die "migrate failed"; }
  if [ "$FLAVOR" = timescaledb ]; then
    qv "$(db "$name")" -c "SELECT count(*) FROM timescaledb_information.jobs j, LATERAL alter_job(j.job_id, scheduled => false) WHERE j.job_id >= 1000" >/dev/null
  fi
  q "$dsn" -c CHECKPOINT
  say "${size}M: ingest load"
  t0=$(now)
  "$out/ingest" load -database-url "$(db "$name")" -workers 2 -log-format json "$file" \
    >"$out/scale-load-${size}m.summary" 2>"$out/scale-load-${size}m.log" ||
    { tail -5 "$out/scale-load-${size}m.log" >&2; die "ingest load failed"; }
  R[$size.load_s]=$(since "$t0")
  t1=$(now)
  "$out/ingest" refresh -database-url "$(db "$name")" -log-format json >/dev/null 2>"$out/scale-refresh-${size}m.log" ||
    { tail -5 "$out/scale-refresh-${size}m.log" >&2; die "ingest refresh failed"; }
  R[$size.refresh_s]=$(since "$t1")
  have=$(qv "$(db "$name")" -c "SELECT sum(reading_count) FROM sensorhub.series")
  [ "$have" = "$n" ] || die "${size}M: the catalog counts $have readings, not $n"
  [ "$KEEP" = 1 ] || rm -f "$file"
  q "$(db "$name")" -c "VACUUM ANALYZE"
  sizes "$name" "$size.raw"
  if [ "$FLAVOR" = timescaledb ]; then
    say "${size}M: the compression policy"
    job=$(qv "$(db "$name")" -c "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression' AND hypertable_name = 'readings'")
    [ -n "$job" ] || die "no compression policy on sensorhub.readings"
    t2=$(now)
    q "$(db "$name")" -c "CALL run_job($job)"
    R[$size.compress_s]=$(since "$t2")
    R[$size.chunks]=$(qv "$(db "$name")" -c "SELECT count(*) FILTER (WHERE is_compressed) || ' of ' || count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'")
    q "$(db "$name")" -c "VACUUM ANALYZE"
    sizes "$name" "$size.packed"
  fi

  # The requests: a numeric series of the first device, the middle of its days.
  read -r dev param firstep last < <(qv -F' ' "$(db "$name")" -c "
    SELECT device_id, parameter, floor(extract(epoch FROM first_time))::bigint, extract(epoch FROM last_time)::bigint
    FROM sensorhub.series WHERE value_type = 'numeric' ORDER BY device_id, parameter LIMIT 1")
  iso() { qv "$dsn" -c "SELECT to_char(to_timestamp($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"; }
  s="device_id=$(jq -rn --arg v "$dev" '$v|@uri')&parameter=$(jq -rn --arg v "$param" '$v|@uri')"
  d="device_id=$(jq -rn --arg v "$dev" '$v|@uri')"
  mid=$(((firstep + last) / 2 / 3600 * 3600))
  [ "$mid" -le $((last - 999 * 600)) ] || die "the series is too short for a page of 1,000 from its middle"
  endfrom=$((last - 999 * 600))
  say "${size}M: starting the API"
  SENSORHUB_AUTH=off "$out/api" serve -database-url "$(db "$name" | sed -E 's#://[^@/]+@#://bench_scale_reader@#')" \
    -addr 127.0.0.1:0 -admin-addr= -response-cache-mib 0 -log-format json >"$out/scale-api.log" 2>&1 &
  api_pid=$!
  base=
  for _ in $(seq 300); do
    base=$(grep '"msg":"listening"' "$out/scale-api.log" 2>/dev/null | jq -r 'select(.server == "api") | "http://" + .addr' 2>/dev/null | head -1 || true)
    [ -n "$base" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ] && break
    kill -0 "$api_pid" 2>/dev/null || { tail "$out/scale-api.log" >&2; die "the API exited"; }
    sleep 0.1
  done
  [ -n "$base" ] || die "the API did not start"
  # Windows on the rollups' grid: from the first whole hour, and whole days.
  hour0=$(((firstep + 3599) / 3600 * 3600))
  day0=$((firstep / 86400 * 86400))
  latency agg7d1h "/v1/aggregates?$s&from=$(iso "$hour0")&to=$(iso $((hour0 + 7 * 86400)))&bucket=1h&agg=avg"
  latency agg90d1d "/v1/aggregates?$s&from=$(iso "$day0")&to=$(iso $((day0 + 90 * 86400)))&bucket=1d&agg=avg"
  latency agg1d1m "/v1/aggregates?$s&from=$(iso $((day0 + 86400)))&to=$(iso $((day0 + 2 * 86400)))&bucket=1m&agg=avg&max_points=1440"
  latency rd_start "/v1/readings?$s&limit=1000"
  latency rd_middle "/v1/readings?$s&from=$(iso "$mid")&limit=1000"
  latency rd_end "/v1/readings?$s&from=$(iso "$endfrom")&limit=1000"
  latency latest "/v1/latest?$d"
  latency series "/v1/series?$d"
  latency devices "/v1/devices"
  latency legacy "/api/v1/core/process_request?$d"
  stop_api
  R[$size.n]=$n R[$size.shape]="$devices x 100 x $points"
  if [ "$KEEP" != 1 ]; then
    q "$dsn" -c "DROP DATABASE $name WITH (FORCE)"
  fi
done

report() {
  echo "sensorhub growth benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), flavor $FLAVOR"
  echo "machine: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); $(go env GOVERSION), PostgreSQL $(qv "$dsn" -c 'SHOW server_version')"
  echo "shape: 100 parameters a device (30 text), a reading every 10 minutes from $START; API: one client, ${secs} s a request, response cache off"
  echo
  printf '%-34s' "size"
  for size in $SIZES; do printf '%18s' "${size}M (${R[$size.shape]// /})"; done
  echo
  row() { # LABEL KEY...
    local l=$1 k=$2
    printf '%-34s' "$l"
    for size in $SIZES; do printf '%18s' "${R[$size.$k]:--}"; done
    echo
  }
  rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}'; }
  for size in $SIZES; do
    R[$size.load_rate]=$(rate "${R[$size.n]}" "${R[$size.load_s]}")
    R[$size.whole_rate]=$(rate "${R[$size.n]}" "$(awk -v a="${R[$size.load_s]}" -v b="${R[$size.refresh_s]}" 'BEGIN {print a + b}')")
    for p in raw packed; do
      [ -n "${R[$size.$p.db]:-}" ] || continue
      for k in rd_table rd_index rollups db; do
        R[$size.$p.$k.per]=$(awk -v b="${R[$size.$p.$k]}" -v n="${R[$size.n]}" 'BEGIN {printf "%.1f", b / n}')
      done
    done
    for e in "${endpoints[@]}"; do R[$size.$e.both]="${R[$size.$e.p50]}/${R[$size.$e.p99]}"; done
  done
  row "ingest load, rows/s" load_rate
  row "  with ingest refresh after, rows/s" whole_rate
  row "ingest refresh, s" refresh_s
  if [ "$FLAVOR" = timescaledb ]; then
    row "compression policy, s" compress_s
    row "  chunks compressed" chunks
  fi
  echo "disk, bytes per reading:"
  row "  readings table" raw.rd_table.per
  row "  readings indexes" raw.rd_index.per
  row "  rollups (1m, 1h, 1d)" raw.rollups.per
  row "  whole database" raw.db.per
  if [ "$FLAVOR" = timescaledb ]; then
    echo "disk after compression, bytes per reading:"
    row "  readings table" packed.rd_table.per
    row "  readings indexes" packed.rd_index.per
    row "  rollups (1m, 1h, 1d)" packed.rollups.per
    row "  whole database" packed.db.per
  fi
  echo "API p50/p99 ms:"
  for e in "${endpoints[@]}"; do row "  ${label[$e]}" "$e.both"; done
  echo "API answer, bytes (what grows with the answer is not a scan):"
  for e in "${endpoints[@]}"; do row "  ${label[$e]}" "$e.bytes"; done
  local sizes_arr=($SIZES) lo hi mid
  lo=${sizes_arr[0]} hi=${sizes_arr[-1]}
  if [ "$lo" != "$hi" ]; then
    echo
    echo "targets: API p50 at ${hi}M within 1.5x of ${lo}M; ingest at ${hi}M >= 0.8x of the size before"
    for e in "${endpoints[@]}"; do
      awk -v l="  ${label[$e]}" -v a="${R[$hi.$e.p50]}" -v b="${R[$lo.$e.p50]}" -v x="${R[$hi.$e.bytes]}" -v y="${R[$lo.$e.bytes]}" 'BEGIN {
        r = a / b; printf "%-34s %6.2fx  %-6s  (answer %.2fx the bytes)\n", l, r, (r <= 1.5 ? "meets" : "MISSES"), x / y }'
    done
    mid=${sizes_arr[-2]}
    awk -v a="${R[$hi.load_rate]}" -v b="${R[$mid.load_rate]}" -v w="${R[$hi.whole_rate]}" -v v="${R[$mid.whole_rate]}" -v hi="$hi" -v mid="$mid" 'BEGIN {
      printf "  ingest load %sM / %sM                %6.2fx  %s\n", hi, mid, a / b, (a / b >= 0.8 ? "meets" : "MISSES")
      printf "  with refresh %sM / %sM               %6.2fx  %s\n", hi, mid, w / v, (w / v >= 0.8 ? "meets" : "MISSES") }'
  fi
}
report | tee "$out/scale-$FLAVOR.txt"
