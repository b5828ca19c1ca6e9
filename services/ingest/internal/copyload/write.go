package copyload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
)

// Lock the batch's series rows in id order before touching them, so that two
// workers updating overlapping series never deadlock.
const lockSeriesSQL = `SELECT series_id FROM sensorhub.series WHERE series_id = ANY($1) ORDER BY series_id FOR UPDATE`

const updateSeriesSQL = `
UPDATE sensorhub.series s
SET reading_count = s.reading_count + d.n,
    first_time    = LEAST(s.first_time, d.lo),
    last_time     = GREATEST(s.last_time, d.hi)
FROM unnest($1::integer[], $2::bigint[], $3::timestamptz[], $4::timestamptz[]) AS d(id, n, lo, hi)
WHERE s.series_id = d.id AND d.n > 0`

const pendingSQL = `INSERT INTO sensorhub.rollup_pending (lo, hi) VALUES ($1, $2)`

// Batches commit without waiting for their WAL flush: a batch lost to a
// server crash is simply copied again by the next run, and the run's last
// transaction (rollup refresh, dataset version) commits synchronously, which
// flushes the WAL of every batch before it. So the job reports success only
// for durable data, without one disk flush per batch.
const asyncCommitSQL = `SET LOCAL synchronous_commit = off`

// The staging table lives as long as the worker's connection; ON COMMIT DELETE
// ROWS empties it after every batch without a TRUNCATE round trip.
const createStageSQL = `
CREATE TEMP TABLE IF NOT EXISTS readings_stage (
    ord            integer GENERATED ALWAYS AS IDENTITY,
    series_id      integer NOT NULL,
    time           timestamptz NOT NULL,
    utc_offset_min smallint NOT NULL,
    value_num      double precision,
    value_text     text
) ON COMMIT DELETE ROWS`

// Skip mode: rows whose (series, time) exist already are left as they are.
// The CTE returns the per-series counts of what was really inserted, so the
// catalog's counts stay exact however many times a file is loaded.
const insertSkipSQL = `
WITH ins AS (
    INSERT INTO sensorhub.readings (series_id, time, utc_offset_min, value_num, value_text)
    SELECT series_id, time, utc_offset_min, value_num, value_text FROM pg_temp.readings_stage ORDER BY ord
    ON CONFLICT (series_id, time) DO NOTHING
    RETURNING series_id, time
)
SELECT series_id, count(*), min(time), max(time) FROM ins GROUP BY series_id ORDER BY series_id`

// Overwrite mode: the last reading of a (series, time) in the batch wins over
// earlier ones and over the stored row. Rows that existed before are told from
// fresh ones by a join on the statement's snapshot (RETURNING cannot read xmax
// on a partitioned table); unchanged rows are not rewritten.
const insertOverwriteSQL = `
WITH src AS (
    SELECT DISTINCT ON (series_id, time) series_id, time, utc_offset_min, value_num, value_text
    FROM pg_temp.readings_stage ORDER BY series_id, time, ord DESC
), existing AS (
    SELECT series_id, time FROM src JOIN sensorhub.readings USING (series_id, time)
), ins AS (
    INSERT INTO sensorhub.readings AS r (series_id, time, utc_offset_min, value_num, value_text)
    SELECT series_id, time, utc_offset_min, value_num, value_text FROM src
    ON CONFLICT (series_id, time) DO UPDATE
        SET utc_offset_min = EXCLUDED.utc_offset_min, value_num = EXCLUDED.value_num, value_text = EXCLUDED.value_text
        WHERE (r.utc_offset_min, r.value_num, r.value_text) IS DISTINCT FROM
              (EXCLUDED.utc_offset_min, EXCLUDED.value_num, EXCLUDED.value_text)
    RETURNING series_id, time
)
SELECT i.series_id, count(*) FILTER (WHERE e.time IS NULL), min(i.time), max(i.time), count(*) FILTER (WHERE e.time IS NOT NULL)
FROM ins i LEFT JOIN existing e USING (series_id, time) GROUP BY i.series_id ORDER BY i.series_id`

// batchOutcome is what one committed batch did.
type batchOutcome struct {
	inserted, duplicates, updated int64
}

// write commits b. In skip mode it first tries a plain COPY into readings,
// the fastest path and the one every first load takes; a unique violation
// (the batch overlaps stored rows or repeats itself) rolls that back and
// redoes the batch through the staging table with ON CONFLICT.
func (w *writer) write(ctx context.Context, b *batch) (batchOutcome, error) {
	if w.mode == ModeSkip {
		out, err := w.copyDirect(ctx, b)
		if err == nil {
			return out, nil
		}
		if !uniqueViolation(err) {
			return batchOutcome{}, err
		}
	}
	return w.copyStaged(ctx, b)
}

func (w *writer) copyDirect(ctx context.Context, b *batch) (batchOutcome, error) {
	n, err := w.copyGroupDirect(ctx, group{b}, true)
	return batchOutcome{inserted: n}, err
}

// copyGroupDirect copies g's readings straight into readings in one
// transaction, with the series counts, the stale range and the version;
// async commits without waiting for the WAL flush (the job's batches, see
// asyncCommitSQL). It fails with a unique violation when a reading is
// stored already.
func (w *writer) copyGroupDirect(ctx context.Context, g group, async bool) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		if async {
			if _, err := tx.Exec(ctx, asyncCommitSQL); err != nil {
				return err
			}
		}
		var err error
		if n, err = copyGroup(ctx, tx, "sensorhub.readings", g, &w.buf); err != nil {
			return fmt.Errorf("copy readings: %w", err)
		}
		// Series rows are locked only now, after the COPY, so that parallel
		// workers copy concurrently and queue only for this short update.
		d := g.deltas()
		if _, err := tx.Exec(ctx, lockSeriesSQL, d.ids); err != nil {
			return fmt.Errorf("lock series: %w", err)
		}
		if _, err := tx.Exec(ctx, updateSeriesSQL, d.ids, d.counts, d.los, d.his); err != nil {
			return fmt.Errorf("update series counts: %w", err)
		}
		// In the readings' own transaction, so that the API's validators
		// never outlive data a killed run committed.
		return finishTx(ctx, tx, g)
	})
	return n, err
}

// uniqueViolation reports a readings row that exists already: the direct
// COPY's cue to go through the staging table.
func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func (w *writer) copyStaged(ctx context.Context, b *batch) (batchOutcome, error) {
	if !w.stageDone {
		if _, err := w.conn.Exec(ctx, createStageSQL); err != nil {
			return batchOutcome{}, fmt.Errorf("create staging table: %w", err)
		}
		w.stageDone = true
	}
	var out batchOutcome
	err := pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, asyncCommitSQL); err != nil {
			return err
		}
		if _, err := copyBinary(ctx, tx, "pg_temp.readings_stage", b, &w.buf); err != nil {
			return fmt.Errorf("copy to staging: %w", err)
		}
		if _, err := tx.Exec(ctx, lockSeriesSQL, b.deltas().ids); err != nil {
			return fmt.Errorf("lock series: %w", err)
		}
		sum := spans{}
		var err error
		if out.inserted, out.updated, err = w.insertStaged(ctx, tx, sum); err != nil {
			return err
		}
		d := sum.deltas()
		if _, err := tx.Exec(ctx, updateSeriesSQL, d.ids, d.counts, d.los, d.his); err != nil {
			return fmt.Errorf("update series counts: %w", err)
		}
		if out.inserted+out.updated > 0 {
			if _, err := tx.Exec(ctx, pendingSQL, b.lo, b.hi); err != nil {
				return fmt.Errorf("record rollup range: %w", err)
			}
			if err := db.BumpDatasetVersion(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	out.duplicates = int64(b.len()) - out.inserted - out.updated
	return out, err
}

// insertStaged moves the staging table's rows into readings in the
// writer's mode and adds what went in to sum, per series. It returns the
// readings inserted and, in overwrite mode, replaced.
func (w *writer) insertStaged(ctx context.Context, tx pgx.Tx, sum spans) (inserted, updated int64, err error) {
	query := insertSkipSQL
	if w.mode == ModeOverwrite {
		query = insertOverwriteSQL
	}
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return 0, 0, fmt.Errorf("insert from staging: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id     int32
			n, upd int64
			lo, hi time.Time
		)
		dest := []any{&id, &n, &lo, &hi}
		if w.mode == ModeOverwrite {
			dest = append(dest, &upd)
		}
		if err := rows.Scan(dest...); err != nil {
			return 0, 0, fmt.Errorf("insert from staging: %w", err)
		}
		if n > 0 {
			sum.add(id, n, lo, hi)
		}
		inserted += n
		updated += upd
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("insert from staging: %w", err)
	}
	return inserted, updated, nil
}

// writer owns one pooled connection at a time; it drops it after a failure,
// since a connection that saw a network error cannot be trusted again.
type writer struct {
	pool      *pgxpool.Pool
	conn      *pgxpool.Conn
	mode      Mode
	stageDone bool
	retry     dbretry.Policy
	logger    *slog.Logger
	buf       []byte // COPY data, reused from batch to batch
}

func (w *writer) acquire(ctx context.Context) error {
	if w.conn != nil {
		return nil
	}
	c, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	w.conn, w.stageDone = c, false
	return nil
}

func (w *writer) release() {
	if w.conn != nil {
		w.conn.Release()
		w.conn = nil
	}
}

// discard closes the connection instead of returning it to the pool.
func (w *writer) discard() {
	if w.conn != nil {
		_ = w.conn.Hijack().Close(context.Background())
		w.conn = nil
	}
}

// writeWithRetry writes b under the retry policy. Re-copying a batch whose
// commit answer was lost only skips its readings, so batches retry like any
// idempotent work; a connection that saw a transient error is dropped.
func (w *writer) writeWithRetry(ctx context.Context, b *batch) (batchOutcome, error) {
	var out batchOutcome
	err := dbretry.Idempotent(ctx, w.retry, w.logger.With("at", b.first.String()), "the batch", func() error {
		err := w.acquire(ctx)
		if err == nil {
			out, err = w.write(ctx, b)
		}
		if dbretry.Transient(err) {
			w.discard()
		}
		return err
	})
	return out, err
}
