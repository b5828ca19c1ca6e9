#!/usr/bin/env bash
# Push benchmark (not a test): in one run, on one cluster, it loads a
# generated NDJSON dataset (1M readings by default) with the batch job
# `ingest load`, then pushes exactly the same readings to the write service
# `ingest serve` (POST /v1/write) from concurrent HTTP clients, and prints
# rows/s of each, their ratio (target: push-1000 / job >= 0.7), the pushes'
# acknowledgement latencies, how soon the read API shows a pushed reading,
# and the write service's peak RSS.
#
# What is measured, each time into a fresh migrated database:
#   - job: `ingest load -workers WORKERS -rollups ROLLUPS` of the NDJSON file,
#     readings / wall time until it exits (with -rollups defer, the default,
#     every API answer is exact from then on).
#   - push-1000: `ingest serve -auth off -addr 127.0.0.1:0` (a port the kernel
#     picks, read from its log; SERVE_FLAGS adds flags, e.g. -group-wait 2ms),
#     then bench/push-client.go posts the same readings, in file order, in
#     batches of BATCH lines of application/x-ndjson from CLIENTS concurrent
#     clients, each taking the next batch from a shared counter; a 503 is
#     sent again after its Retry-After and counted as a retry. Rate: readings
#     / (last acknowledgement - first request); latency of a batch: first
#     send to its 200 (retries included), p50 and p99. The client checks
#     that the answers' `inserted` add up to the readings and none was
#     rejected (only a batch sent again after a 503 may count readings as
#     duplicates: a 503 can come after its commit); the script checks
#     SELECT count(*) FROM sensorhub.readings.
#     The service materializes the pushed ranges' rollups in the background
#     (-refresh-interval, 1s) while it is pushed to, work the job leaves to
#     after its exit with -rollups defer; SERVE_FLAGS='-refresh-interval 1h'
#     leaves it out.
#   - freshness, on the push-1000 database once its rollups are materialized
#     (by `ingest refresh`, untimed): the read API (`api serve -auth off
#     -addr 127.0.0.1:0 -admin-addr=`, its response cache on as by default,
#     connected as the cluster's superuser) runs beside the write service.
#     The client posts PROBES single-reading bodies of a new series
#     (bench.push.probe / probe.p001, one a minute from 2024-06-01, outside
#     the dataset), one at a time. Before each it GETs the two answers below
#     once, so that the cache holds them without the reading; after the 200
#     two pollers GET, back to back without sleeping, /v1/readings for the
#     series and [t, t+1m) until the reading is listed, and /v1/aggregates
#     ?bucket=1m&agg=count for the same window until the count includes it.
#     Delay: from the acknowledgement to the first answer that shows it;
#     p50, p99 and max, and the single-reading acknowledgement latency.
#   - push-10: the same as push-1000 with batches of SMALL_BATCH over the
#     first SMALL_READINGS readings of the file, so that it ends in time.
# One untimed warm-up of the job and of the pushes comes first; then ROUNDS
# rounds of the measured pair in the order A B, B A, A B, ... (job, pushes,
# pushes, job, ...), each on fresh databases, after a CHECKPOINT. The summary
# gives each figure's median over the rounds (rates from the median wall
# time), the largest max, retry count and RSS, and ratios of medians. On
# TimescaleDB the bench databases' background policy jobs are paused, as
# bench/ingest.sh does; the write service's own refresher still runs. Peak
# RSS of `ingest serve` and `ingest load` is /usr/bin/time -f '%M' of them.
# The client runs on the same machine and competes for its CPUs; the CPU
# seconds it, the write service and the job spent are in the summary.
#
#   bench/push.sh                        # 1M readings (20 devices x 50 params x 1,000 points), plain PostgreSQL
#   POINTS=10000 bench/push.sh           # 10M (DEVICES, PARAMS likewise)
#   FLAVOR=timescaledb bench/push.sh     # sensorhub's TimescaleDB schema
#   ROUNDS=3 bench/push.sh               # measured rounds (default 2), after the warm-up
#   CLIENTS=64 BATCH=5000 bench/push.sh  # other push shapes
#   DEVICES=4 PARAMS=5 POINTS=500 SMALL_READINGS=2000 PROBES=5 ROUNDS=1 bench/push.sh   # a smoke test
#
# Settings, from the environment (defaults in brackets): FLAVOR [postgres],
# ROUNDS [2], DEVICES [20], PARAMS [50], POINTS [1000], WORKERS [2, the job's
# -workers], ROLLUPS [defer, the job's -rollups], CLIENTS [32], BATCH [1000],
# SMALL_BATCH [10], SMALL_READINGS [100000], PROBES [50], SERVE_FLAGS [none],
# SENSORHUB_CHUNK_INTERVAL [7 days, migrate's default].
#
# FLAVOR is postgres (default) or timescaledb. TimescaleDB needs a PostgreSQL
# that has the extension: $SENSORHUB_PG_BINDIR if set, else a copy made by
# ../shared/timescaledb/make-pg.sh beside the checkout into bench/out/pg-tsdb
# (bench/flavor.sh). The cluster is bench/out/cluster-$FLAVOR, shared with
# bench/ingest.sh and bench/api.sh: started when it is not running (and then
# stopped at the end), else reused and left running; this script's databases
# are bench_push_job and bench_push, dropped at the end.
# Needs: Go, the PostgreSQL server binaries (initdb, pg_ctl) and psql on PATH
# (or $SENSORHUB_PG_BINDIR), /usr/bin/time, ps. All traffic goes to
# 127.0.0.1. Everything it writes stays under bench/out/ (git-ignored): logs
# bench/out/push-*.log, the client's JSON lines bench/out/push-*.json, the
# summary also in bench/out/push-summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

FLAVOR=${FLAVOR:-postgres}
ROUNDS=${ROUNDS:-2}
DEVICES=${DEVICES:-20}
PARAMS=${PARAMS:-50}
POINTS=${POINTS:-1000}
WORKERS=${WORKERS:-2}
ROLLUPS=${ROLLUPS:-defer}
CLIENTS=${CLIENTS:-32}
BATCH=${BATCH:-1000}
SMALL_BATCH=${SMALL_BATCH:-10}
SMALL_READINGS=${SMALL_READINGS:-100000}
PROBES=${PROBES:-50}
SERVE_FLAGS=${SERVE_FLAGS:-}
# Chunk (TimescaleDB) or partition (PostgreSQL) span; migrate's default.
CHUNK=${SENSORHUB_CHUNK_INTERVAL:-7 days}
out=bench/out
N=$((DEVICES * PARAMS * POINTS))

die() { echo "bench/push.sh: $*" >&2; exit 1; }
for v in ROUNDS DEVICES PARAMS POINTS WORKERS CLIENTS BATCH SMALL_BATCH SMALL_READINGS PROBES; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
# The push of small batches covers a prefix of the readings.
NS=$((SMALL_READINGS < N ? SMALL_READINGS : N))
read -r -a serve_flags <<<"$SERVE_FLAGS"
for tool in go psql ps /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install postgresql-client procps time)"
done

mkdir -p "$out"
chmod 755 "$out"

# A PostgreSQL with TimescaleDB for FLAVOR=timescaledb, unless one is given.
# shellcheck source=bench/flavor.sh
. bench/flavor.sh

echo "building" >&2
go build -o "$out/ingest" ./services/ingest
go build -o "$out/migrate" ./db/cmd/migrate
go build -o "$out/localpg" ./db/cmd/localpg
go build -o "$out/api" ./services/api
go build -o "$out/push-client" bench/push-client.go

data="$out/readings-${DEVICES}x${PARAMS}x${POINTS}.ndjson"
if [ ! -s "$data" ]; then
  echo "generating $N readings into $data" >&2
  "$out/ingest" gen -seed 1 -devices "$DEVICES" -params "$PARAMS" -points "$POINTS" -interval 1m \
    -text-share 0.3 -start 2024-01-01T00:00:00.000001+02:00 -format ndjson -o "$data.tmp"
  mv "$data.tmp" "$data"
fi

# One cluster folder per flavor: localpg reuses a running cluster, and the
# one of the other flavor may preload other libraries.
pgdir="$out/cluster-$FLAVOR"
started_pg=0
if ! dsn=$("$out/localpg" status -dir "$pgdir" -db postgres 2>/dev/null); then
  dsn=$("$out/localpg" start -dir "$pgdir" -port 0 -db postgres)
  started_pg=1
fi

serve_pid= # the /usr/bin/time wrapping `ingest serve`
api_pid=
# stop_pid PID: SIGTERM, then wait for it (a clean shutdown).
stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# stop_serve: SIGTERM to `ingest serve` itself (GNU time passes no signal
# on), then wait for time to write the RSS.
stop_serve() {
  local kid
  if [ -n "$serve_pid" ]; then
    for kid in $(ps -o pid= --ppid "$serve_pid" 2>/dev/null || true); do
      kill -TERM "$kid" 2>/dev/null || true
    done
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=
  fi
}
stop_api() { if [ -n "$api_pid" ]; then stop_pid "$api_pid"; api_pid=; fi; }
cleanup() {
  stop_api
  stop_serve
  if [ "$started_pg" = 1 ]; then
    "$out/localpg" stop -dir "$pgdir" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

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
  fresh_db "$1"
  "$out/migrate" -database-url "$(db "$1")" -flavor "$FLAVOR" -chunk-interval "$CHUNK" 2>"$out/push-migrate.log" ||
    { cat "$out/push-migrate.log" >&2; die "migrate -flavor $FLAVOR of $1 failed"; }
  if [ "$FLAVOR" = timescaledb ]; then
    q -At "$(db "$1")" -c "SELECT count(*) FROM timescaledb_information.jobs j, LATERAL alter_job(j.job_id, scheduled => false) WHERE j.job_id >= 1000" >/dev/null
  fi
}
count() { q -At "$(db "$1")" -c "$2"; }

# Figures of the measured rounds, one value a line per file.
res="$out/push-rounds"
rm -rf "$res" "$out"/push-*.log "$out"/push-*.json
mkdir -p "$res"
record() { if [ "$measured" = 1 ]; then echo "$2" >>"$res/$1"; fi; }
median() {
  [ -s "$res/$1" ] || { echo nan; return; }
  sort -g "$res/$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maximum() { if [ -s "$res/$1" ]; then sort -g "$res/$1" | tail -n1; else echo nan; fi; }
total() { if [ -s "$res/$1" ]; then awk '{ s += $1 } END { print s }' "$res/$1"; else echo nan; fi; }
# log_field FILE MSG KEY: an integer field of a JSON log's last line MSG.
log_field() { grep -F "\"msg\":\"$2\"" "$1" | tail -n1 | sed -nE "s/.*\"$3\":([0-9]+).*/\1/p"; }
# jnum FILE KEY: a number of the client's JSON line (keys are unique in it).
jnum() { sed -nE "s/.*\"$2\":(-?[0-9][0-9.eE+-]*).*/\1/p" "$1" | head -n1; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
cpu() { awk '{ printf "%.2f", $2 + $3 }' "$1"; }

# start_serve DB LOG: `ingest serve` on DB under /usr/bin/time; sets serve_url.
start_serve() {
  local log=$2 deadline=$((SECONDS + 30)) addr=
  /usr/bin/time -f '%M %U %S' -o "$out/push-serve.time" \
    "$out/ingest" serve -database-url "$(db "$1")" -auth off -addr 127.0.0.1:0 -log-format json "${serve_flags[@]}" \
    >"$log" 2>&1 &
  serve_pid=$!
  while [ -z "$addr" ]; do
    kill -0 "$serve_pid" 2>/dev/null || { tail -n 20 "$log" >&2; serve_pid=; die "ingest serve exited (log: $log)"; }
    [ $SECONDS -lt $deadline ] || { tail -n 20 "$log" >&2; die "ingest serve did not listen within 30 s (log: $log)"; }
    sleep 0.1
    addr=$(grep -F '"msg":"write service listening"' "$log" | sed -nE 's/.*"addr":"([^"]+)".*/\1/p' | head -n1 || true)
  done
  [[ $addr == 127.0.0.1:* ]] || die "ingest serve listens on $addr, not on 127.0.0.1"
  serve_url="http://$addr/v1/write"
}

# start_api DB LOG: the read API on DB, response cache on (its default); sets api_url.
start_api() {
  local log=$2 deadline=$((SECONDS + 30)) addr=
  "$out/api" serve -database-url "$(db "$1")" -auth off -addr 127.0.0.1:0 -admin-addr= -log-format json >"$log" 2>&1 &
  api_pid=$!
  while [ -z "$addr" ]; do
    kill -0 "$api_pid" 2>/dev/null || { tail -n 20 "$log" >&2; api_pid=; die "the API exited (log: $log)"; }
    [ $SECONDS -lt $deadline ] || { tail -n 20 "$log" >&2; die "the API did not listen within 30 s (log: $log)"; }
    sleep 0.1
    addr=$(grep -F '"msg":"listening"' "$log" | grep -F '"server":"api"' | sed -nE 's/.*"addr":"([^"]+)".*/\1/p' | head -n1 || true)
  done
  [[ $addr == 127.0.0.1:* ]] || die "the API listens on $addr, not on 127.0.0.1"
  api_url="http://$addr"
}

# push LABEL NAME BATCH READINGS: one push run, the client's JSON line in
# bench/out/push-LABEL-NAME.json; checks the database's count.
push() {
  local label=$1 name=$2 size=$3 n=$4 json="$out/push-$1-$2.json" stored
  /usr/bin/time -f '%e %U %S' -o "$out/push-client.time" \
    "$out/push-client" -url "$serve_url" -file "$data" -batch "$size" -clients "$CLIENTS" -limit "$n" \
    >"$json" 2>"$out/push-client-$label-$name.log" ||
    { cat "$out/push-client-$label-$name.log" >&2; die "push-client failed ($name; log: $out/push-client-$label-$name.log)"; }
  stored=$(count bench_push "SELECT count(*) FROM sensorhub.readings")
  [ "$stored" = "$n" ] || die "after the $name push sensorhub.readings holds $stored rows, not $n"
  echo "[$label]   $(jnum "$json" wall_s) s, $(jnum "$json" rows_per_s) rows/s, p50 $(jnum "$json" p50_ms) ms, p99 $(jnum "$json" p99_ms) ms, $(jnum "$json" requests) requests, $(jnum "$json" retries) retries ($(jnum "$json" retried_duplicates) readings found stored on a retry)" >&2
  record "$name"_s "$(jnum "$json" wall_s)"
  record "$name"_p50 "$(jnum "$json" p50_ms)"
  record "$name"_p99 "$(jnum "$json" p99_ms)"
  record "$name"_requests "$(jnum "$json" requests)"
  record "$name"_retries "$(jnum "$json" retries)"
  record "$name"_client_cpu "$(cpu "$out/push-client.time")"
}

# A: the batch job into a fresh database, until it exits.
run_job() {
  local label=$1 t0 t1 wall rss inserted
  migrate_db bench_push_job
  checkpoint
  echo "[$label] ingest load ($WORKERS workers, -rollups $ROLLUPS)" >&2
  t0=$(now)
  /usr/bin/time -f '%M %U %S' -o "$out/push-job.time" \
    "$out/ingest" load -database-url "$(db bench_push_job)" -workers "$WORKERS" -rollups "$ROLLUPS" -format ndjson \
    -log-format json -rejects "$out/push-rejects.ndjson" "$data" \
    >"$out/push-job-$label.summary" 2>"$out/push-job-$label.log" ||
    { tail -n 20 "$out/push-job-$label.log" >&2; die "ingest load failed (log: $out/push-job-$label.log)"; }
  t1=$(now)
  read -r rss _ <"$out/push-job.time"
  wall=$(secs "$t0" "$t1")
  inserted=$(log_field "$out/push-job-$label.log" "ingest finished" inserted)
  [ "$inserted" = "$N" ] || die "ingest inserted ${inserted:-?} of $N readings (log: $out/push-job-$label.log)"
  [ "$(count bench_push_job "SELECT count(*) FROM sensorhub.readings")" = "$N" ] || die "sensorhub.readings does not hold $N rows after ingest load"
  drop_db bench_push_job
  echo "[$label]   ${wall} s, $(awk -v n="$N" -v s="$wall" 'BEGIN { printf "%.0f", n / s }') rows/s" >&2
  record job_s "$wall"
  record job_rss_kb "$rss"
  record job_cpu "$(cpu "$out/push-job.time")"
}

# B: the pushes, each into a fresh database, and the freshness probes.
run_push() {
  local label=$1 json="$out/push-$1-probe.json" deadline pending rss
  migrate_db bench_push
  checkpoint
  start_serve bench_push "$out/push-serve-$label-1000.log"
  echo "[$label] push of $N readings, batches of $BATCH, $CLIENTS clients" >&2
  push "$label" push1000 "$BATCH" "$N"

  # Freshness on a quiet service: the pushed ranges' rollups materialized
  # first (by `ingest refresh`, which the service's own refresher would do
  # within its interval; SERVE_FLAGS may have made that an hour).
  "$out/ingest" refresh -database-url "$(db bench_push)" -log-format json >/dev/null 2>>"$out/push-refresh.log" ||
    die "ingest refresh of bench_push failed (log: $out/push-refresh.log)"
  start_api bench_push "$out/push-api-$label.log"
  echo "[$label] freshness: $PROBES single-reading pushes, read API polled until each shows" >&2
  "$out/push-client" -url "$serve_url" -probe-api "$api_url" -probes "$PROBES" >"$json" 2>"$out/push-client-$label-probe.log" ||
    { cat "$out/push-client-$label-probe.log" >&2; die "push-client probes failed (log: $out/push-client-$label-probe.log)"; }
  stop_api
  stop_serve
  read -r rss _ <"$out/push-serve.time"
  record serve1000_rss_kb "$rss"
  record serve1000_cpu "$(cpu "$out/push-serve.time")"
  echo "[$label]   readings p50 $(jnum "$json" readings_p50_ms) ms, max $(jnum "$json" readings_max_ms) ms; aggregates p50 $(jnum "$json" aggregates_p50_ms) ms, max $(jnum "$json" aggregates_max_ms) ms" >&2
  for k in ack_p50_ms ack_p99_ms readings_p50_ms readings_p99_ms readings_max_ms readings_first_poll \
    aggregates_p50_ms aggregates_p99_ms aggregates_max_ms aggregates_first_poll; do
    record "probe_$k" "$(jnum "$json" "$k")"
  done

  migrate_db bench_push
  checkpoint
  start_serve bench_push "$out/push-serve-$label-10.log"
  echo "[$label] push of $NS readings, batches of $SMALL_BATCH, $CLIENTS clients" >&2
  push "$label" push10 "$SMALL_BATCH" "$NS"
  stop_serve
  read -r rss _ <"$out/push-serve.time"
  record serve10_rss_kb "$rss"
  drop_db bench_push
}

# Warm-up (untimed), then the measured rounds, A B, B A, ...
measured=0
run_job warmup
run_push warmup
measured=1
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    run_job "round$r"
    run_push "round$r"
  else
    run_push "round$r"
    run_job "round$r"
  fi
done

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
awk -v flavor="$FLAVOR" -v n="$N" -v ns="$NS" -v dev="$DEVICES" -v par="$PARAMS" -v pts="$POINTS" -v rounds="$ROUNDS" \
  -v workers="$WORKERS" -v mode="$ROLLUPS" -v clients="$CLIENTS" -v batch="$BATCH" -v sbatch="$SMALL_BATCH" -v probes="$PROBES" \
  -v serve_flags="${SERVE_FLAGS:-none}" \
  -v job="$(median job_s)" -v job_rss="$(maximum job_rss_kb)" -v job_cpu="$(median job_cpu)" \
  -v p1="$(median push1000_s)" -v p1_50="$(median push1000_p50)" -v p1_99="$(median push1000_p99)" \
  -v p1_req="$(median push1000_requests)" -v p1_retry="$(maximum push1000_retries)" -v p1_ccpu="$(median push1000_client_cpu)" \
  -v p10="$(median push10_s)" -v p10_50="$(median push10_p50)" -v p10_99="$(median push10_p99)" \
  -v p10_req="$(median push10_requests)" -v p10_retry="$(maximum push10_retries)" \
  -v s_cpu="$(median serve1000_cpu)" -v rss1="$(maximum serve1000_rss_kb)" -v rss10="$(maximum serve10_rss_kb)" \
  -v ack50="$(median probe_ack_p50_ms)" -v ack99="$(median probe_ack_p99_ms)" \
  -v r50="$(median probe_readings_p50_ms)" -v r99="$(median probe_readings_p99_ms)" -v rmax="$(maximum probe_readings_max_ms)" \
  -v rfirst="$(total probe_readings_first_poll)" -v afirst="$(total probe_aggregates_first_poll)" \
  -v a50="$(median probe_aggregates_p50_ms)" -v a99="$(median probe_aggregates_p99_ms)" -v amax="$(maximum probe_aggregates_max_ms)" \
  -v ncpu="$(nproc)" -v model="${cpu_model:-unknown}" -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
function row(label, text) { printf "%-38s %s\n", label, text }
function rate(s, n) { return sprintf("%8.2f s  %10.0f rows/s", s, n / s) }
BEGIN {
  ratio = job / p1
  print "== push benchmark summary (medians of the measured rounds) =="
  row("flavor", flavor)
  row("readings", sprintf("%d (%d devices x %d params x %d points), NDJSON", n, dev, par, pts))
  row("rounds", sprintf("%d measured (A B, B A, ...) after 1 warm-up", rounds))
  row(sprintf("ingest load until exit (-rollups %s)", mode), rate(job, n) sprintf("  (-workers %d)", workers))
  row(sprintf("push, batches of %d, %d clients", batch, clients), rate(p1, n) \
    sprintf("  ack p50 %.1f ms, p99 %.1f ms; %d requests, %d retries", p1_50, p1_99, p1_req, p1_retry))
  row(sprintf("ratio push-%d / job", batch), sprintf("%8.2fx  (target >= 0.7: %s)", ratio, (ratio >= 0.7 ? "met" : "NOT met")))
  row(sprintf("push, batches of %d, %d clients", sbatch, clients), rate(p10, ns) \
    sprintf("  ack p50 %.1f ms, p99 %.1f ms; %d requests, %d retries; first %d readings", p10_50, p10_99, p10_req, p10_retry, ns))
  printf "freshness after the ack (%d probes of a new series a round; API response cache on)\n", probes
  row("  /v1/readings lists it", sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms", r50, r99, rmax))
  row("  /v1/aggregates 1m count has it", sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms", a50, a99, amax))
  row("  shown by the first poll", sprintf("readings %d, aggregates %d of the %d probes of the rounds", rfirst, afirst, probes * rounds))
  row("  single-reading push ack", sprintf("p50 %.2f ms, p99 %.2f ms", ack50, ack99))
  row("ingest serve peak RSS", sprintf("%8.1f MB push-%d + probes, %.1f MB push-%d (largest of the rounds)", rss1 / 1024, batch, rss10 / 1024, sbatch))
  row("ingest load peak RSS", sprintf("%8.1f MB", job_rss / 1024))
  row(sprintf("CPU s in the push-%d + probes run", batch), sprintf("serve %.1f, client %.1f (push only); ingest load %.1f", s_cpu, p1_ccpu, job_cpu))
  row("ingest serve extra flags", serve_flags)
  row("machine", sprintf("%d CPUs, %s", ncpu, model))
  row("date", date)
}' | tee "$out/push-summary.txt"
