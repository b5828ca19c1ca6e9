#!/usr/bin/env bash
# Ingest benchmark (not a test): loads a generated 10M-reading dataset in the
# reference format with `ingest load`, then — in the same run, on the same
# cluster — loads exactly the same readings with `psql \copy` from CSV, and
# prints rows/s of each, their ratios and ingest's peak RSS.
#
# Baselines, each into a fresh database of its own:
#   - same schema: `psql \copy` of the readings into sensorhub's own readings
#     table, with the same catalog, partitions and primary key index. The job
#     also refreshes the rollups (on plain PostgreSQL ~0.7 rollup rows per
#     reading at one reading a minute), which the readings-only \copy does not
#     do, so this baseline then also writes the very rollup rows the job
#     computed: `psql \copy` of them into the rollup tables on plain
#     PostgreSQL, a refresh of the continuous aggregates on TimescaleDB. That
#     is the same final database, loaded as fast as PostgreSQL loads a CSV.
#   - naive table: what a user would do by hand, one table readings(time,
#     device_id, parameter, value_num, value_text) with a unique index on
#     (device_id, parameter, time), a hypertable on TimescaleDB (same chunk
#     interval as sensorhub's), and `psql \copy` of the readings as CSV in
#     that shape (bench/ingest-naive.sql). "job / naive \copy" is the whole
#     job's rate (readings / wall time until it exits, every answer exact)
#     over that; "materialized / ..." adds the rollup refresh after it.
#   - optional peer: timescaledb-parallel-copy (2 workers, batches of 20,000)
#     into another naive table, when PARALLEL_COPY names its executable. It is
#     never built or downloaded here.
# One untimed warm-up of the job and of the baselines comes first; then
# ROUNDS rounds of the measured pair in the order A B, B A, A B, ... (job,
# baselines, baselines, job, ...), each on fresh databases, after a
# CHECKPOINT. The summary gives each figure's median and ratios of medians.
# On TimescaleDB the bench databases' background policy jobs are paused, so
# that a policy run firing mid-measurement does not land in one round and not
# another; `ingest refresh` materializes what the job left, timed.
#
#   bench/ingest.sh                      # 10M readings (20 devices x 50 params x 10,000 points), plain PostgreSQL
#   POINTS=1000 bench/ingest.sh          # 1M, for a quick look (DEVICES, PARAMS, WORKERS likewise)
#   FLAVOR=timescaledb bench/ingest.sh   # sensorhub's TimescaleDB schema; the naive table is a hypertable
#   ROUNDS=3 bench/ingest.sh             # measured rounds (default 2), after the warm-up
#   ROLLUPS=wait bench/ingest.sh         # the job refreshes its rollups before it exits
#   PARALLEL_COPY=/path/to/timescaledb-parallel-copy bench/ingest.sh   # also time that tool
#
# FLAVOR is postgres (default) or timescaledb. TimescaleDB needs a PostgreSQL
# that has the extension: $SENSORHUB_PG_BINDIR if set, else a copy made by
# ../shared/timescaledb/make-pg.sh beside the checkout into bench/out/pg-tsdb.
# Needs: Go, the PostgreSQL server binaries (initdb, pg_ctl) and psql on PATH
# (or $SENSORHUB_PG_BINDIR), /usr/bin/time. Everything it writes stays under
# bench/out/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

FLAVOR=${FLAVOR:-postgres}
ROUNDS=${ROUNDS:-2}
PARALLEL_COPY=${PARALLEL_COPY:-}
DEVICES=${DEVICES:-20}
PARAMS=${PARAMS:-50}
POINTS=${POINTS:-10000}
WORKERS=${WORKERS:-2}
ROLLUPS=${ROLLUPS:-defer}
# Chunk (TimescaleDB) or partition (PostgreSQL) span, for sensorhub's schema
# and the naive hypertable alike; migrate's default.
CHUNK=${SENSORHUB_CHUNK_INTERVAL:-7 days}
out=bench/out
N=$((DEVICES * PARAMS * POINTS))

die() { echo "bench/ingest.sh: $*" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"

mkdir -p "$out"
chmod 755 "$out"

pcopy=
if [ -n "$PARALLEL_COPY" ]; then
  if pcopy=$(command -v "$PARALLEL_COPY") && [ -x "$pcopy" ] && [ ! -d "$pcopy" ]; then
    :
  else
    echo "note: PARALLEL_COPY=$PARALLEL_COPY is not an executable; skipping timescaledb-parallel-copy" >&2
    pcopy=
  fi
fi

# A PostgreSQL with TimescaleDB for FLAVOR=timescaledb, unless one is given.
# shellcheck source=bench/flavor.sh
. bench/flavor.sh

echo "building" >&2
go build -o "$out/ingest" ./services/ingest
go build -o "$out/migrate" ./db/cmd/migrate
go build -o "$out/localpg" ./db/cmd/localpg

data="$out/readings-${DEVICES}x${PARAMS}x${POINTS}.json"
if [ ! -s "$data" ]; then
  echo "generating $N readings into $data" >&2
  "$out/ingest" gen -seed 1 -devices "$DEVICES" -params "$PARAMS" -points "$POINTS" -interval 1m \
    -text-share 0.3 -start 2024-01-01T00:00:00.000001+02:00 -format reference -o "$data.tmp"
  mv "$data.tmp" "$data"
fi

# One cluster folder per flavor: localpg reuses a running cluster, and the
# one of the other flavor may preload other libraries.
pgdir="$out/cluster-$FLAVOR"
dsn=$("$out/localpg" start -dir "$pgdir" -port 0 -db postgres)
trap '"$out/localpg" stop -dir "$pgdir" >/dev/null 2>&1 || true' EXIT
# db NAME: the cluster's DSN with another database name.
db() { sed -E "s#/[^/?]+(\?|$)#/$1\1#" <<<"$dsn"; }
q() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
checkpoint() { q "$dsn" -c CHECKPOINT; }

if [ "$FLAVOR" = timescaledb ]; then
  usable=$(q -At "$dsn" -c "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'")
  [ "$usable" = t ] || die "FLAVOR=timescaledb: the cluster in $pgdir cannot load TimescaleDB (SENSORHUB_PG_BINDIR=${SENSORHUB_PG_BINDIR:-unset}); stop it with '$out/localpg stop -dir $pgdir' if it was started from other binaries"
fi

fresh_db() { q "$dsn" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }
drop_db() { q "$dsn" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }
migrate_db() {
  "$out/migrate" -database-url "$(db "$1")" -flavor "$FLAVOR" -chunk-interval "$CHUNK" 2>"$out/migrate.log" ||
    { cat "$out/migrate.log" >&2; die "migrate -flavor $FLAVOR of $1 failed"; }
  if [ "$FLAVOR" = timescaledb ]; then
    q -At "$(db "$1")" -c "SELECT count(*) FROM timescaledb_information.jobs j, LATERAL alter_job(j.job_id, scheduled => false) WHERE j.job_id >= 1000" >/dev/null
  fi
}
naive_db() {
  local hypertable=false
  [ "$FLAVOR" = timescaledb ] && hypertable=true
  fresh_db "$1"
  q "$(db "$1")" -v hypertable="$hypertable" -v chunk="$CHUNK" -f bench/ingest-naive.sql >/dev/null
}
count() { q -At "$(db "$1")" -c "$2"; }
rollup_count_sql="SELECT (SELECT count(*) FROM sensorhub.rollup_1m) + (SELECT count(*) FROM sensorhub.rollup_1h) + (SELECT count(*) FROM sensorhub.rollup_1d)"

# Figures of the measured rounds, one value a line per file.
res="$out/rounds"
rm -rf "$res" "$out"/ingest-*.log
mkdir -p "$res"
record() { if [ "$measured" = 1 ]; then echo "$2" >>"$res/$1"; fi; }
median() {
  [ -s "$res/$1" ] || { echo nan; return; }
  sort -g "$res/$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maximum() { if [ -s "$res/$1" ]; then sort -g "$res/$1" | tail -n1; else echo nan; fi; }
# log_field MSG KEY: an integer field of the job's last JSON log line MSG.
log_field() { grep -F "\"msg\":\"$1\"" "$out/ingest.log" | tail -n1 | sed -nE "s/.*\"$2\":([0-9]+).*/\1/p"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# A: the whole ingest job into a fresh database, until it exits (with
# ROLLUPS=defer, the default, every API answer is exact from then on: the
# rollups' ranges are pending and served from the raw readings), then the
# materialization it left behind, timed on its own with `ingest refresh`
# (what the rollup-refresh CronJob, or on TimescaleDB the database's own job,
# does after the job; the bench pauses that job so it runs here, timed).
run_job() {
  local label=$1 t0 t1 t2 wall rss load_ns refresh_ns inserted
  fresh_db bench_ingest
  migrate_db bench_ingest
  checkpoint
  echo "[$label] ingest load ($WORKERS workers, -rollups $ROLLUPS)" >&2
  t0=$(now)
  /usr/bin/time -f '%e %M' -o "$out/ingest.time" \
    "$out/ingest" load -database-url "$(db bench_ingest)" -workers "$WORKERS" -rollups "$ROLLUPS" -log-format json -rejects "$out/rejects.ndjson" "$data" \
    >"$out/ingest.summary" 2>"$out/ingest.log" || { tail -n 20 "$out/ingest.log" >&2; die "ingest load failed (log: $out/ingest.log)"; }
  t1=$(now)
  "$out/ingest" refresh -database-url "$(db bench_ingest)" -workers "$WORKERS" -log-format json \
    >>"$out/ingest.summary" 2>>"$out/ingest.log" || { tail -n 20 "$out/ingest.log" >&2; die "ingest refresh failed (log: $out/ingest.log)"; }
  t2=$(now)
  cp "$out/ingest.log" "$out/ingest-$label.log"
  read -r _ rss <"$out/ingest.time"
  wall=$(secs "$t0" "$t1")
  # The load phase alone (parse + COPY + catalog) and the refresh, from the
  # job's own log lines (slog JSON writes durations in nanoseconds): with
  # -rollups wait the job's, else the one `ingest refresh` logged.
  load_ns=$(log_field "file loaded" duration)
  refresh_ns=$(grep -F '"msg":"rollups refreshed"' "$out/ingest.log" | sed -nE 's/.*"duration":([0-9]+).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  inserted=$(log_field "ingest finished" inserted)
  [ "$inserted" = "$N" ] || die "ingest inserted ${inserted:-?} of $N readings (log: $out/ingest.log)"
  [ -n "$load_ns" ] || die "no \"file loaded\" duration in $out/ingest.log"
  [ "$(count bench_ingest "SELECT count(*) FROM sensorhub.rollup_pending")" = 0 ] || die "ranges still pending after ingest refresh"
  echo "[$label]   job ${wall} s (load $(awk -v n="$load_ns" 'BEGIN { printf "%.2f", n / 1e9 }') s), then materialized in $(secs "$t1" "$t2") s (refresh $(awk -v n="$refresh_ns" 'BEGIN { printf "%.2f", n / 1e9 }') s)" >&2
  record job_s "$wall"
  record done_s "$(secs "$t0" "$t2")"
  record load_s "$(awk -v n="$load_ns" 'BEGIN { print n / 1e9 }')"
  record refresh_s "$(awk -v n="$refresh_ns" 'BEGIN { print n / 1e9 }')"
  record rss_kb "$rss"
}

# B: the baselines, each into a fresh database.
run_baselines() {
  local label=$1 t0 t1 t2 copied w
  # Same schema: the job's catalog and partitions, so \copy meets the same
  # table, partitions and primary key index as ingest did.
  fresh_db bench_copy
  migrate_db bench_copy
  q "$(db bench_copy)" -c "\\copy sensorhub.series (series_id, device_id, parameter, value_type) FROM '$out/series.csv' CSV" \
    -c "SELECT sensorhub.ensure_partitions(ARRAY(SELECT generate_series(timestamptz '$lo', timestamptz '$hi', interval '1 day')) || timestamptz '$hi')" >/dev/null
  checkpoint
  echo "[$label] psql \\copy into the same schema" >&2
  t0=$(now)
  q "$(db bench_copy)" -c "\\copy sensorhub.readings FROM '$out/readings.csv' CSV"
  t1=$(now)
  if [ "$FLAVOR" = postgres ]; then
    for w in 1m 1h 1d; do
      q "$(db bench_copy)" -c "\\copy sensorhub.rollup_$w FROM '$out/rollup_$w.csv' CSV"
    done
  else
    for w in 1m 1h 1d; do
      q "$(db bench_copy)" -c "CALL refresh_continuous_aggregate('sensorhub.rollup_$w', NULL, NULL, options => '{\"buckets_per_batch\": 0}')"
    done
  fi
  t2=$(now)
  copied=$(count bench_copy "SELECT count(*) FROM sensorhub.readings")
  [ "$copied" = "$N" ] || die "psql copied $copied of $N readings"
  copied=$(count bench_copy "$rollup_count_sql")
  [ "$copied" = "$rollup_rows" ] || die "same-schema baseline has $copied rollup rows, the job $rollup_rows"
  drop_db bench_copy
  echo "[$label]   readings $(secs "$t0" "$t1") s, rollups $(secs "$t1" "$t2") s" >&2
  record copy_s "$(secs "$t0" "$t1")"
  record rollup_s "$(secs "$t1" "$t2")"
  record state_s "$(secs "$t0" "$t2")"

  naive_db bench_naive
  checkpoint
  echo "[$label] psql \\copy into the naive table" >&2
  t0=$(now)
  q "$(db bench_naive)" -c "\\copy readings FROM '$out/naive.csv' CSV HEADER"
  t1=$(now)
  copied=$(count bench_naive "SELECT count(*) FROM readings")
  [ "$copied" = "$N" ] || die "psql copied $copied of $N readings into the naive table"
  drop_db bench_naive
  echo "[$label]   $(secs "$t0" "$t1") s" >&2
  record naive_s "$(secs "$t0" "$t1")"

  if [ -n "$pcopy" ]; then
    naive_db bench_pcopy
    checkpoint
    echo "[$label] timescaledb-parallel-copy into the naive table" >&2
    t0=$(now)
    "$pcopy" --connection "$(db bench_pcopy)" --table readings --file "$out/naive.csv" \
      --workers 2 --batch-size 20000 --skip-header --copy-options "CSV" >"$out/pcopy.log" 2>&1 ||
      { tail -n 20 "$out/pcopy.log" >&2; die "timescaledb-parallel-copy failed (log: $out/pcopy.log)"; }
    t1=$(now)
    copied=$(count bench_pcopy "SELECT count(*) FROM readings")
    [ "$copied" = "$N" ] || die "timescaledb-parallel-copy copied $copied of $N readings"
    drop_db bench_pcopy
    echo "[$label]   $(secs "$t0" "$t1") s" >&2
    record pcopy_s "$(secs "$t0" "$t1")"
  fi
}

# Warm-up (untimed): one job, whose database the baselines' CSVs come from,
# and one set of baselines.
measured=0
run_job warmup
echo "exporting the same readings as CSV" >&2
q "$(db bench_ingest)" -c "\\copy (SELECT series_id, time, utc_offset_min, value_num, value_text FROM sensorhub.readings) TO '$out/readings.csv' CSV"
q "$(db bench_ingest)" -c "\\copy (SELECT series_id, device_id, parameter, value_type FROM sensorhub.series) TO '$out/series.csv' CSV"
q "$(db bench_ingest)" -c "\\copy (SELECT r.time, s.device_id, s.parameter, r.value_num, r.value_text FROM sensorhub.readings r JOIN sensorhub.series s USING (series_id)) TO '$out/naive.csv' CSV HEADER"
if [ "$FLAVOR" = postgres ]; then
  for w in 1m 1h 1d; do
    q "$(db bench_ingest)" -c "\\copy sensorhub.rollup_$w TO '$out/rollup_$w.csv' CSV"
  done
fi
rollup_rows=$(count bench_ingest "$rollup_count_sql")
lo=$(count bench_ingest "SELECT min(time) FROM sensorhub.readings")
hi=$(count bench_ingest "SELECT max(time) FROM sensorhub.readings")
run_baselines warmup

measured=1
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    run_job "round$r"
    run_baselines "round$r"
  else
    run_baselines "round$r"
    run_job "round$r"
  fi
done
drop_db bench_ingest

if [ "$FLAVOR" = postgres ]; then
  rollup_what="\\copy of its $rollup_rows rollup rows"
else
  rollup_what="cagg refresh, $rollup_rows rows"
fi
pcopy_note=
if [ -z "$pcopy" ] && [ -n "$PARALLEL_COPY" ]; then
  pcopy_note="skipped: PARALLEL_COPY=$PARALLEL_COPY is not an executable"
elif [ -z "$pcopy" ]; then
  pcopy_note="skipped: PARALLEL_COPY not set"
fi

awk -v flavor="$FLAVOR" -v n="$N" -v dev="$DEVICES" -v par="$PARAMS" -v pts="$POINTS" -v workers="$WORKERS" -v rounds="$ROUNDS" \
  -v job="$(median job_s)" -v done="$(median done_s)" -v mode="$ROLLUPS" -v load="$(median load_s)" -v refresh="$(median refresh_s)" -v rss="$(maximum rss_kb)" \
  -v copy="$(median copy_s)" -v rollup="$(median rollup_s)" -v state="$(median state_s)" -v naive="$(median naive_s)" -v pcopy="$(median pcopy_s)" \
  -v rollup_what="$rollup_what" -v pcopy_note="$pcopy_note" 'BEGIN {
  print  "== ingest benchmark summary (medians of the measured rounds) =="
  printf "flavor                              %s\n", flavor
  printf "readings                            %d (%d devices x %d params x %d points), ingest -workers %d\n", n, dev, par, pts, workers
  printf "rounds                              %d measured (A B, B A, ...) after 1 warm-up\n", rounds
  printf "ingest job until exit (-rollups %s) %6.2f s  %10.0f rows/s  (every answer exact from here)\n", mode, job, n / job
  printf "  load phase (\"file loaded\")        %8.2f s  %10.0f rows/s\n", load, n / load
  printf "  rollup refresh                    %8.2f s  (in the job with wait; after it with defer)\n", refresh
  printf "until rollups materialized          %8.2f s  %10.0f rows/s\n", done, n / done
  printf "same-schema psql \\copy readings     %8.2f s  %10.0f rows/s\n", copy, n / copy
  printf "  + %-33s %6.2f s\n", rollup_what, rollup
  printf "  readings + rollups                %8.2f s  %10.0f rows/s\n", state, n / state
  printf "naive table psql \\copy              %8.2f s  %10.0f rows/s\n", naive, n / naive
  if (pcopy_note == "")
    printf "timescaledb-parallel-copy (2 w.)    %8.2f s  %10.0f rows/s\n", pcopy, n / pcopy
  else
    printf "timescaledb-parallel-copy           %s\n", pcopy_note
  print  "ratios (ingest rate / baseline rate, of medians; > 1: ingest faster)"
  printf "  load phase / same-schema \\copy          %6.2fx\n", copy / load
  printf "  job / same-schema \\copy                 %6.2fx\n", copy / job
  printf "  job / same-schema \\copy + rollups       %6.2fx\n", state / job
  printf "  materialized / same-schema + rollups    %6.2fx\n", state / done
  printf "  job / naive \\copy                       %6.2fx\n", naive / job
  printf "  materialized / naive \\copy              %6.2fx\n", naive / done
  if (pcopy_note == "")
    printf "  job / parallel-copy                     %6.2fx\n", pcopy / job
  else
    printf "  job / parallel-copy                     skipped\n"
  printf "ingest peak RSS                     %8.1f MB (largest of the measured rounds)\n", rss / 1024
}'
