-- Two writes that slowed down as the data grew, both for one reason: rows
-- arrive series by series, and each went to a random leaf of an index
-- ordered by time; once such an index outgrew shared_buffers, every insert
-- paid a page eviction and a read (perf: _bt_relandgetbuf, pread, pwrite).
--
-- 1. create_hypertable gave sensorhub.readings a b-tree on (time DESC)
--    besides the primary key (series_id, time); plain PostgreSQL never had
--    one. bench/scale.sh loaded 100M readings at 183,644 rows/s with it
--    (0.57x the rate of 10M) and at 479,605 rows/s without it. Every API
--    query names its series and reads the primary key; a refresh of a time
--    range reads the chunks that chunk exclusion leaves, as on plain
--    PostgreSQL (a 2-minute window of a 5.5M-row chunk: 350 ms, against
--    1.4 ms with the index, once per refresh; a BRIN index instead measured
--    10 ms but cost loads 21%: 377,026 rows/s).
-- 2. A refresh writes its buckets series by series into the materialization
--    hypertable, whose (bucket DESC) index TimescaleDB keeps for its own
--    deletes: one pass over 100M readings took 1,866 s, against 66 s for
--    10M. materialize_pending now refreshes one chunk of readings at a time
--    (its window cut at the chunk boundaries, aligned to each width), as
--    `ingest refresh` does (rollup.Windows), so that working set is one
--    chunk's buckets. The chunk interval is what sizes a chunk to memory.
--    Each window commits on its own; the range stays pending until all of
--    them have, and a window already refreshed costs nothing the next time.

-- +goose Up
DROP INDEX IF EXISTS sensorhub.readings_time_idx;

-- +goose StatementBegin
CREATE OR REPLACE PROCEDURE sensorhub.materialize_pending(job_id integer DEFAULT NULL, config jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    lo timestamptz;
    hi timestamptz;
    edges timestamptz[];
    e timestamptz;
    a timestamptz;
    b timestamptz;
    w interval;
    i integer;
BEGIN
    IF NOT pg_try_advisory_lock(hashtext('sensorhub.refresh_caggs')) THEN
        RETURN;
    END IF;
    -- One island of ranges per turn rather than a FOR loop over them:
    -- TimescaleDB refuses refresh_continuous_aggregate inside a query loop.
    -- The loops below run over arrays, not queries.
    LOOP
        SELECT array_agg(q.id), min(q.lo), max(q.hi) INTO ids, lo, hi
        FROM (SELECT p.id, p.lo, p.hi, count(*) FILTER (WHERE p.gap) OVER (ORDER BY p.lo, p.id) AS island
              FROM (SELECT r.id, r.lo, r.hi,
                           r.lo > max(r.hi) OVER (ORDER BY r.lo, r.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                                  + interval '1 hour' IS NOT FALSE AS gap
                    FROM sensorhub.rollup_pending r) p) q
        WHERE q.island = 1;
        EXIT WHEN ids IS NULL;
        SELECT coalesce(array_agg(DISTINCT c.e ORDER BY c.e), '{}') INTO edges
        FROM (SELECT range_start AS e FROM timescaledb_information.chunks WHERE hypertable_schema = 'sensorhub' AND hypertable_name = 'readings'
              UNION ALL
              SELECT range_end FROM timescaledb_information.chunks WHERE hypertable_schema = 'sensorhub' AND hypertable_name = 'readings') c
        WHERE c.e > lo AND c.e <= hi;
        FOR i IN 1 .. 3 LOOP
            w := (ARRAY[interval '1 minute', interval '1 hour', interval '1 day'])[i];
            a := public.time_bucket(w, lo);
            FOREACH e IN ARRAY edges || (public.time_bucket(w, hi) + w) LOOP
                b := public.time_bucket(w, e);
                CONTINUE WHEN b <= a;
                CASE i
                    WHEN 1 THEN CALL public.refresh_continuous_aggregate('sensorhub.rollup_1m', a, b, options => '{"buckets_per_batch": 0}');
                    WHEN 2 THEN CALL public.refresh_continuous_aggregate('sensorhub.rollup_1h', a, b, options => '{"buckets_per_batch": 0}');
                    ELSE CALL public.refresh_continuous_aggregate('sensorhub.rollup_1d', a, b, options => '{"buckets_per_batch": 0}');
                END CASE;
                COMMIT;
                a := b;
            END LOOP;
        END LOOP;
        DELETE FROM sensorhub.rollup_pending WHERE id = ANY (ids);
        COMMIT;
    END LOOP;
    PERFORM pg_advisory_unlock(hashtext('sensorhub.refresh_caggs'));
END
$$;
-- +goose StatementEnd

-- +goose Down
CREATE INDEX IF NOT EXISTS readings_time_idx ON sensorhub.readings (time DESC);
-- +goose StatementBegin
CREATE OR REPLACE PROCEDURE sensorhub.materialize_pending(job_id integer DEFAULT NULL, config jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF NOT pg_try_advisory_lock(hashtext('sensorhub.refresh_caggs')) THEN
        RETURN;
    END IF;
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
