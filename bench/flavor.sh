# shellcheck shell=bash
# Sourced by bench/ingest.sh and bench/api.sh: the PostgreSQL binaries for
# FLAVOR (postgres or timescaledb). For timescaledb, unless SENSORHUB_PG_BINDIR
# names a bin folder whose PostgreSQL has the extension, it makes one with
# ../shared/timescaledb/make-pg.sh in $out/pg-tsdb (once; reused while it
# matches the system PostgreSQL) and exports SENSORHUB_PG_BINDIR, which
# db/cmd/localpg starts its cluster from. Needs: $out and die().

: "${out:?bench/flavor.sh needs out}"
case ${FLAVOR:-} in postgres | timescaledb) ;; *) die "FLAVOR must be postgres or timescaledb, not '${FLAVOR:-}'" ;; esac

if [ "$FLAVOR" = timescaledb ] && [ -z "${SENSORHUB_PG_BINDIR:-}" ]; then
  mk=../shared/timescaledb/make-pg.sh
  [ -f "$mk" ] || die "FLAVOR=timescaledb needs PostgreSQL with the TimescaleDB extension: set SENSORHUB_PG_BINDIR to its bin folder, or put shared/timescaledb (make-pg.sh) beside the checkout"
  # The server runs as the postgres account when we are root: every folder
  # from bench/out down to the bin folder is 755.
  tsdb=$PWD/$out/pg-tsdb
  stamp=$tsdb/BINDIR
  bindir=
  if [ -s "$stamp" ]; then
    bindir=$(cat "$stamp")
    sysver=$("${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}" --version 2>/dev/null || true)
    if [ ! -x "$bindir/postgres" ] || [ "$("$bindir/pg_config" --version 2>/dev/null)" != "$sysver" ] ||
      [ ! -f "$("$bindir/pg_config" --pkglibdir)/timescaledb.so" ]; then
      bindir=
    fi
  fi
  if [ -z "$bindir" ]; then
    echo "making PostgreSQL with TimescaleDB in $tsdb" >&2
    rm -rf "$tsdb"
    mkdir -p "$tsdb"
    bindir=$(umask 022 && bash "$mk" "$tsdb") || die "FLAVOR=timescaledb: $mk failed, no PostgreSQL with TimescaleDB"
    echo "$bindir" >"$stamp"
  fi
  d=$bindir
  while [ "${#d}" -ge "${#tsdb}" ]; do
    chmod 755 "$d"
    d=$(dirname "$d")
  done
  export SENSORHUB_PG_BINDIR=$bindir
fi

