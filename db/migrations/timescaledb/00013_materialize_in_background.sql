-- Ingest may leave its rollup refresh to the database (ingest load
-- -rollups defer): it commits the readings and their rows in
-- sensorhub.rollup_pending and exits, and while a range is pending the API
-- answers from the raw readings, so every answer is exact the moment the job
-- exits. This procedure, run by TimescaleDB's job scheduler every 30 seconds,
-- then materializes the pending ranges, finest aggregate first, and deletes
-- each range once its three refreshes committed; a crash in between leaves the
-- range pending for the next run.
--
-- It takes the session lock ingest's own refresh takes, and skips its run when
-- ingest (or a run still going) holds it. A refresh it meets from a policy's
-- job fails the run (SQLSTATE 55P03) and the scheduler tries again. Ranges
-- closer than an hour are merged, as ingest does: one refresh of a small gap
-- costs less than a second round of refreshes.
--
-- The procedure has no SET search_path (names are qualified instead): a
-- procedure with a SET clause may not COMMIT, and TimescaleDB then refuses the
-- refresh as if it ran from a function.
--
-- The job belongs to the migrating user, which is a member of
-- sensorhub_writer (00006), the aggregates' owner; a NOLOGIN owner could not
-- run background jobs.

-- +goose Up
-- +goose StatementBegin
CREATE PROCEDURE sensorhub.materialize_pending(job_id integer DEFAULT NULL, config jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF NOT pg_try_advisory_lock(hashtext('sensorhub.refresh_caggs')) THEN
        RETURN;
    END IF;
    -- One island of ranges per turn rather than a FOR loop over them:
    -- TimescaleDB refuses refresh_continuous_aggregate inside a query loop.
    LOOP
        SELECT array_agg(q.id), min(q.lo), max(q.hi) INTO ids, lo, hi
        FROM (SELECT p.id, p.lo, p.hi, count(*) FILTER (WHERE p.gap) OVER (ORDER BY p.lo, p.id) AS island
              FROM (SELECT r.id, r.lo, r.hi,
                           r.lo > max(r.hi) OVER (ORDER BY r.lo, r.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                                  + interval '1 hour' IS NOT FALSE AS gap
                    FROM sensorhub.rollup_pending r) p) q
        WHERE q.island = 1;
        EXIT WHEN ids IS NULL;
        CALL public.refresh_continuous_aggregate('sensorhub.rollup_1m', public.time_bucket('1 minute', lo),
            public.time_bucket('1 minute', hi) + interval '1 minute', options => '{"buckets_per_batch": 0}');
        COMMIT;
        CALL public.refresh_continuous_aggregate('sensorhub.rollup_1h', public.time_bucket('1 hour', lo),
            public.time_bucket('1 hour', hi) + interval '1 hour', options => '{"buckets_per_batch": 0}');
        COMMIT;
        CALL public.refresh_continuous_aggregate('sensorhub.rollup_1d', public.time_bucket('1 day', lo),
            public.time_bucket('1 day', hi) + interval '1 day', options => '{"buckets_per_batch": 0}');
        COMMIT;
        DELETE FROM sensorhub.rollup_pending WHERE id = ANY (ids);
        COMMIT;
    END LOOP;
    PERFORM pg_advisory_unlock(hashtext('sensorhub.refresh_caggs'));
END
$$;
-- +goose StatementEnd
SELECT add_job('sensorhub.materialize_pending', interval '30 seconds', initial_start => now());

-- +goose Down
SELECT delete_job(job_id) FROM timescaledb_information.jobs WHERE proc_schema = 'sensorhub' AND proc_name = 'materialize_pending';
DROP PROCEDURE sensorhub.materialize_pending(integer, jsonb);
