#!/usr/bin/env bash
# Soak benchmark (not a test; issue 5, "Sustained load"). DURATION at CLIENTS
# concurrent clients (wrk) over a mix of the API's read endpoints on the
# bench_api dataset that bench/api.sh loads (10M readings: 20 devices x 50
# parameters x 10,000 points). Reports total requests, errors (non-2xx and
# socket errors; target 0), latency percentiles, and the API process's RSS
# (/proc/PID/status VmRSS) and goroutines (go_goroutines on the admin
# listener's /metrics) at the start, every minute and at the end; the target
# is RSS and goroutines flat within 10%, end vs start. The API runs as
# deployed, without -pprof. With PPROF=true it serves Go's profiles on its
# admin listener, so that the start and end also record the heap profile by
# allocation site after a forced GC (bench/out/soak-heap-{start,end}.pb.gz,
# diffed in the report) and the goroutines by stack
# (bench/out/soak-goroutines-*.txt): where RSS grows, they tell a leak of
# live objects from memory the Go runtime keeps. Not by default: heap
# sampling, which -pprof keeps on, adds RSS of its own as it records new
# allocation stacks (about 0.5 MB in 2 minutes), so it blurs the target.
# Either way the report counts the goroutines at the end by state and
# creator: from pprof, or without it from the runtime's own dump, since the
# API is then stopped with SIGQUIT.
#
#   bench/api.sh                     # once, to create and load bench_api
#   bench/soak.sh                    # 10 minutes at 32 clients
#   DURATION=60s bench/soak.sh       # a quick run
#
# Settings, from the environment:
#   DURATION    length of the measured run: 600, 600s, 10m or 1h (10m)
#   CLIENTS     concurrent connections of wrk (32)
#   THREADS     wrk threads (2)
#   WARMUP      load before the start sample, not measured (15s)
#   SETTLE      pause after each garbage collection at rest before a sample,
#               for the scavenger (10s; see "Samples")
#   POOL_SIZE   the API's database pool (10, the API's default)
#   PGDIR       cluster folder (bench/out/pg, shared with bench/api.sh)
#   TOLERANCE   allowed growth of RSS and goroutines, end vs start, percent (10)
#   PPROF       true: run the API with -pprof and report heap profiles (false)
#
# The mix (bench/out/soak-paths.txt, one of its 10,000 lines drawn per
# request by bench/soak-wrk.lua):
#   30% /v1/aggregates, 7 days of 1-hour buckets (avg/min/max) of a numeric series
#   25% /v1/readings?limit=1000 of any series, asc or desc
#   20% /v1/readings of any series between varying from and to (1 h .. 2 days, limit 100..5000)
#   10% /v1/series?device_id=...   10% /v1/latest?device_id=...   5% /v1/devices
#
# Samples: the start sample is taken after WARMUP of load, the end sample
# after the measured run, both with no connection open and "at rest": once
# the Go runtime has finished two garbage collections after the load stopped
# (with no allocation it forces one every 2 minutes), each followed by SETTLE
# for its scavenger to return free pages to the OS. Two, because sync.Pool
# contents (response buffers here, in net/http, pgx and huma) survive the
# first collection and are freed by the second: after one, RSS still holds
# buffers sized by the last requests, which differ from run to run by more
# than the 10% asked. The samples after the first collection are kept too
# (PHASE-after-1-gc) and reported beside the target. Sampling sooner than
# either measures garbage of the last requests. Every minute of the run a
# sample is taken under load. Columns: RSS and its
# anonymous and file-backed parts (/proc/PID/status), goroutines, the heap
# (in use, live, retained from the OS), stacks, the GC goal and the number of
# GCs so far, OS threads, open files and the pool's database sessions. All go
# to bench/out/soak-samples.csv; the summary to bench/out/soak-results.txt.
#
# Needs: what bench/api.sh needs (Go, PostgreSQL 15 binaries, wrk, curl, jq),
# and a bench_api that bench/api.sh has loaded (this script checks it and
# otherwise stops, naming the command to run). Starts the cluster when it is
# not running and then stops it again. All traffic goes to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "soak.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

DURATION=${DURATION:-10m}
CLIENTS=${CLIENTS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-15s}
SETTLE=${SETTLE:-10s}
POOL_SIZE=${POOL_SIZE:-10}
PGDIR=${PGDIR:-bench/out/pg}
TOLERANCE=${TOLERANCE:-10}
PPROF=${PPROF:-false}
READER=bench_api_reader
# What bench/api.sh loads by default: devices, series, readings.
WANT="20 1000 10000000"

say() { echo "soak.sh: $*" >&2; }
die() { say "$*"; exit 1; }
# seconds D: 600, 600s, 10m, 1h -> whole seconds.
seconds() {
  case $1 in
  *h) [[ ${1%h} =~ ^[0-9]+$ ]] && echo $((${1%h} * 3600)) ;;
  *m) [[ ${1%m} =~ ^[0-9]+$ ]] && echo $((${1%m} * 60)) ;;
  *s) [[ ${1%s} =~ ^[0-9]+$ ]] && echo $((${1%s})) ;;
  *) [[ $1 =~ ^[0-9]+$ ]] && echo $(($1)) ;;
  esac
}
secs=$(seconds "$DURATION") && [ "$secs" -gt 0 ] || die "DURATION must be like 600, 600s, 10m or 1h, not $DURATION"
warm=$(seconds "$WARMUP") || die "WARMUP must be like 15s, not $WARMUP"
settle=$(seconds "$SETTLE") || die "SETTLE must be like 10s, not $SETTLE"
case $PPROF in true | false) ;; *) die "PPROF must be true or false, not $PPROF" ;; esac
[[ $CLIENTS =~ ^[1-9][0-9]*$ ]] || die "CLIENTS must be a positive number, not $CLIENTS"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive number, not $THREADS"
[ "$THREADS" -le "$CLIENTS" ] || THREADS=$CLIENTS
[[ $TOLERANCE =~ ^[0-9]+$ ]] || die "TOLERANCE must be a whole percentage, not $TOLERANCE"
out=bench/out
mkdir -p "$out"

command -v psql >/dev/null 2>&1 || PATH=/usr/lib/postgresql/15/bin:$PATH
for tool in go psql wrk curl jq; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install wrk jq curl postgresql-15)"
done

say "building"
go build -o "$out/localpg" ./db/cmd/localpg
go build -o "$out/api" ./services/api

started_pg=0
if ! dsn=$("$out/localpg" status -dir "$PGDIR" -db postgres 2>/dev/null); then
  [ -f "$PGDIR/PG_VERSION" ] || die "no cluster in $PGDIR: run bench/api.sh once first"
  dsn=$("$out/localpg" start -dir "$PGDIR" -port 0 -db postgres 2>/dev/null)
  started_pg=1
fi
db() { sed -E "s#/[^/?]+(\?|$)#/$1\1#" <<<"$dsn"; }
reader() { db "$1" | sed -E "s#://[^@/]+@#://$READER@#"; }

api_pid= sampler_pid=
stop_api() {
  if [ -n "$api_pid" ]; then
    kill -TERM "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    api_pid=
  fi
}
cleanup() {
  if [ -n "$sampler_pid" ]; then
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
  fi
  stop_api
  if [ "$started_pg" = 1 ]; then
    "$out/localpg" stop -dir "$PGDIR" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- dataset

have=$(psql -X -tA -F' ' "$(db bench_api)" -c "SELECT count(DISTINCT device_id), count(*), coalesce(sum(reading_count), 0) FROM sensorhub.series" 2>/dev/null) ||
  die "no migrated database bench_api in $PGDIR: run bench/api.sh once first (it creates and loads it)"
[ "$have" = "$WANT" ] ||
  die "bench_api holds $have (devices series readings), not $WANT: run bench/api.sh once first (with its default DEVICES, PARAMS, POINTS)"
psql -X -tA "$dsn" -c "SELECT 1 FROM pg_roles WHERE rolname = '$READER'" | grep -q 1 ||
  die "role $READER missing: run bench/api.sh once first"
say "bench_api holds 10M readings of 1000 series of 20 devices"

# The mix, 10,000 "CATEGORY PATH" lines, from a fixed seed.
psql -X -tA -F' ' "$(db bench_api)" -c "
  SELECT series_id, device_id, parameter, value_type,
         extract(epoch FROM first_time)::bigint, extract(epoch FROM last_time)::bigint
  FROM sensorhub.series WHERE reading_count > 0 ORDER BY series_id" >"$out/soak-series.txt"
paths=$out/soak-paths.txt
LC_ALL=C awk -v seed=5 '
  function uri(s,   i, c, r) {
    r = ""
    for (i = 1; i <= length(s); i++) {
      c = substr(s, i, 1)
      r = r (c ~ /[A-Za-z0-9._~-]/ ? c : sprintf("%%%02X", ord[c]))
    }
    return r
  }
  function ts(e) { return strftime("%Y-%m-%dT%H:%M:%SZ", e, 1) }
  function pick(n) { return 1 + int(rand() * n) }
  BEGIN { for (i = 0; i < 256; i++) ord[sprintf("%c", i)] = i }
  {
    n++; dev[n] = $2; par[n] = $3; first[n] = $5; last[n] = $6
    if ($4 == "numeric") num[++nn] = n
    if (!(($2) in seen)) { seen[$2] = 1; devs[++nd] = $2 }
  }
  END {
    srand(seed)
    split("avg min max", aggs, " "); split("asc desc", orders, " ")
    split("3600 21600 86400 172800", spans, " "); split("100 1000 5000", limits, " ")
    for (k = 0; k < 10000; k++) {
      r = rand()
      if (r < 0.30) {
        s = num[pick(nn)]
        from = first[s] - first[s] % 3600 # on the hour: served from rollup_1h
        printf "aggregates /v1/aggregates?device_id=%s&parameter=%s&from=%s&to=%s&bucket=1h&agg=%s\n",
          uri(dev[s]), uri(par[s]), ts(from), ts(from + 7 * 86400), aggs[pick(3)]
      } else if (r < 0.55) {
        s = pick(n)
        printf "readings /v1/readings?device_id=%s&parameter=%s&limit=1000&order=%s\n", uri(dev[s]), uri(par[s]), orders[pick(2)]
      } else if (r < 0.75) {
        s = pick(n); span = spans[pick(4)]
        from = first[s] + int(rand() * (last[s] - first[s] - span > 0 ? last[s] - first[s] - span : 1))
        printf "readings_range /v1/readings?device_id=%s&parameter=%s&from=%s&to=%s&limit=%s&order=%s\n",
          uri(dev[s]), uri(par[s]), ts(from), ts(from + span), limits[pick(3)], orders[pick(2)]
      } else if (r < 0.85) {
        printf "series /v1/series?device_id=%s\n", uri(devs[pick(nd)])
      } else if (r < 0.95) {
        printf "latest /v1/latest?device_id=%s\n", uri(devs[pick(nd)])
      } else {
        print "devices /v1/devices"
      }
    }
  }' "$out/soak-series.txt" >"$paths"
say "wrote $(wc -l <"$paths") paths to $paths: $(cut -d' ' -f1 "$paths" | sort | uniq -c | awk '{printf "%s%s %s", sep, $2, $1; sep = ", "}')"

# ---------------------------------------------------------------- the API

log=$out/soak-serve.log
say "starting the API on bench_api (admin listener on 127.0.0.1)"
SENSORHUB_AUTH=off SENSORHUB_ADMIN_ADDR=127.0.0.1:0 SENSORHUB_PPROF=$PPROF "$out/api" serve -database-url "$(reader bench_api)" \
  -addr 127.0.0.1:0 -pool-size "$POOL_SIZE" -log-format json >"$log" 2>&1 &
api_pid=$!
deadline=$((SECONDS + 30))
addr="" admin=""
while [ -z "$addr" ] || [ -z "$admin" ]; do
  kill -0 "$api_pid" 2>/dev/null || { tail -20 "$log" >&2; api_pid=; die "the API exited"; }
  [ $SECONDS -lt $deadline ] || { tail -20 "$log" >&2; die "the API did not listen within 30 s"; }
  sleep 0.1
  addr=$(grep '"msg":"listening"' "$log" | jq -r 'select(.server == "api") | .addr' 2>/dev/null | head -1 || true)
  admin=$(grep '"msg":"listening"' "$log" | jq -r 'select(.server == "admin") | .addr' 2>/dev/null | head -1 || true)
done
[[ $addr == 127.0.0.1:* ]] || die "the API listens on $addr, not on 127.0.0.1"
[[ $admin == 127.0.0.1:* ]] || die "the admin listener is on $admin, not on 127.0.0.1"
base="http://$addr"
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ]; do
  kill -0 "$api_pid" 2>/dev/null || { tail -20 "$log" >&2; api_pid=; die "the API exited"; }
  [ $SECONDS -lt $deadline ] || { curl -s "$base/readyz" >&2; die "the API is not ready after 30 s"; }
  sleep 0.2
done
say "API ready at $base, metrics at http://$admin/metrics (log: $log)"

# Every category answers 200 once before the load.
for cat in aggregates readings readings_range series latest devices; do
  p=$(awk -v c="$cat" '$1 == c {print $2; exit}' "$paths")
  code=$(curl -sS -o "$out/soak-check.json" -w '%{http_code}' "$base$p")
  [ "$code" = 200 ] || { head -c 500 "$out/soak-check.json" >&2; echo >&2; die "GET $p answered $code"; }
done

# ---------------------------------------------------------------- sampling

csv=$out/soak-samples.csv
t_start=
# sample PHASE: one CSV row of the API process's state.
sample() {
  local rss anon file threads fds metrics g gor heap alloc retained stack nextgc gcs conns
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$api_pid/status")
  anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$api_pid/status")
  file=$(awk '/^RssFile:/ {print $2}' "/proc/$api_pid/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$api_pid/status")
  fds=$(find "/proc/$api_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  # Each scrape runs on goroutines of its own (the connection's, the
  # registry's collectors), which go_goroutines counts: the fewest of five
  # scrapes is the process's own, at rest and under load alike. The last
  # scrape gives the other columns.
  gor=
  for _ in 1 2 3 4 5; do
    metrics=$(curl -sS --max-time 10 "http://$admin/metrics")
    g=$(awk '$1 == "go_goroutines" {printf "%.0f", $2}' <<<"$metrics")
    if [ -n "$g" ] && { [ -z "$gor" ] || [ "$g" -lt "$gor" ]; }; then gor=$g; fi
    sleep 0.2
  done
  heap=$(awk '$1 == "go_memstats_heap_inuse_bytes" {printf "%.0f", $2}' <<<"$metrics")
  # Where RSS goes when it moves: the live heap, the heap's spans not yet
  # returned to the OS (sys - released), goroutine stacks and the GC's goal.
  alloc=$(awk '$1 == "go_memstats_heap_alloc_bytes" {printf "%.0f", $2}' <<<"$metrics")
  retained=$(retained_bytes <<<"$metrics")
  stack=$(awk '$1 == "go_memstats_stack_inuse_bytes" {printf "%.0f", $2}' <<<"$metrics")
  nextgc=$(awk '$1 == "go_memstats_next_gc_bytes" {printf "%.0f", $2}' <<<"$metrics")
  gcs=$(gc_count <<<"$metrics")
  conns=$(psql -X -tA "$dsn" -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$READER'")
  printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$(date -u +%FT%TZ)" "$((SECONDS - ${t_start:-$SECONDS}))" "$1" \
    "$rss" "${anon:-}" "${file:-}" "${gor:-}" "${heap:-}" "$threads" "$fds" "$conns" "${alloc:-}" "${retained:-}" "${stack:-}" "${nextgc:-}" "${gcs:-}" >>"$csv"
}
# gc_count: the number of completed GC cycles, from /metrics on stdin.
gc_count() { awk '$1 == "go_gc_duration_seconds_count" {printf "%.0f", $2}'; }
# retained_bytes: the heap's memory not returned to the OS (sys - released),
# from /metrics on stdin.
retained_bytes() {
  awk '$1 == "go_memstats_heap_sys_bytes" {s = $2} $1 == "go_memstats_heap_released_bytes" {r = $2} END {printf "%.0f", s - r}'
}
# profiles PHASE: after the sample, the heap profile (the API's -pprof
# forces a GC for it) and the goroutines by stack, to compare start and end.
# A leak shows as growth of live objects, whatever the runtime's retention
# does to RSS.
profiles() {
  [ "$PPROF" = true ] || return 0
  curl -sS --max-time 30 -o "$out/soak-heap-$1.pb.gz" "http://$admin/debug/pprof/heap?gc=1"
  curl -sS --max-time 30 -o "$out/soak-goroutines-$1.txt" "http://$admin/debug/pprof/goroutine?debug=2"
}
# wait_gc: until the runtime completes a GC cycle; at rest it forces one at
# the latest 2 minutes after the last.
wait_gc() {
  local gc0 deadline=$((SECONDS + 300))
  gc0=$(curl -sS --max-time 10 "http://$admin/metrics" | gc_count)
  while [ "$(curl -sS --max-time 10 "http://$admin/metrics" | gc_count)" = "$gc0" ]; do
    [ $SECONDS -lt $deadline ] || die "no garbage collection in 300 s at rest"
    sleep 1
  done
}
# scavenged: SETTLE, then until the heap's memory not returned to the OS
# stops moving (two scrapes 2 s apart agree; at most 60 s more), so that a
# sample does not catch the scavenger half way.
scavenged() {
  local prev="" now deadline
  sleep "$settle"
  deadline=$((SECONDS + 60))
  while now=$(curl -sS --max-time 10 "http://$admin/metrics" | retained_bytes) && [ "$now" != "$prev" ] && [ $SECONDS -lt $deadline ]; do
    prev=$now
    sleep 2
  done
}
# rest PHASE: the samples at rest, PHASE-after-1-gc and PHASE (see Samples).
rest() {
  say "resting: two garbage collections at rest (up to 4 minutes), each followed by $settle s and the scavenger"
  wait_gc
  scavenged
  sample "$1-after-1-gc"
  wait_gc
  scavenged
  sample "$1"
}
echo "time_utc,elapsed_s,phase,rss_kb,rss_anon_kb,rss_file_kb,goroutines,heap_inuse_bytes,os_threads,open_fds,pg_connections,heap_alloc_bytes,heap_retained_bytes,stack_inuse_bytes,next_gc_bytes,gc_cycles" >"$csv"

wrk_args=(-t"$THREADS" -c"$CLIENTS" --timeout 30s -s bench/soak-wrk.lua "$base")
if [ "$warm" -gt 0 ]; then
  say "warm-up: ${warm} s at $CLIENTS clients"
  sample before-warmup
  wrk "${wrk_args[@]}" -d"${warm}s" -- "$paths" >"$out/soak-warmup.out" 2>&1 ||
    { tail "$out/soak-warmup.out" >&2; die "wrk failed in the warm-up"; }
  grep -q 'non2xx=0 err_connect=0 err_read=0 err_write=0 err_status=0 err_timeout=0' "$out/soak-warmup.out" ||
    say "WARNING: errors in the warm-up: $(grep '^WRK ' "$out/soak-warmup.out")"
fi
# The start's profiles come between its sample and the load, so the end
# sample holds what serving a profile first touches (code pages, the gzip
# writer's buffers) and the start sample would not: serve them once before.
profiles warmup
rest start
t_start=$SECONDS
profiles start

say "soak: $CLIENTS clients, $THREADS wrk threads, ${secs} s; samples every 60 s to $csv"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
(
  # Minute samples under load, while the run lasts.
  m=1
  while [ $((m * 60)) -lt "$secs" ]; do
    wait_s=$((t_start + m * 60 - SECONDS))
    [ "$wait_s" -le 0 ] || sleep "$wait_s"
    sample "minute-$m"
    m=$((m + 1))
  done
) &
sampler_pid=$!
cpu0=$(sed 's/.*) //' "/proc/$api_pid/stat" | awk '{print $12 + $13}')
wrk "${wrk_args[@]}" -d"${secs}s" -- "$paths" >"$out/soak-wrk.out" 2>&1 ||
  { tail "$out/soak-wrk.out" >&2; die "wrk failed"; }
cpu1=$(sed 's/.*) //' "/proc/$api_pid/stat" | awk '{print $12 + $13}')
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
rest end
profiles end
kill -0 "$api_pid" 2>/dev/null || die "the API died during the run"
if [ "$PPROF" = false ]; then
  # No profile endpoint, so the goroutines the end sample counted come from
  # the runtime's own dump: on SIGQUIT it prints every goroutine's stack to
  # stderr as it exits.
  kill -QUIT "$api_pid"
  wait "$api_pid" 2>/dev/null || true
  api_pid=
  sed -n '/^goroutine [0-9]/,$p' "$log" >"$out/soak-goroutines-end.txt"
fi
stop_api

# ---------------------------------------------------------------- report

line=$(grep '^WRK ' "$out/soak-wrk.out") || die "no summary from wrk in $out/soak-wrk.out"
cats=$(grep '^CAT ' "$out/soak-wrk.out" | sed 's/^CAT //') || cats=
requests= duration_us= bytes= p50_us= p90_us= p99_us= p999_us= mean_us= max_us= non2xx= err_connect= err_read= err_write= err_status= err_timeout=
eval "$(sed 's/^WRK //; s/ /\n/g' <<<"$line")"
socket=$((err_connect + err_read + err_write + err_timeout))
errors=$((non2xx + socket))
hz=$(getconf CLK_TCK)

# goroutine_summary: a goroutine dump in the runtime's traceback format on
# stdin (SIGQUIT, or pprof's debug=2), counted by state and creator. The
# runtime's dump includes its own goroutines (GC workers, the scavenger),
# which go_goroutines leaves out.
goroutine_summary() {
  awk '
    /^goroutine [0-9]+ .*\[.*\]:$/ {
      if (g != "") print g
      g = ""
      if ($2 == "0") next # g0 of the main thread: no goroutine
      st = $0; sub(/^[^[]*\[/, "", st); sub(/[],].*/, "", st)
      g = st ", main"
    }
    /^created by / {c = $0; sub(/^created by /, "", c); sub(/ in goroutine [0-9]+$/, "", c); g = st ", created by " c}
    END {if (g != "") print g}
  ' | sort | uniq -c | sort -k1,1nr -k2
}

report() {
  local ms='BEGIN {printf "%.2f", x / 1000}'
  echo "sensorhub API soak, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); load average $load_start at the start, $load_end at the end"
  echo "software: $(go env GOVERSION), PostgreSQL $(psql -X -tA "$dsn" -c 'SHOW server_version'), $(wrk -v 2>&1 | awk 'NR == 1 {print $1, $2}')"
  echo "run: bench_api (10M readings, 1000 series, 20 devices), $CLIENTS clients, $THREADS wrk threads, ${secs} s after ${warm} s of warm-up;"
  echo "     API pool $POOL_SIZE connections, auth off, access log on, -pprof $PPROF; mix: $paths"
  echo
  printf '%-22s %s\n' "requests" "$requests ($(awk -v n="$requests" -v d="$duration_us" 'BEGIN {printf "%.1f", n / (d / 1e6)}') req/s, $(awk -v b="$bytes" -v n="$requests" 'BEGIN {printf "%.1f", n ? b / n / 1024 : 0}') KiB per response)"
  printf '%-22s %s\n' "requests by endpoint" "$cats (sent)"
  printf '%-22s %s\n' "errors" "$errors: $non2xx non-2xx, $socket socket errors (connect $err_connect, read $err_read, write $err_write, timeout $err_timeout) -- target 0: $([ "$errors" = 0 ] && echo met || echo MISSED)"
  printf '%-22s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s ms\n' "latency" \
    "$(awk -v x="$p50_us" "$ms")" "$(awk -v x="$p90_us" "$ms")" "$(awk -v x="$p99_us" "$ms")" \
    "$(awk -v x="$p999_us" "$ms")" "$(awk -v x="$max_us" "$ms")" "$(awk -v x="$mean_us" "$ms")"
  printf '%-22s %s\n' "API CPU" "$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" -v n="$requests" -v s="$secs" 'BEGIN {printf "%.1f s (%.2f cores, %.3f ms per request)", (b - a) / hz, (b - a) / hz / s, 1000 * (b - a) / hz / n}')"
  echo
  echo "samples ($csv):"
  column -t -s, "$csv" | sed 's/^/  /'
  echo
  awk -F, -v tol="$TOLERANCE" '
    $3 == "start" {rs = $4; gs = $7}
    $3 == "end" {re = $4; ge = $7}
    $3 == "start-after-1-gc" {r1s = $4}
    $3 == "end-after-1-gc" {r1e = $4}
    NR > 1 && $3 != "before-warmup" {if ($4 > rmax) rmax = $4; if ($7 > gmax) gmax = $7}
    function verdict(name, s, e, max, unit,   d) {
      d = s ? 100 * (e - s) / s : 0
      printf "%-22s start %s%s, end %s%s (%+.1f%%), highest sample %s%s: %s\n", name, s, unit, e, unit, d, max, unit,
        (d <= tol && d >= -tol ? "flat within " tol "% -- target met" : "NOT flat within " tol "% -- target MISSED")
      return (d <= tol && d >= -tol)
    }
    END {
      printf "%-22s start %s kB, end %s kB (%+.1f%%): for comparison, not the target\n", "RSS after 1 GC at rest", r1s, r1e, r1s ? 100 * (r1e - r1s) / r1s : 0
      ok = verdict("RSS", rs, re, rmax, " kB")
      ok = verdict("goroutines", gs, ge, gmax, "") && ok
      exit !ok
    }' "$csv" && flat=1 || flat=0
  echo
  echo "goroutines at the end, by state and creator, the runtime's own included ($out/soak-goroutines-end.txt):"
  goroutine_summary <"$out/soak-goroutines-end.txt" | sed 's/^/  /'
  echo
  # heap_alloc of the samples at rest: the live objects after two
  # collections, plus what the sampler's scrapes allocated since.
  awk -F, '$3 == "start" {s = $12} $3 == "end" {e = $12}
    END {printf "%-22s start %.0f kB, end %.0f kB (%+.1f%%), heap allocated at rest (a leak grows it; not a target)\n", "live heap", s / 1024, e / 1024, s ? 100 * (e - s) / s : 0}' "$csv"
  echo
  if [ "$PPROF" = true ]; then
    echo "live heap by allocation site, end minus start (go tool pprof -top -diff_base; profiles in $out/soak-heap-*.pb.gz):"
    go tool pprof -top -nodecount=12 -sample_index=inuse_space -diff_base "$out/soak-heap-start.pb.gz" \
      "$out/soak-heap-end.pb.gz" 2>/dev/null | sed -n '/^Showing\|flat%/,$p' | sed 's/^/  /'
    echo
  fi
  if [ "$errors" = 0 ] && [ "$flat" = 1 ]; then
    echo "SOAK: all targets met (0 errors; RSS and goroutines flat within $TOLERANCE%)"
  else
    echo "SOAK: target MISSED (errors $errors; RSS/goroutines flat: $([ "$flat" = 1 ] && echo yes || echo no))"
  fi
}
echo >&2
report | tee "$out/soak-results.txt"
