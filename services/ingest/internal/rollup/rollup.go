// Package rollup brings the 1-minute, 1-hour and 1-day rollups up to date for
// the time ranges that loads left pending in sensorhub.rollup_pending.
//
// On plain PostgreSQL the rollups are tables that sensorhub.refresh_rollups
// recomputes for a range in one transaction. On TimescaleDB they are
// continuous aggregates, refreshed with refresh_continuous_aggregate, which
// must run outside a transaction block. Either way a pending range is deleted
// only after its refresh succeeded, so a crash in between is repaired by the
// next run.
package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/sensorhub/sensorhub/db"
)

// Range is a closed time range [Lo, Hi] of readings whose rollups are stale.
type Range struct {
	Lo, Hi time.Time
	ids    []int64
}

// mergeGap joins pending ranges that are closer than this: recomputing a small
// gap costs less than a second round of refresh statements.
const mergeGap = time.Hour

// Widths are the rollup widths, finest first; each level is computed from the
// one before.
var Widths = []struct {
	Name  string
	Width time.Duration
}{{"sensorhub.rollup_1m", time.Minute}, {"sensorhub.rollup_1h", time.Hour}, {"sensorhub.rollup_1d", 24 * time.Hour}}

const pendingSQL = `SELECT id, lo, hi FROM sensorhub.rollup_pending ORDER BY lo, id`

// Querier is a pool or one of its connections.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Pending returns the stale ranges, merged.
func Pending(ctx context.Context, q Querier) ([]Range, error) {
	rows, err := q.Query(ctx, pendingSQL)
	if err != nil {
		return nil, fmt.Errorf("read pending rollup ranges: %w", err)
	}
	defer rows.Close()
	var out []Range
	for rows.Next() {
		var (
			id     int64
			lo, hi time.Time
		)
		if err := rows.Scan(&id, &lo, &hi); err != nil {
			return nil, fmt.Errorf("read pending rollup ranges: %w", err)
		}
		if n := len(out); n > 0 && !lo.After(out[n-1].Hi.Add(mergeGap)) {
			last := &out[n-1]
			if hi.After(last.Hi) {
				last.Hi = hi
			}
			last.ids = append(last.ids, id)
			continue
		}
		out = append(out, Range{Lo: lo, Hi: hi, ids: []int64{id}})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending rollup ranges: %w", err)
	}
	return out, nil
}

// Refresh recomputes every pending range and returns the ranges it refreshed.
// On plain PostgreSQL each range is recomputed by parts connections at once,
// each for the series with series_id % parts = part, while a connection of
// its own holds the refresh lock; on TimescaleDB parts is ignored.
func Refresh(ctx context.Context, pool *pgxpool.Pool, parts int) ([]Range, error) {
	parts = max(1, parts)
	flavor, err := db.ReadFlavor(ctx, pool)
	if err != nil {
		return nil, err
	}
	if flavor == db.FlavorTimescaleDB {
		return refreshTimescale(ctx, pool)
	}
	// Under the refresh lock, as on TimescaleDB: two refreshes recomputing
	// the same range at once (a job's and the write service's) would both
	// insert its buckets, and the second would fail on the first's rows.
	// The one that waited reads the pending ranges once the other deleted
	// its own. The lock is held on a connection of its own, outside the
	// pool, so that refreshes waiting for it never hold the pool's
	// connections the parts need.
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("refresh rollups: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, lockRefreshSQL); err != nil {
		return nil, fmt.Errorf("refresh rollups: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), unlockRefreshSQL) //nolint:errcheck
	ranges, err := Pending(ctx, conn)
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		if err := refreshPlain(ctx, pool, r, parts); err != nil {
			return nil, fmt.Errorf("refresh rollups %s: %w", r, err)
		}
	}
	return ranges, nil
}

// String is the range for messages.
func (r Range) String() string {
	return r.Lo.UTC().Format(time.RFC3339Nano) + " to " + r.Hi.UTC().Format(time.RFC3339Nano)
}

const (
	refreshPlainSQL  = `SELECT sensorhub.refresh_rollups($1, $2, $3, $4)`
	deletePendingSQL = `DELETE FROM sensorhub.rollup_pending WHERE id = ANY($1)`
)

// refreshPlain recomputes r in parts transactions side by side. The pending
// rows go only after every part committed; a part that committed before a
// failure elsewhere is simply recomputed by the next run.
func refreshPlain(ctx context.Context, pool *pgxpool.Pool, r Range, parts int) error {
	g, gctx := errgroup.WithContext(ctx)
	for part := range parts {
		g.Go(func() error {
			_, err := pool.Exec(gctx, refreshPlainSQL, r.Lo, r.Hi, part, parts)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err := pool.Exec(ctx, deletePendingSQL, r.ids)
	return err
}

// Loads refresh one after the other under this session lock, which a killed
// job's backend holds until its refresh has finished, so TimescaleDB never
// refuses one load's refresh for another's; a refresh policy's job does not
// take it, so a refresh that meets one waits up to concurrentWait
// (db.RefreshContinuousAggregate).
const (
	lockRefreshSQL   = `SELECT pg_advisory_lock(hashtext('sensorhub.refresh_caggs'))`
	unlockRefreshSQL = `SELECT pg_advisory_unlock(hashtext('sensorhub.refresh_caggs'))`
)

// concurrentWait bounds how long a refresh waits for a concurrent one (a
// policy's) to finish: longer than any refresh of ranges a load left.
var concurrentWait = 10 * time.Minute

// refreshTimescale refreshes every pending range, finest width first, on one
// connection that holds the refresh lock, so pending ranges are read after
// any load refreshing before it has deleted its own.
func refreshTimescale(ctx context.Context, pool *pgxpool.Pool) ([]Range, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("refresh rollups: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, lockRefreshSQL); err != nil {
		return nil, fmt.Errorf("refresh rollups: take lock: %w", err)
	}
	// Closing the session releases the lock too, should the unlock fail.
	defer conn.Exec(context.WithoutCancel(ctx), unlockRefreshSQL) //nolint:errcheck

	ranges, err := Pending(ctx, conn)
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		edges, err := chunkEdges(ctx, conn, r)
		if err != nil {
			return nil, fmt.Errorf("refresh rollups %s: %w", r, err)
		}
		for _, w := range Widths {
			for _, win := range Windows(r, edges, w.Width) {
				if err := db.RefreshContinuousAggregate(ctx, conn, w.Name, win[0], win[1], concurrentWait); err != nil {
					return nil, fmt.Errorf("refresh rollups %s: %s: %w", r, w.Name, err)
				}
			}
		}
		if _, err := conn.Exec(ctx, deletePendingSQL, r.ids); err != nil {
			return nil, fmt.Errorf("refresh rollups %s: %w", r, err)
		}
	}
	return ranges, nil
}

// chunkEdgesSQL lists the chunk boundaries of the readings hypertable inside
// a range.
const chunkEdgesSQL = `
SELECT DISTINCT e FROM (
    SELECT range_start AS e FROM timescaledb_information.chunks WHERE hypertable_schema = 'sensorhub' AND hypertable_name = 'readings'
    UNION ALL
    SELECT range_end FROM timescaledb_information.chunks WHERE hypertable_schema = 'sensorhub' AND hypertable_name = 'readings') c
WHERE e > $1 AND e <= $2
ORDER BY e`

// chunkEdges returns the readings chunks' boundaries inside r, in order.
func chunkEdges(ctx context.Context, q Querier, r Range) ([]time.Time, error) {
	rows, err := q.Query(ctx, chunkEdgesSQL, r.Lo, r.Hi)
	if err != nil {
		return nil, fmt.Errorf("read chunk boundaries: %w", err)
	}
	edges, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("read chunk boundaries: %w", err)
	}
	return edges, nil
}

// Windows splits the refresh of r at width w into one [lo, hi) per chunk of
// readings it covers, at the chunk boundaries edges (ascending, inside r)
// aligned to w, together covering the buckets of r with no gap or overlap.
// A refresh writes its buckets series by series, and each lands in a random
// leaf of the materialization's (bucket) index; in one pass over a range
// much larger than memory every insert evicted a page (bench/scale.sh:
// 1,866 s for 100M readings, 65.6 s for 10M; 646 s and 54 s in windows).
// One chunk at a time keeps that working set to one chunk's buckets, and
// each window still reads only the readings chunk it covers.
func Windows(r Range, edges []time.Time, w time.Duration) [][2]time.Time {
	lo, end := Align(r.Lo, w), Align(r.Hi, w).Add(w)
	var out [][2]time.Time
	for _, e := range edges {
		if e = Align(e, w); e.After(lo) && e.Before(end) {
			out = append(out, [2]time.Time{lo, e})
			lo = e
		}
	}
	return append(out, [2]time.Time{lo, end})
}

// Align returns the start of the bucket of width w that holds t; buckets are
// aligned to UTC midnight as in TimescaleDB's time_bucket and the schema's date_bin.
func Align(t time.Time, w time.Duration) time.Time {
	return t.UTC().Truncate(w)
}

// Materializer names what materializes ranges a load left pending, for the
// load's summary: on TimescaleDB the database's own background job (migration
// 00013), on plain PostgreSQL, which has no scheduler, `ingest refresh`.
func Materializer(ctx context.Context, q db.Querier) (string, error) {
	flavor, err := db.ReadFlavor(ctx, q)
	if err != nil {
		return "", err
	}
	if flavor == db.FlavorTimescaleDB {
		return "TimescaleDB's job sensorhub.materialize_pending (runs every 30 s)", nil
	}
	return "`ingest refresh` (plain PostgreSQL has no scheduler: run it after loads, e.g. the rollup-refresh CronJob)", nil
}

// coalesceSQL replaces every pending row with one per island of ranges
// closer than mergeGap (as Pending merges them), keeping the oldest creation
// time. A job writes one row per batch; the API checks this table on every
// aggregate request until the ranges are materialized, so a deferring job
// leaves it short. A refresh running meanwhile deletes only the rows it read,
// so the merged rows are refreshed again at worst, never lost.
const coalesceSQL = `
WITH gone AS (DELETE FROM sensorhub.rollup_pending RETURNING id, lo, hi, created_at),
marked AS (
    SELECT id, lo, hi, created_at,
           lo > max(hi) OVER (ORDER BY lo, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + $1::interval IS NOT FALSE AS gap
    FROM gone),
islands AS (SELECT lo, hi, created_at, count(*) FILTER (WHERE gap) OVER (ORDER BY lo, id) AS island FROM marked)
INSERT INTO sensorhub.rollup_pending (lo, hi, created_at)
SELECT min(lo), max(hi), min(created_at) FROM islands GROUP BY island`

// Coalesce merges the pending ranges into one row per island and returns
// how many rows are left.
func Coalesce(ctx context.Context, q db.Execer) (int64, error) {
	tag, err := q.Exec(ctx, coalesceSQL, mergeGap)
	if err != nil {
		return 0, fmt.Errorf("merge pending rollup ranges: %w", err)
	}
	return tag.RowsAffected(), nil
}
