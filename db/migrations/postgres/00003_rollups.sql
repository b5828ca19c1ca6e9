-- Rollups of numeric series on plain PostgreSQL: tables with the same columns as
-- the TimescaleDB continuous aggregates, refreshed by ingest (refresh_rollups) for
-- exactly the time ranges it loaded.
--
-- Columns: count, sum, min, max, first/last (with their times) and m2, the sum of
-- squared deviations from the bucket mean. Coarser buckets combine them exactly:
--   count = Σcount, sum = Σsum,
--   m2    = Σm2 + Σ(sum²/count) − (Σsum)²/Σcount   (Chan et al.)
-- so avg = sum/count and stddev = sqrt(m2/(count−1)) at any multiple of the width.

-- +goose Up
CREATE TABLE sensorhub.rollup_1m (
    series_id  integer NOT NULL,
    bucket     timestamptz NOT NULL,
    count      bigint NOT NULL,
    sum        double precision NOT NULL,
    m2         double precision NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    first      double precision NOT NULL,
    first_time timestamptz NOT NULL,
    last       double precision NOT NULL,
    last_time  timestamptz NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE TABLE sensorhub.rollup_1h (LIKE sensorhub.rollup_1m INCLUDING ALL);
CREATE TABLE sensorhub.rollup_1d (LIKE sensorhub.rollup_1m INCLUDING ALL);

-- +goose StatementBegin
CREATE FUNCTION sensorhub.refresh_rollups(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sensorhub AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    a timestamptz;
    b timestamptz;
BEGIN
    -- Two loads refreshing overlapping ranges must not interleave delete and insert.
    PERFORM pg_advisory_xact_lock(hashtext('sensorhub.refresh_rollups'));

    a := date_bin('1 minute', lo, origin);
    b := date_bin('1 minute', hi, origin) + interval '1 minute';
    DELETE FROM sensorhub.rollup_1m WHERE bucket >= a AND bucket < b;
    INSERT INTO sensorhub.rollup_1m
    SELECT series_id, date_bin('1 minute', time, origin) AS bucket,
           count(*), sum(value_num), var_pop(value_num) * count(*),
           min(value_num), max(value_num),
           (array_agg(value_num ORDER BY time))[1], min(time),
           (array_agg(value_num ORDER BY time DESC))[1], max(time)
    FROM sensorhub.readings
    WHERE time >= a AND time < b AND value_num IS NOT NULL
    GROUP BY series_id, bucket;

    a := date_bin('1 hour', lo, origin);
    b := date_bin('1 hour', hi, origin) + interval '1 hour';
    DELETE FROM sensorhub.rollup_1h WHERE bucket >= a AND bucket < b;
    INSERT INTO sensorhub.rollup_1h
    SELECT series_id, date_bin('1 hour', bucket, origin) AS b1,
           sum(count)::bigint, sum(sum),
           greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)),
           min(min), max(max),
           (array_agg(first ORDER BY first_time))[1], min(first_time),
           (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
    FROM sensorhub.rollup_1m
    WHERE bucket >= a AND bucket < b
    GROUP BY series_id, b1;

    a := date_bin('1 day', lo, origin);
    b := date_bin('1 day', hi, origin) + interval '1 day';
    DELETE FROM sensorhub.rollup_1d WHERE bucket >= a AND bucket < b;
    INSERT INTO sensorhub.rollup_1d
    SELECT series_id, date_bin('1 day', bucket, origin) AS b1,
           sum(count)::bigint, sum(sum),
           greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)),
           min(min), max(max),
           (array_agg(first ORDER BY first_time))[1], min(first_time),
           (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
    FROM sensorhub.rollup_1h
    WHERE bucket >= a AND bucket < b
    GROUP BY series_id, b1;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sensorhub.refresh_rollups(timestamptz, timestamptz);
DROP TABLE sensorhub.rollup_1d;
DROP TABLE sensorhub.rollup_1h;
DROP TABLE sensorhub.rollup_1m;
