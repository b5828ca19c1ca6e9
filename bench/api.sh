#!/usr/bin/env bash
# API benchmark (not a test). In one run, on one local PostgreSQL cluster, it
# load-tests the API's read endpoints with wrk and, next to each, runs pgbench
# with the SQL the API runs for that endpoint, the same client count and the
# same duration; it prints req/s, latencies, the ratio API/pgbench (issue 3's
# target: >= 0.8 for /v1/aggregates) and the CPU each side spent per request,
# then the original process_request endpoint against the published figures of
# the Flask service it replaces.
#
#   bench/api.sh                            # 10M readings (20 devices x 50 params x 10,000 points), 32 clients, 30 s per run
#   POINTS=1000 DURATION=5s bench/api.sh    # 1M readings, a quick look
#   bench/api.sh --clean                    # the same, then drop its databases (or CLEAN=1)
#
# Settings, from the environment:
#   DEVICES, PARAMS, POINTS  shape of the generated dataset (20, 50, 10000; one reading a minute)
#   CLIENTS                  concurrent clients of wrk and pgbench (32)
#   DURATION                 length of every measured run, whole seconds (30s)
#   WARMUP                   load before each measured API run, not measured (2s)
#   POOL_SIZE                the API's database pool (10, the API's default)
#   FLAVOR                   schema flavor, postgres or timescaledb (postgres); timescaledb takes
#                            PostgreSQL with the extension from $SENSORHUB_PG_BINDIR, else makes one
#                            with ../shared/timescaledb/make-pg.sh (bench/flavor.sh)
#   PGDIR                    cluster folder (bench/out/cluster-$FLAVOR, shared with bench/ingest.sh)
#   REF                      the reference dataset (../shared/datasets/sensor-target/data.json)
#   VIEWERS, PANELS          the dashboard run's viewers and panels (50, 20)
#   RUNS                     which steps run: any of misses (3, 4, BASELINE), distinct (4b),
#                            dashboard (4c), legacy (5); all by default
#   CLEAN=1                  drop bench_api, bench_ref and the role bench_api_reader at the end
#   BASELINE                 a git revision (e.g. 9365785, before issue 13): its API is built too, and
#                            the aggregates and readings miss runs are repeated with it, each right after
#                            the current API's, for the CPU per request of the two in one run
#   BASELINE_ROUNDS          how often the baseline and the current API alternate (3), each round ending
#                            with bench/api-floor.go on the same paths; the median of the
#                            rounds' ratios is reported
#
# Steps:
# 1. Builds ingest, migrate, localpg and api into bench/out; starts the cluster
#    in PGDIR, or reuses it when it runs (and then leaves it running). Database
#    bench_api gets the generated dataset (bench/ingest.sh's generator flags,
#    in bench/out/readings-DxPxN.json) and bench_ref the reference dataset,
#    both with `ingest load`, unless they hold exactly those readings already. Both are migrated with SENSORHUB_API_DB_USER=bench_api_reader, the
#    read-only role the API and pgbench connect as.
# 2. Starts the API on 127.0.0.1 (a port the kernel picks; admin listener off;
#    SENSORHUB_AUTH=off) and waits for /readyz.
# 3. wrk (bench/api-wrk.lua draws one of a run of numeric series per request):
#    /v1/aggregates, 7 days of 1-hour buckets aligned to the hour (so served
#    from rollup_1h), and /v1/readings, 1,000 rows; one response of each is
#    checked first against the same SQL run with psql.
# 4. pgbench -M prepared -c CLIENTS -j 2 -T DURATION on the same database with
#    bench/api-pgbench-aggregates.sql and api-pgbench-readings.sql (copies of
#    the API's SQL, checked against the Go source by bench/api-sqlcheck.go),
#    drawing the same series; and, as a diagnostic, the *-request.sql scripts:
#    all the SQL one request runs (series lookup + query), on one series.
# 4b. Distinct requests, with the response cache on (64 MiB) as deployed: wrk walks
#    a shuffled list of paths in which no path repeats (bench/api-wrk.lua's seq
#    mode), each another series and window: aggregates of 1-hour buckets over
#    144-168 hours starting up to 72 hours either side of the series' first
#    hour, readings pages of 1,000 from a minute drawn among those whose page is
#    full (needs POINTS > 1000; DEVICES=2 POINTS=10000 makes a 1M dataset that
#    has them). Beside each, pgbench draws the same distribution
#    (bench/api-pgbench-*-distinct.sql). Issue 13's target: >= 0.8 for both.
#    Then bench/api-floor.go, net/http and pgx alone answering with the API's
#    SQL and, checked on 100 paths of each endpoint, the API's bytes, walks the
#    same paths: about the most a Go server on this stack gets beside pgbench.
# 4c. A dashboard: VIEWERS viewers refresh one dashboard of PANELS panels
#    (aggregates of 7 days of 1-hour buckets and first pages of readings of the
#    served series), the refresh interval compressed to nothing, on a copy of
#    bench_api (bench_dash, dropped afterwards), response cache on (64 MiB),
#    for DURATION; midway `ingest load` adds readings to every panel's series
#    (bench/dashboard-client.go). Every answer carrying the first or the final
#    dataset version must equal, byte for byte, what a second API with its
#    cache off answers at that version; it reports how long after the load's
#    exit answers of an older version were still served (the staleness
#    window). Beside it, pgbench runs the panels' SQL at VIEWERS clients.
#    Issue 13's target: >= 5x pgbench.
# 5. /api/v1/core/process_request on bench_ref at CLIENTS, 1 and 8 clients,
#    and at 8 with gzip, with the response cache off; then at 8 with the
#    cache on (64 MiB), without and with gzip. Everything before runs with
#    the cache off, so that the API runs every request's SQL as pgbench does.
# 6. Prints the tables, stops the API, keeps the databases for the next run.
#
# Needs: Go, the PostgreSQL 15 binaries (initdb, pg_ctl, psql, pgbench; on PATH
# or in /usr/lib/postgresql/15/bin), wrk, curl, jq and /usr/bin/time (Debian:
# apt-get install wrk jq curl time). All traffic goes to 127.0.0.1. Everything
# it writes stays under bench/out/ (git-ignored); results in bench/out/api-results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

CLEAN=${CLEAN:-0}
for arg in "$@"; do
  case $arg in
  --clean) CLEAN=1 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "api.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

DEVICES=${DEVICES:-20}
PARAMS=${PARAMS:-50}
POINTS=${POINTS:-10000}
CLIENTS=${CLIENTS:-32}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-2s}
POOL_SIZE=${POOL_SIZE:-10}
FLAVOR=${FLAVOR:-postgres}
RUNS=${RUNS:-misses distinct dashboard legacy}
BASELINE_ROUNDS=${BASELINE_ROUNDS:-3}
VIEWERS=${VIEWERS:-50}
PANELS=${PANELS:-20}
PGDIR=${PGDIR:-bench/out/cluster-$FLAVOR}
REF=${REF:-../shared/datasets/sensor-target/data.json}
READER=bench_api_reader
AGG_DAYS=7
MAX_POINTS=100000 # the API's -max-points default; ListSeries asks for MAX_POINTS+1 series
# The original Flask service, from ../shared/datasets/sensor-target/README.md.
FLASK_1=7
FLASK_8_LO=5.6
FLASK_8_HI=5.9

say() { echo "api.sh: $*" >&2; }
want() { [[ " $RUNS " == *" $1 "* ]]; }
die() { say "$*"; exit 1; }
secs=${DURATION%s}
warm=${WARMUP%s}
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds such as 30s, not $DURATION"
[[ $warm =~ ^[0-9]+$ ]] || die "WARMUP must be whole seconds such as 2s, not $WARMUP"
[[ $CLIENTS =~ ^[1-9][0-9]*$ ]] || die "CLIENTS must be a positive number, not $CLIENTS"
[[ $BASELINE_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BASELINE_ROUNDS must be a positive number, not $BASELINE_ROUNDS"
N=$((DEVICES * PARAMS * POINTS))
out=bench/out
mkdir -p "$out"

command -v pgbench >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 || PATH=/usr/lib/postgresql/15/bin:$PATH
for tool in go psql pgbench initdb wrk curl jq /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install wrk jq curl time postgresql-15)"
done

# shellcheck source=bench/flavor.sh
. bench/flavor.sh

say "checking the pgbench scripts against the API's SQL"
go run bench/api-sqlcheck.go bench/api-pgbench-*.sql

say "building"
go build -o "$out/ingest" ./services/ingest
go build -o "$out/migrate" ./db/cmd/migrate
go build -o "$out/localpg" ./db/cmd/localpg
go build -o "$out/api" ./services/api
go build -o "$out/dashboard-client" bench/dashboard-client.go
go build -o "$out/api-floor" bench/api-floor.go
go run bench/api-sqlcheck.go -print services/api/internal/store rollup1hOneSQL >"$out/api-floor-aggregates.sql"
go run bench/api-sqlcheck.go -print services/api/internal/store readingsAscSQL >"$out/api-floor-readings.sql"
if [ -n "${BASELINE:-}" ]; then
  say "building the baseline API of $BASELINE"
  rm -rf "$out/baseline-src" && mkdir -p "$out/baseline-src"
  git archive "$BASELINE" | tar -x -C "$out/baseline-src"
  (cd "$out/baseline-src" && go build -o ../api-baseline ./services/api)
  BASELINE_NAME="$BASELINE ($(git log -1 --format='%h %cs' "$BASELINE"))"
fi

started_pg=0
if ! dsn=$("$out/localpg" status -dir "$PGDIR" -db postgres 2>/dev/null); then
  dsn=$("$out/localpg" start -dir "$PGDIR" -port 0 -db postgres)
  started_pg=1
fi
if [ "$FLAVOR" = timescaledb ]; then
  [ "$(psql -X -tA "$dsn" -c "SELECT current_setting('shared_preload_libraries') LIKE '%timescaledb%'")" = t ] ||
    die "FLAVOR=timescaledb: the cluster in $PGDIR does not preload TimescaleDB; stop it ($out/localpg stop -dir $PGDIR) or set PGDIR"
fi
# db NAME: the cluster's DSN with another database; reader NAME: as the API's role.
db() { sed -E "s#/[^/?]+(\?|$)#/$1\1#" <<<"$dsn"; }
reader() { db "$1" | sed -E "s#://[^@/]+@#://$READER@#"; }

api_pid=
stop_api() {
  if [ -n "$api_pid" ]; then
    kill -TERM "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    api_pid=
  fi
}
fresh_pid=
cleanup() {
  stop_api
  [ -z "$fresh_pid" ] || { kill -TERM "$fresh_pid" 2>/dev/null || true; wait "$fresh_pid" 2>/dev/null || true; }
  psql -q "$dsn" -c "DROP DATABASE IF EXISTS bench_dash WITH (FORCE)" 2>/dev/null || true
  if [ "$CLEAN" = 1 ]; then
    say "CLEAN=1: dropping bench_api, bench_ref and $READER"
    psql -q "$dsn" -c "DROP DATABASE IF EXISTS bench_api WITH (FORCE)" -c "DROP DATABASE IF EXISTS bench_ref WITH (FORCE)" || true
    psql -q "$dsn" -c "DROP ROLE IF EXISTS $READER" 2>/dev/null || true
  fi
  if [ "$started_pg" = 1 ]; then
    "$out/localpg" stop -dir "$PGDIR" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- datasets

# counts NAME: "devices series readings" of a migrated database, from its catalog.
counts() {
  psql -X -tA -F' ' "$(db "$1")" -c "SELECT count(DISTINCT device_id), count(*), coalesce(sum(reading_count), 0) FROM sensorhub.series"
}

migrate_db() {
  SENSORHUB_API_DB_USER=$READER "$out/migrate" -database-url "$(db "$1")" -flavor "$FLAVOR" >"$out/api-migrate-$1.log" 2>&1 ||
    { tail -20 "$out/api-migrate-$1.log" >&2; die "migrating $1 failed"; }
}

# ensure_dataset NAME DEVICES SERIES READINGS FILE: make database NAME hold
# exactly that dataset (FILE, generated when missing); a database holding
# anything else is recreated.
ensure_dataset() {
  local name=$1 want="$2 $3 $4" file=$5 have
  psql -X -tA "$dsn" -c "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1 ||
    psql -X -q "$dsn" -c "CREATE DATABASE $name"
  migrate_db "$name"
  have=$(counts "$name")
  if [ "$have" = "$want" ]; then
    say "$name already holds $4 readings of $3 series of $2 devices: not loading"
    return
  fi
  if [ "$have" != "0 0 0" ]; then
    say "$name holds $have (devices series readings), not $want: recreating it"
    psql -X -q "$dsn" -c "DROP DATABASE $name WITH (FORCE)" -c "CREATE DATABASE $name"
    migrate_db "$name"
  fi
  if [ ! -s "$file" ]; then
    say "generating $N readings into $file"
    "$out/ingest" gen -seed 1 -devices "$DEVICES" -params "$PARAMS" -points "$POINTS" -interval 1m \
      -text-share 0.3 -start 2024-01-01T00:00:00.000001+02:00 -format reference -o "$file"
  fi
  say "loading $file into $name with ingest load"
  local t0=$SECONDS
  "$out/ingest" load -database-url "$(db "$name")" -workers 2 -log-format json -rejects "$out/api-rejects-$name.ndjson" "$file" \
    >"$out/api-load-$name.summary" 2>"$out/api-load-$name.log" ||
    { tail -5 "$out/api-load-$name.log" >&2; die "loading $file into $name failed"; }
  have=$(counts "$name")
  [ "$have" = "$want" ] || die "$name holds $have (devices series readings) after loading, not $want"
  say "loaded $4 readings into $name in $((SECONDS - t0)) s"
}

ensure_dataset bench_api "$DEVICES" $((DEVICES * PARAMS)) "$N" "$out/readings-${DEVICES}x${PARAMS}x${POINTS}.json"
# The job leaves rollups pending (the API would answer from the raw
# readings until they are materialized): materialize them, as the rollup
# CronJob or TimescaleDB's job would, before measuring the rollup path.
say "materializing pending rollups (ingest refresh)"
"$out/ingest" refresh -database-url "$(db bench_api)" -log-format json >/dev/null 2>>"$out/api-refresh.log" ||
  { tail -5 "$out/api-refresh.log" >&2; die "ingest refresh failed"; }
have_ref=0
if [ -f "$REF" ]; then
  ensure_dataset bench_ref 2 34 20000 "$REF"
  have_ref=1
else
  say "$REF not found: skipping the process_request runs"
fi
# Vacuumed and analysed before measuring, so that autovacuum does not start
# in the middle of a run (quick when nothing changed since the last run).
say "vacuum analyze, checkpoint"
psql -X -q "$(db bench_api)" -c "VACUUM ANALYZE"
[ "$have_ref" = 0 ] || psql -X -q "$(db bench_ref)" -c "VACUUM ANALYZE"
psql -X -q "$dsn" -c CHECKPOINT
# Other sessions on a shared cluster count as PostgreSQL's CPU: name them.
others=$(psql -X -tA "$dsn" -c "SELECT string_agg(DISTINCT datname, ', ') FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname NOT IN ('bench_api', 'bench_ref')")

# ---------------------------------------------------------------- measuring

hz=$(getconf CLK_TCK)
ncpu=$(nproc)
pg_pid=$(head -1 "$PGDIR/postmaster.pid")

# pg_ticks: CPU ticks of the whole cluster: its live processes, plus the
# backends that have exited (the postmaster's reaped children). Read again
# when the postmaster reaped a backend while its children were being read.
pg_ticks() {
  local before after kids
  while :; do
    before=$(sed 's/.*) //' "/proc/$pg_pid/stat" | awk '{print $12 + $13 + $14 + $15}')
    kids=$(for p in $(ps -o pid= --ppid "$pg_pid"); do
      sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true
    done | awk '{s += $1} END {print s + 0}')
    after=$(sed 's/.*) //' "/proc/$pg_pid/stat" | awk '{print $12 + $13 + $14 + $15}')
    [ "$before" != "$after" ] || break
  done
  echo $((after + kids))
}
api_ticks() {
  if [ -n "$api_pid" ]; then sed 's/.*) //' "/proc/$api_pid/stat" | awk '{print $12 + $13}'; else echo 0; fi
}
# machine_ticks: "busy total" ticks of all CPUs.
machine_ticks() { awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat; }

declare -A R # results: R[run.key]

# measure RUN CMD...: runs the load generator CMD (output in bench/out/api-RUN.out)
# and records the CPU seconds the API, PostgreSQL, CMD and everything else
# spent meanwhile, and how busy the machine was.
measure() {
  local run=$1 pg0 api0 b0 t0 pg1 api1 b1 t1 cu cs
  shift
  pg0=$(pg_ticks) api0=$(api_ticks)
  read -r b0 t0 < <(machine_ticks)
  if ! /usr/bin/time -f '%U %S' -o "$out/api-$run.time" "$@" >"$out/api-$run.out" 2>&1; then
    tail -20 "$out/api-$run.out" >&2
    die "$run: $1 failed"
  fi
  pg1=$(pg_ticks) api1=$(api_ticks)
  read -r b1 t1 < <(machine_ticks)
  read -r cu cs <"$out/api-$run.time"
  R[$run.cpu_pg]=$(awk -v a="$pg0" -v b="$pg1" -v hz="$hz" 'BEGIN {print (b - a) / hz}')
  R[$run.cpu_api]=$(awk -v a="$api0" -v b="$api1" -v hz="$hz" 'BEGIN {print (b - a) / hz}')
  R[$run.cpu_client]=$(awk -v u="$cu" -v s="$cs" 'BEGIN {print u + s}')
  R[$run.cpu_busy]=$(awk -v a="$b0" -v b="$b1" -v hz="$hz" 'BEGIN {print (b - a) / hz}')
  R[$run.busy_pct]=$(awk -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" 'BEGIN {print 100 * (b1 - b0) / (t1 - t0)}')
}

# run_wrk RUN CLIENTS PATHS_FILE: WARMUP then DURATION of wrk against the API.
# With "seq" as the first option, wrk walks PATHS in order (bench/api-wrk.lua),
# after a warm-up on PATHS.warm, paths the measured walk never requests.
run_wrk() { # RUN CLIENTS PATHS [seq] [wrk options, e.g. -H "Accept-Encoding: gzip"]
  local run=$1 c=$2 paths=$3 threads line mode="" warm_paths=$3
  shift 3
  if [ "${1:-}" = seq ]; then
    mode=seq warm_paths=$paths.warm
    shift
  fi
  threads=$((c < 2 ? c : 2))
  say "wrk $run: $c clients, ${secs} s $mode $*"
  if [ "$warm" -gt 0 ]; then
    wrk -t"$threads" -c"$c" -d"${warm}s" --timeout 30s "$@" -s bench/api-wrk.lua "$base" -- "$warm_paths" >/dev/null
  fi
  measure "$run" wrk -t"$threads" -c"$c" -d"${secs}s" --timeout 30s "$@" -s bench/api-wrk.lua "$base" -- "$paths" $mode
  line=$(grep '^WRK ' "$out/api-$run.out") || die "$run: no summary from wrk"
  local requests duration_us bytes p50_us p99_us mean_us max_us err_connect err_read err_write err_status err_timeout
  eval "$(sed 's/^WRK //; s/ /\n/g' <<<"$line")"
  R[$run.n]=$requests
  R[$run.rate]=$(awk -v n="$requests" -v d="$duration_us" 'BEGIN {print n / (d / 1e6)}')
  R[$run.p50]=$(awk -v x="$p50_us" 'BEGIN {print x / 1000}')
  R[$run.p99]=$(awk -v x="$p99_us" 'BEGIN {print x / 1000}')
  R[$run.mean]=$(awk -v x="$mean_us" 'BEGIN {print x / 1000}')
  R[$run.errors]=$((err_connect + err_read + err_write + err_status + err_timeout))
  R[$run.bytes]=$(awk -v b="$bytes" -v n="$requests" 'BEGIN {print (n ? b / n : 0)}')
  [ "${R[$run.errors]}" = 0 ] ||
    say "WARNING: $run: $err_status non-2xx responses, $((err_connect + err_read + err_write)) socket errors, $err_timeout timeouts"
}

# run_pgbench RUN DB SCRIPT -D...: DURATION of pgbench with SCRIPT, as the API's role.
run_pgbench() {
  local run=$1 name=$2 script=$3 logdir="$out/api-pgbench-log-$1" threads failed
  shift 3
  threads=$((CLIENTS < 2 ? CLIENTS : 2))
  rm -rf "$logdir" && mkdir -p "$logdir"
  say "pgbench $run: $CLIENTS clients, ${secs} s"
  # The API's sessions: read-only transactions and its statement timeout.
  measure "$run" env PGOPTIONS="-c default_transaction_read_only=on -c statement_timeout=5000" \
    pgbench -n -M prepared -c "$CLIENTS" -j "$threads" -T "$secs" -f "$script" -l --log-prefix="$logdir/tx" "$@" "$(reader "$name")"
  R[$run.rate]=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$out/api-$run.out")
  R[$run.mean]=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' "$out/api-$run.out")
  R[$run.n]=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$out/api-$run.out")
  failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$out/api-$run.out")
  [ -n "${R[$run.rate]}" ] && [ -n "${R[$run.n]}" ] || { tail "$out/api-$run.out" >&2; die "$run: cannot read pgbench's summary"; }
  R[$run.errors]=${failed:-0}
  # Latency percentiles from the per-transaction log (column 3, microseconds).
  read -r R["$run.p50"] R["$run.p99"] < <(cat "$logdir"/tx.* | awk '{print $3}' | sort -n | awk '
    {v[NR] = $1}
    function pct(p,  i) { i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; return v[i] / 1000 }
    END {print pct(0.50), pct(0.99)}')
  rm -rf "$logdir"
}

# start_api NAME CACHE_MIB [BINARY]: the API (bench/out/api, or BINARY) on
# database NAME as the read-only role, with a response cache of CACHE_MIB
# (0: off; a binary without the setting has no cache); sets base.
start_api() {
  local name=$1 cache=$2 bin=${3:-$out/api} log deadline addr="" flags=()
  log="$out/api-serve-$1-cache$2-$(basename "$bin").log"
  say "starting $bin on $name (response cache ${cache} MiB)"
  if "$bin" serve --help 2>&1 | grep -q -- -response-cache-mib; then
    flags=(-response-cache-mib "$cache")
  fi
  SENSORHUB_AUTH=off SENSORHUB_CURSOR_KEY=bench-api-cursor-key "$bin" serve -database-url "$(reader "$name")" -addr 127.0.0.1:0 -admin-addr= \
    -pool-size "$POOL_SIZE" "${flags[@]}" -log-format json >"$log" 2>&1 &
  api_pid=$!
  deadline=$((SECONDS + 30))
  while [ -z "$addr" ]; do
    kill -0 "$api_pid" 2>/dev/null || { tail -20 "$log" >&2; api_pid=; die "the API exited"; }
    [ $SECONDS -lt $deadline ] || { tail -20 "$log" >&2; die "the API did not listen within 30 s"; }
    sleep 0.1
    addr=$(grep '"msg":"listening"' "$log" | jq -r 'select(.server == "api") | .addr' 2>/dev/null | head -1 || true)
  done
  [[ $addr == 127.0.0.1:* ]] || die "the API listens on $addr, not on 127.0.0.1"
  base="http://$addr"
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ]; do
    kill -0 "$api_pid" 2>/dev/null || { tail -20 "$log" >&2; api_pid=; die "the API exited"; }
    [ $SECONDS -lt $deadline ] || { curl -s "$base/readyz" >&2; die "the API is not ready after 30 s"; }
    sleep 0.2
  done
  say "API ready at $base (log: $log)"
}

# start_floor: starts bench/api-floor.go on bench_api (floor_pid, floor_base),
# with fresh_pid set so that cleanup stops it.
start_floor() {
  local deadline addr=""
  "$out/api-floor" -database-url "$(reader bench_api)" -aggregates-sql "$out/api-floor-aggregates.sql" \
    -readings-sql "$out/api-floor-readings.sql" -cursor-key bench-api-cursor-key -pool-size "$POOL_SIZE" \
    >"$out/api-floor.log" 2>&1 &
  floor_pid=$! fresh_pid=$!
  deadline=$((SECONDS + 30))
  while [ -z "$addr" ]; do
    kill -0 "$floor_pid" 2>/dev/null || { cat "$out/api-floor.log" >&2; die "api-floor exited"; }
    [ $SECONDS -lt $deadline ] || die "api-floor did not listen within 30 s"
    sleep 0.1
    addr=$(awk '$1 == "listening" {print $2}' "$out/api-floor.log")
  done
  floor_base="http://$addr"
}

# check_floor API_BASE PATHS...: the floor answers the first 100 of each
# PATHS file with the API's body and Link header, byte for byte.
check_floor() {
  local api=$1 path a f n=0
  shift
  while read -r path; do
    a=$(curl -sf -D - "$api$path" | grep -iv '^\(date\|etag\|x-request-id\|cache-control\|vary\):' | sha256sum) ||
      die "the API failed $path"
    f=$(curl -sf -D - "$floor_base$path" | grep -iv '^date:' | sha256sum) || die "api-floor failed $path"
    [ "$a" = "$f" ] || die "api-floor's answer to $path is not the API's"
    n=$((n + 1))
  done < <(for p in "$@"; do head -100 "$p"; done)
  say "api-floor: $n answers equal to the API's, byte for byte"
}

# sql_rows SCRIPT NAME -v...: rows a pgbench script returns, run once with psql
# (psql interpolates the same :name variables; \set lines are dropped).
sql_rows() {
  local script=$1 name=$2
  shift 2
  grep -v '^\\' "$script" | psql -X -q -tA -v ON_ERROR_STOP=1 "$@" "$(reader "$name")" | awk 'END {print NR}'
}

# ---------------------------------------------------------------- bench_api

# The series both wrk and pgbench draw from: the longest run of consecutive
# ids of numeric series, so that pgbench's random(:lo, :hi) draws exactly the
# series the wrk script's path list holds.
read -r lo hi < <(psql -X -tA -F' ' "$(db bench_api)" -c "
  WITH n AS (SELECT series_id, series_id - row_number() OVER (ORDER BY series_id) AS run
             FROM sensorhub.series WHERE value_type = 'numeric' AND reading_count > 0)
  SELECT min(series_id), max(series_id) FROM n GROUP BY run ORDER BY count(*) DESC, min(series_id) LIMIT 1")
[ -n "${lo:-}" ] || die "bench_api has no numeric series"
psql -X -tA "$(db bench_api)" -c "SELECT json_agg(json_build_object('id', series_id, 'd', device_id, 'p', parameter) ORDER BY series_id)
  FROM sensorhub.series WHERE series_id BETWEEN $lo AND $hi" >"$out/api-series.json"
# 7 days from the hour of the first reading: on the hour grid, so 1-hour
# buckets are served from rollup_1h.
read -r from to < <(PGTZ=UTC psql -X -tA -F' ' "$(db bench_api)" -c "
  SELECT to_char(h, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(h + interval '$AGG_DAYS days', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
  FROM (SELECT date_trunc('hour', min(first_time)) AS h FROM sensorhub.series WHERE series_id BETWEEN $lo AND $hi) x")
# The bucket starts the planner binds as $3: every hour in [from, to).
buckets=$(PGTZ=UTC psql -X -tA "$(db bench_api)" -c "
  SELECT array_agg(b ORDER BY b) FROM generate_series(timestamptz '$from', timestamptz '$to' - interval '1 hour', interval '1 hour') b")
jq -r --arg from "$from" --arg to "$to" \
  '.[] | "/v1/aggregates?device_id=\(.d | @uri)&parameter=\(.p | @uri)&from=\($from | @uri)&to=\($to | @uri)&bucket=1h&agg=avg"' \
  "$out/api-series.json" >"$out/api-paths-aggregates.txt"
jq -r '.[] | "/v1/readings?device_id=\(.d | @uri)&parameter=\(.p | @uri)&limit=1000"' \
  "$out/api-series.json" >"$out/api-paths-readings.txt"
read -r first_dev first_param < <(jq -r '.[0] | "\(.d) \(.p)"' "$out/api-series.json")
nseries=$((hi - lo + 1))

# The distinct-request paths (step 4b), shuffled with a fixed seed, at most
# about 150,000 of each: more than a run at this machine's rate requests.
agg_base=$(psql -X -tA "$(db bench_api)" -c "SELECT extract(epoch FROM timestamptz '$from')::bigint")
rd_t0=$(psql -X -tA "$(db bench_api)" -c "SELECT floor(extract(epoch FROM min(first_time)))::bigint FROM sensorhub.series WHERE series_id BETWEEN $lo AND $hi")
HMAX=72
kmax=$((POINTS - 1001))
seeded() { openssl enc -aes-256-ctr -pass pass:sensorhub -nosalt </dev/zero 2>/dev/null; }
jq -r --argjson base "$agg_base" --argjson hmax "$HMAX" '
  .[] as $s | range(-$hmax; $hmax + 1) as $h | range(144; 169) as $len |
  ($base + 3600 * $h) as $t0 |
  "/v1/aggregates?device_id=\($s.d | @uri)&parameter=\($s.p | @uri)&from=\($t0 | todate | @uri)&to=\($t0 + 3600 * $len | todate | @uri)&bucket=1h&agg=avg"' \
  "$out/api-series.json" | shuf --random-source=<(seeded) | head -155000 >"$out/api-paths-aggregates-distinct.all"
if [ "$kmax" -gt 0 ]; then
  kstep=$(((nseries * (kmax + 1) + 149999) / 150000))
  jq -r --argjson t0 "$rd_t0" --argjson kmax "$kmax" --argjson step "$kstep" '
    .[] as $s | range(0; $kmax + 1; $step) as $k |
    "/v1/readings?device_id=\($s.d | @uri)&parameter=\($s.p | @uri)&from=\($t0 + 60 * $k | todate | @uri)&limit=1000"' \
    "$out/api-series.json" | shuf --random-source=<(seeded) >"$out/api-paths-readings-distinct.all"
else
  say "POINTS=$POINTS: no page of 1,000 readings but the first; the distinct readings run is skipped (try DEVICES=2 POINTS=10000)"
  : >"$out/api-paths-readings-distinct.all"
fi
# The last 5,000 of each list warm the API up; the walk gets the rest.
for e in aggregates readings; do
  all=$out/api-paths-$e-distinct.all
  n=$(wc -l <"$all")
  if [ "$n" -gt 10000 ]; then
    head -n $((n - 5000)) "$all" >"$out/api-paths-$e-distinct.txt"
    tail -n 5000 "$all" >"$out/api-paths-$e-distinct.txt.warm"
  else
    [ "$n" = 0 ] || say "only $n distinct $e paths: the distinct $e run is skipped"
    : >"$out/api-paths-$e-distinct.txt"
  fi
done

scope=(-D any_device=true -D 'devices={}' -D any_param=true -D 'prefixes={}')
scope_v=(-v any_device=true -v "devices='{}'" -v any_param=true -v "prefixes='{}'")
agg_vars=(-D lo="$lo" -D hi="$hi" -D "buckets=$buckets" -D "from=$from" -D "to=$to" -D 'text_ids={}')

# The response cache off: every request below must run its SQL, as the
# pgbench runs beside it do (a series drawn twice would be a cache hit).
start_api bench_api 0

# One response of each endpoint, checked against the same SQL run with psql.
code=$(curl -sS -o "$out/api-check-aggregates.json" -w '%{http_code}' "$base$(head -1 "$out/api-paths-aggregates.txt")")
[ "$code" = 200 ] || { cat "$out/api-check-aggregates.json" >&2; die "GET /v1/aggregates answered $code"; }
read -r agg_source agg_bucket agg_points < <(jq -r '[.source, .bucket, (.series[0].points | length)] | @tsv' "$out/api-check-aggregates.json")
agg_rows=$(sql_rows bench/api-pgbench-aggregates.sql bench_api -v sid="$lo" -v "buckets='$buckets'" -v "from='$from'" -v "to='$to'" -v "text_ids='{}'")
say "GET /v1/aggregates $first_dev $first_param $from..$to: source $agg_source, bucket $agg_bucket, $agg_points points; the pgbench SQL returns $agg_rows rows"
[ "$agg_source" = rollup_1h ] || die "the API served the aggregates from $agg_source, but the pgbench script runs the rollup_1h query"
[ "$agg_points" = "$agg_rows" ] || say "WARNING: the API returned $agg_points points, the SQL $agg_rows rows"
req_vars=("${scope_v[@]}" -v sid="$lo" -v "device='$first_dev'" -v "parameter='$first_param'")
rows=$(sql_rows bench/api-pgbench-aggregates-request.sql bench_api "${req_vars[@]}" -v "params='{\"$first_param\"}'" \
  -v max_series=$((MAX_POINTS + 1)) -v "buckets='$buckets'" -v "from='$from'" -v "to='$to'" -v "text_ids='{}'")
[ "$rows" = $((agg_rows + 1)) ] || die "api-pgbench-aggregates-request.sql returns $rows rows, not the series and $agg_rows buckets"

code=$(curl -sS -o "$out/api-check-readings.json" -w '%{http_code}' "$base$(head -1 "$out/api-paths-readings.txt")")
[ "$code" = 200 ] || { cat "$out/api-check-readings.json" >&2; die "GET /v1/readings answered $code"; }
read -r rd_count rd_next < <(jq -r '[(.readings | length), (has("next_cursor"))] | @tsv' "$out/api-check-readings.json")
rd_rows=$(sql_rows bench/api-pgbench-readings.sql bench_api "${scope_v[@]}" -v sid="$lo" -v limit=1001)
say "GET /v1/readings $first_dev $first_param limit=1000: $rd_count readings, next_cursor: $rd_next; the pgbench SQL returns $rd_rows rows (limit 1001)"
[ "$rd_count" -gt 0 ] && [ "$rd_count" = "$((rd_rows < 1000 ? rd_rows : 1000))" ] || say "WARNING: readings and SQL rows disagree"
rows=$(sql_rows bench/api-pgbench-readings-request.sql bench_api "${req_vars[@]}" -v limit=1001)
[ "$rows" = $((rd_rows + 1)) ] || die "api-pgbench-readings-request.sql returns $rows rows, not the series and $rd_rows readings"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
baseline_runs=()
if want misses; then
run_wrk api-aggregates "$CLIENTS" "$out/api-paths-aggregates.txt"
run_pgbench pgbench-aggregates bench_api bench/api-pgbench-aggregates.sql "${agg_vars[@]}"
run_pgbench pgbench-aggregates-request bench_api bench/api-pgbench-aggregates-request.sql "${agg_vars[@]}" "${scope[@]}" \
  -D sid="$lo" -D "device=$first_dev" -D "params={\"$first_param\"}" -D max_series=$((MAX_POINTS + 1))
run_wrk api-readings "$CLIENTS" "$out/api-paths-readings.txt"
run_pgbench pgbench-readings bench_api bench/api-pgbench-readings.sql "${scope[@]}" -D lo="$lo" -D hi="$hi" -D limit=1001
run_pgbench pgbench-readings-request bench_api bench/api-pgbench-readings-request.sql "${scope[@]}" \
  -D sid="$lo" -D "device=$first_dev" -D "parameter=$first_param" -D limit=1001
stop_api

# The same miss runs with the baseline API, then the current one again,
# BASELINE_ROUNDS times, so that the two alternate (current, baseline,
# current, baseline, ...) and each baseline run compares with the current
# runs on either side of it: this machine's speed drifts by more than the
# differences measured, over minutes.
if [ -n "${BASELINE:-}" ]; then
  for k in $(seq "$BASELINE_ROUNDS"); do
    start_api bench_api 0 "$out/api-baseline"
    run_wrk "api-aggregates-baseline$k" "$CLIENTS" "$out/api-paths-aggregates.txt"
    run_wrk "api-readings-baseline$k" "$CLIENTS" "$out/api-paths-readings.txt"
    stop_api
    start_api bench_api 0
    run_wrk "api-aggregates-again$k" "$CLIENTS" "$out/api-paths-aggregates.txt"
    run_wrk "api-readings-again$k" "$CLIENTS" "$out/api-paths-readings.txt"
    api_base=$base
    start_floor
    [ "$k" != 1 ] || check_floor "$api_base" "$out/api-paths-aggregates.txt" "$out/api-paths-readings.txt"
    stop_api
    api_pid=$floor_pid base=$floor_base fresh_pid=
    run_wrk "floor-aggregates-round$k" "$CLIENTS" "$out/api-paths-aggregates.txt"
    run_wrk "floor-readings-round$k" "$CLIENTS" "$out/api-paths-readings.txt"
    stop_api
    baseline_runs+=("api-aggregates-baseline$k" "api-aggregates-again$k" "api-readings-baseline$k" "api-readings-again$k"
      "floor-aggregates-round$k" "floor-readings-round$k")
  done
fi
fi # misses
stop_api

# Distinct requests with the response cache on (step 4b).
distinct_runs=()
if want distinct; then
start_api bench_api 64
if [ -s "$out/api-paths-aggregates-distinct.txt" ]; then
  distinct_runs+=(api-aggregates-distinct pgbench-aggregates-distinct)
  run_wrk api-aggregates-distinct "$CLIENTS" "$out/api-paths-aggregates-distinct.txt" seq
  run_pgbench pgbench-aggregates-distinct bench_api bench/api-pgbench-aggregates-distinct.sql "${scope[@]}" \
    -D lo="$lo" -D hi="$hi" -D 'text_ids={}' -D base="$agg_base" -D hmax="$HMAX"
fi
if [ -s "$out/api-paths-readings-distinct.txt" ]; then
  distinct_runs+=(api-readings-distinct pgbench-readings-distinct)
  run_wrk api-readings-distinct "$CLIENTS" "$out/api-paths-readings-distinct.txt" seq
  run_pgbench pgbench-readings-distinct bench_api bench/api-pgbench-readings-distinct.sql "${scope[@]}" \
    -D lo="$lo" -D hi="$hi" -D t0="$rd_t0" -D kmax="$kmax" -D limit=1001
fi
# The floor (bench/api-floor.go) on the same paths: its answers must equal
# the API's (checked while the API still runs), then it takes its place.
if [ -n "$api_pid" ]; then
  api_base=$base
  start_floor
  check_floor "$api_base" "$out/api-paths-aggregates-distinct.txt.warm" "$out/api-paths-readings-distinct.txt.warm"
  stop_api
  api_pid=$floor_pid base=$floor_base fresh_pid=
  for e in aggregates readings; do
    [ -s "$out/api-paths-$e-distinct.txt" ] || continue
    distinct_runs+=("floor-$e-distinct")
    run_wrk "floor-$e-distinct" "$CLIENTS" "$out/api-paths-$e-distinct.txt" seq
  done
fi
stop_api
for run in api-aggregates-distinct api-readings-distinct; do
  [ -n "${R[$run.n]:-}" ] || continue
  paths=$(wc -l <"$out/api-paths-${run#api-}.txt")
  [ "${R[$run.n]}" -le "$paths" ] ||
    say "WARNING: $run made ${R[$run.n]} requests over $paths distinct paths: some repeated, and the cache may have answered them"
done
fi # distinct

# ---------------------------------------------------------------- dashboard (4c)

if want dashboard; then
say "dashboard: copying bench_api to bench_dash"
psql -X -q "$dsn" -c "DROP DATABASE IF EXISTS bench_dash WITH (FORCE)" -c "CREATE DATABASE bench_dash TEMPLATE bench_api"
# Panels: PANELS/2 aggregates and PANELS/2 readings pages, over the first
# PANELS/2 served series (again with another agg when there are fewer).
half=$((PANELS / 2))
aggs=(avg max min count sum first last stddev)
: >"$out/api-paths-dashboard.txt"
for ((i = 0; i < half; i++)); do
  k=$((i % nseries))
  agg=${aggs[$(((i / nseries) % ${#aggs[@]}))]}
  jq -r --argjson k "$k" --arg from "$from" --arg to "$to" --arg agg "$agg" \
    '.[$k] | "/v1/aggregates?device_id=\(.d | @uri)&parameter=\(.p | @uri)&from=\($from | @uri)&to=\($to | @uri)&bucket=1h&agg=\($agg)"' \
    "$out/api-series.json" >>"$out/api-paths-dashboard.txt"
  jq -r --argjson k "$k" --argjson l $((1000 - 10 * (i / nseries))) \
    '.[$k] | "/v1/readings?device_id=\(.d | @uri)&parameter=\(.p | @uri)&limit=\($l)"' "$out/api-series.json" >>"$out/api-paths-dashboard.txt"
done
dash_hi=$((lo + (half < nseries ? half : nseries) - 1))
# The load: readings 30 s after each of the first 200 of every series (the
# generator's types per parameter are the dataset's), so every panel changes.
dash_file=$out/dashboard-load-${DEVICES}x${PARAMS}.json
"$out/ingest" gen -seed 2 -devices "$DEVICES" -params "$PARAMS" -points 200 -interval 1m \
  -text-share 0.3 -start 2024-01-01T00:00:30.000001+02:00 -format reference -o "$dash_file"
dash_loaded=$((DEVICES * PARAMS * 200))
# pgbench first, on the dataset as loaded (rollups materialized): the panels'
# SQL at its cheapest, as the API runs it until the load.
CLIENTS=$VIEWERS run_pgbench pgbench-dashboard bench_dash "bench/api-pgbench-aggregates.sql@1" \
  -f "bench/api-pgbench-readings.sql@1" "${agg_vars[@]}" "${scope[@]}" -D lo="$lo" -D hi="$dash_hi" -D limit=1001
rm -rf "$out/dash-wrong"
# Both APIs sign cursors with one key (SENSORHUB_CURSOR_KEY, as replicas
# must), so that their readings pages are the same bytes.
start_api bench_dash 0
fresh_pid=$api_pid fresh_base=$base api_pid=
rm -rf "$out/dash-before" && mkdir -p "$out/dash-before"
n=0
while read -r p; do
  code=$(curl -sS -o "$out/dash-before/panel-$n.json" -w '%{http_code}' "$fresh_base$p")
  [ "$code" = 200 ] || die "dashboard panel $p answered $code"
  n=$((n + 1))
done <"$out/api-paths-dashboard.txt"
start_api bench_dash 64
say "dashboard: $VIEWERS viewers x $PANELS panels, ${secs} s, loading $dash_loaded readings midway"
measure dashboard "$out/dashboard-client" -base "$base" -fresh-url "$fresh_base" -panels "$out/api-paths-dashboard.txt" \
  -viewers "$VIEWERS" -duration "${secs}s" -fresh-before "$out/dash-before" -dump "$out/dash-wrong" -- \
  "$out/ingest" load -database-url "$(db bench_dash)" -log-format json "$dash_file"
line=$(grep '^DASH ' "$out/api-dashboard.out") || die "dashboard: no summary"
eval "$(sed 's/^DASH //; s/ /\n/g; s/^/D_/mg' <<<"$line")"
R[dashboard.n]=$D_requests
R[dashboard.rate]=$D_rate
stop_api
kill -TERM "$fresh_pid" 2>/dev/null || true
wait "$fresh_pid" 2>/dev/null || true
fresh_pid=
psql -X -q "$dsn" -c "DROP DATABASE bench_dash WITH (FORCE)"
fi # dashboard

# ---------------------------------------------------------------- bench_ref

legacy_clients=()
legacy_extra=() # the runs at 8 clients with gzip and with the cache
if [ "$have_ref" = 1 ] && want legacy; then
  start_api bench_ref 0
  echo /api/v1/core/process_request >"$out/api-paths-legacy.txt"
  code=$(curl -sS -o "$out/api-check-legacy.json" -w '%{http_code}' "$base/api/v1/core/process_request")
  [ "$code" = 200 ] || { head -c 500 "$out/api-check-legacy.json" >&2; die "process_request answered $code"; }
  legacy_bytes=$(stat -c %s "$out/api-check-legacy.json")
  legacy_items=$(jq '.graph_data | length' "$out/api-check-legacy.json")
  say "process_request: $legacy_items readings, $legacy_bytes bytes, message: $(jq -r .message "$out/api-check-legacy.json")"
  for c in "$CLIENTS" 1 8; do
    [[ " ${legacy_clients[*]} " == *" $c "* ]] || legacy_clients+=("$c")
  done
  for c in "${legacy_clients[@]}"; do
    run_wrk "legacy-$c" "$c" "$out/api-paths-legacy.txt"
  done
  run_wrk legacy-gzip-8 8 "$out/api-paths-legacy.txt" -H "Accept-Encoding: gzip"
  legacy_extra=(gzip-8 cached-8 cached-gzip-8)
  stop_api
  # The same at 8 clients with the response cache on (its default size), as
  # a dashboard's repeated panels meet it; with and without gzip.
  start_api bench_ref 64
  run_wrk legacy-cached-8 8 "$out/api-paths-legacy.txt"
  run_wrk legacy-cached-gzip-8 8 "$out/api-paths-legacy.txt" -H "Accept-Encoding: gzip"
  stop_api
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

report() {
  local f=%.2f
  echo "sensorhub API benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $ncpu CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load average $load_start at the start, $load_end at the end"
  echo "software: $(go env GOVERSION), PostgreSQL $(psql -X -tA "$dsn" -c 'SHOW server_version'), wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}')"
  echo "flavor: $FLAVOR"
  echo "bench_api: $N readings ($DEVICES devices x $PARAMS parameters x $POINTS points, one a minute); requests draw one of the $nseries numeric series $lo..$hi"
  [ -z "$others" ] || echo "NOTE: other sessions used the cluster (databases $others) when the runs began; their work counts as PostgreSQL's CPU below"
  echo "runs: $CLIENTS clients, $secs s each (the API after ${warm} s of warm-up); API pool $POOL_SIZE connections, auth off, access log on;"
  echo "      pgbench -M prepared -c $CLIENTS -j $((CLIENTS < 2 ? CLIENTS : 2)) as $READER, the API's session settings"
  echo
  echo "== API (wrk) vs pgbench running the API's SQL, $CLIENTS clients"
  printf '%-36s %9s %8s %8s %6s | %9s %8s %8s %8s | %s\n' endpoint "API req/s" "p50 ms" "p99 ms" errors "pgbench" "mean ms" "p50 ms" "p99 ms" "API/pgbench"
  row() { # LABEL API_RUN PGBENCH_RUN TARGET
    local a=$2 p=$3 ratio verdict=""
    ratio=$(awk -v a="${R[$a.rate]}" -v p="${R[$p.rate]}" 'BEGIN {printf "%.2f", a / p}')
    if [ -n "$4" ]; then
      verdict=$(awk -v r="$ratio" -v t="$4" 'BEGIN {print (r >= t ? "meets" : "MISSES") " the target >= " t}')
    fi
    printf "%-36s %9.1f %8.2f %8.2f %6s | %9.1f %8.2f %8.2f %8.2f | %s %s\n" "$1" \
      "${R[$a.rate]}" "${R[$a.p50]}" "${R[$a.p99]}" "${R[$a.errors]}" \
      "${R[$p.rate]}" "${R[$p.mean]}" "${R[$p.p50]}" "${R[$p.p99]}" "$ratio" "$verdict"
  }
  if want misses; then
  row "/v1/aggregates 7d x 1h (query)" api-aggregates pgbench-aggregates 0.80
  row "  vs all SQL of a request" api-aggregates pgbench-aggregates-request ""
  row "/v1/readings limit=1000 (query)" api-readings pgbench-readings ""
  row "  vs all SQL of a request" api-readings pgbench-readings-request ""
  echo "(pgbench tps: transactions of its script per second; 'query' runs the endpoint's main statement,"
  echo " 'all SQL of a request' the series lookup and that statement, on one series.)"
  fi
  if [ ${#distinct_runs[@]} -gt 0 ]; then
    echo
    echo "== Distinct requests: no path twice, each another series and window, response cache on (64 MiB),"
    echo "   vs pgbench drawing the same series and windows (bench/api-pgbench-*-distinct.sql)"
    printf '%-36s %9s %8s %8s %6s | %9s %8s %8s %8s | %s\n' endpoint "API req/s" "p50 ms" "p99 ms" errors "pgbench" "mean ms" "p50 ms" "p99 ms" "API/pgbench"
    [ -z "${R[api-aggregates-distinct.n]:-}" ] || row "/v1/aggregates 1h x 144-168 h" api-aggregates-distinct pgbench-aggregates-distinct 0.80
    [ -z "${R[floor-aggregates-distinct.n]:-}" ] || row "  api-floor: net/http + pgx only" floor-aggregates-distinct pgbench-aggregates-distinct ""
    [ -z "${R[api-readings-distinct.n]:-}" ] || row "/v1/readings 1,000 from a minute" api-readings-distinct pgbench-readings-distinct 0.80
    [ -z "${R[floor-readings-distinct.n]:-}" ] || row "  api-floor: net/http + pgx only" floor-readings-distinct pgbench-readings-distinct ""
  fi
  if [ -n "${R[dashboard.n]:-}" ]; then
  echo
  echo "== Dashboard: $VIEWERS viewers x $PANELS panels refreshing with no pause, response cache 64 MiB,"
  echo "   $dash_loaded readings loaded midway into every panel's series (bench_dash); pgbench ran before the load"
  awk -v r="${R[dashboard.rate]}" -v p="${R[pgbench-dashboard.rate]}" -v e="$D_errors" -v v="$VIEWERS" 'BEGIN {
    printf "API answers/s %.1f (errors %d); pgbench on the panels'"'"' SQL at %d clients: %.1f tps; API/pgbench %.1fx (target >= 5: %s)\n",
      r, e, v, p, r / p, (r / p >= 5 ? "meets" : "MISSES") }'
  echo "versions $D_first_version -> $D_final_version; answers at the first version $D_answers_first, in between $D_answers_between, at the final $D_answers_final;"
  echo "answers unequal to the fresh computation at their version: $((D_wrong_first + D_wrong_final)) (must be 0); the load took ${D_load_s} s;"
  echo "answers of an older version received after the load exited: $D_stale_after_load, the last ${D_staleness_ms} ms after it (the staleness window);"
  echo "of requests sent after it: $D_stale_sent_after_load, the last sent ${D_staleness_sent_ms} ms after it"
  fi
  if [ ${#baseline_runs[@]} -gt 0 ]; then
    echo
    echo "== API CPU per request, this API vs the baseline $BASELINE_NAME: response cache off, the same paths,"
    echo "   $BASELINE_ROUNDS rounds; each round's ratio takes the mean of this API's runs before and after the baseline's;"
    echo "   the median of the rounds' ratios is the figure"
    printf '%-28s %14s %14s %9s   %s\n' endpoint "this ms/req" "baseline" "median" "ratio of each round"
    for e in aggregates readings; do
      cur=() base=()
      cur+=("$(awk -v a="${R[api-$e.cpu_api]}" -v n="${R[api-$e.n]}" 'BEGIN {print 1000 * a / n}')")
      for k in $(seq "$BASELINE_ROUNDS"); do
        cur+=("$(awk -v a="${R[api-$e-again$k.cpu_api]}" -v n="${R[api-$e-again$k.n]}" 'BEGIN {print 1000 * a / n}')")
        base+=("$(awk -v a="${R[api-$e-baseline$k.cpu_api]}" -v n="${R[api-$e-baseline$k.n]}" 'BEGIN {print 1000 * a / n}')")
      done
      awk -v e="/v1/$e" -v cur="${cur[*]}" -v base="${base[*]}" 'BEGIN {
        nc = split(cur, c, " "); nb = split(base, b, " ")
        for (k = 1; k <= nb; k++) { r[k] = (c[k] + c[k + 1]) / 2 / b[k]; rs = rs sprintf(" %.2f", r[k]); sc += c[k]; sb += b[k] }
        sc += c[nc]
        for (i = 1; i <= nb; i++) for (j = i + 1; j <= nb; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
        med = nb % 2 ? r[(nb + 1) / 2] : (r[nb / 2] + r[nb / 2 + 1]) / 2
        printf "%-28s %14.3f %14.3f %8.2fx  %s   (%.0f%% less CPU per request)\n", e, sc / nc, sb / nb, med, rs, 100 * (1 - med) }'
    done
    # The floor, run after this API in every round: what a server of net/http
    # and pgx alone spends on the same aggregates paths, against the baseline.
    for e in aggregates readings; do
    fl=() base=()
    for k in $(seq "$BASELINE_ROUNDS"); do
      fl+=("$(awk -v a="${R[floor-$e-round$k.cpu_api]}" -v n="${R[floor-$e-round$k.n]}" 'BEGIN {print 1000 * a / n}')")
      base+=("$(awk -v a="${R[api-$e-baseline$k.cpu_api]}" -v n="${R[api-$e-baseline$k.n]}" 'BEGIN {print 1000 * a / n}')")
    done
    awk -v e="/v1/$e api-floor" -v fl="${fl[*]}" -v base="${base[*]}" 'BEGIN {
      nb = split(base, b, " "); split(fl, f, " ")
      for (k = 1; k <= nb; k++) { r[k] = f[k] / b[k]; rs = rs sprintf(" %.2f", r[k]); sf += f[k]; sb += b[k] }
      for (i = 1; i <= nb; i++) for (j = i + 1; j <= nb; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
      med = nb % 2 ? r[(nb + 1) / 2] : (r[nb / 2] + r[nb / 2 + 1]) / 2
      printf "%-28s %14.3f %14.3f %8.2fx  %s   (bench/api-floor.go: net/http + pgx, no framework)\n", e, sf / nb, sb / nb, med, rs }'
    done
  fi
  echo
  echo "== CPU time per request or transaction, ms, from /proc ($ncpu CPUs; PostgreSQL: the whole cluster; other: the rest"
  echo "   of the machine: other processes, e.g. other sessions' work, and interrupts on otherwise idle CPUs)"
  printf '%-28s %8s %11s %10s %8s %13s\n' run API PostgreSQL "load gen" other "machine busy"
  for run in api-aggregates pgbench-aggregates pgbench-aggregates-request api-readings pgbench-readings pgbench-readings-request \
    "${baseline_runs[@]}" "${distinct_runs[@]}" dashboard pgbench-dashboard $(for c in "${legacy_clients[@]}" "${legacy_extra[@]}"; do echo "legacy-$c"; done); do
    [ -n "${R[$run.n]:-}" ] || continue
    awk -v run="$run" -v n="${R[$run.n]}" -v api="${R[$run.cpu_api]}" -v pg="${R[$run.cpu_pg]}" -v cl="${R[$run.cpu_client]}" \
      -v busy="${R[$run.cpu_busy]}" -v pct="${R[$run.busy_pct]}" 'BEGIN {
        other = busy - api - pg - cl; if (other < 0) other = 0
        printf "%-28s %8.3f %11.3f %10.3f %8.3f %12.0f%%\n", run, 1000 * api / n, 1000 * pg / n, 1000 * cl / n, 1000 * other / n, pct }'
  done
  if [ ${#legacy_clients[@]} -gt 0 ]; then
    echo
    echo "== /api/v1/core/process_request on bench_ref: the whole reference dataset ($legacy_items readings,"
    awk -v b="$legacy_bytes" 'BEGIN {printf "   %.2f MB = %d bytes of JSON per response); the original Flask service: 7 req/s at 1 client,\n", b / 1e6, b}'
    echo "   5.6-5.9 req/s at 8 (3.7 MB per response; ../shared/datasets/sensor-target/README.md)"
    printf '%-8s %9s %8s %8s %6s %9s %22s\n' clients "req/s" "p50 ms" "p99 ms" errors "MB/s" "vs original Flask"
    for c in "${legacy_clients[@]}" "${legacy_extra[@]}"; do
      local run=legacy-$c vs="-"
      case $c in
      *8) vs=$(awk -v r="${R[$run.rate]}" -v lo="$FLASK_8_LO" -v hi="$FLASK_8_HI" 'BEGIN {printf "%.0f-%.0fx (5.6-5.9)", r / hi, r / lo}') ;;
      esac
      case $c in
      1) vs=$(awk -v r="${R[$run.rate]}" -v f="$FLASK_1" 'BEGIN {printf "%.0fx (7 req/s)", r / f}') ;;
      8) vs=$(awk -v r="${R[$run.rate]}" -v lo="$FLASK_8_LO" -v hi="$FLASK_8_HI" 'BEGIN {printf "%.0f-%.0fx (5.6-5.9)", r / hi, r / lo}') ;;
      esac
      awk -v c="$c" -v r="${R[$run.rate]}" -v p50="${R[$run.p50]}" -v p99="${R[$run.p99]}" -v e="${R[$run.errors]}" \
        -v b="${R[$run.bytes]}" -v vs="$vs" 'BEGIN {printf "%-8s %9.1f %8.1f %8.1f %6d %9.1f %22s\n", c, r, p50, p99, e, r * b / 1e6, vs}'
    done
  fi
}
echo >&2
report | tee "$out/api-results.txt"
