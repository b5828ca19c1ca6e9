-- refresh_rollups recomputed a range in one statement per width, on one core.
-- This variant recomputes only the series with series_id % parts = part, so
-- ingest can refresh a range with one connection per part in parallel; each
-- part takes its own advisory lock, so parts of overlapping ranges run side
-- by side while two refreshes of the same part still queue.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION sensorhub.refresh_rollups(lo timestamptz, hi timestamptz, part integer, parts integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sensorhub AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    a timestamptz;
    b timestamptz;
BEGIN
    IF parts < 1 OR part < 0 OR part >= parts THEN
        RAISE EXCEPTION 'refresh_rollups: part % of % is out of range', part, parts;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('sensorhub.refresh_rollups'), part);

    a := date_bin('1 minute', lo, origin);
    b := date_bin('1 minute', hi, origin) + interval '1 minute';
    DELETE FROM sensorhub.rollup_1m WHERE bucket >= a AND bucket < b AND series_id % parts = part;
    INSERT INTO sensorhub.rollup_1m
    SELECT series_id, date_bin('1 minute', time, origin) AS bucket,
           count(*), sum(value_num), var_pop(value_num) * count(*),
           min(value_num), max(value_num),
           (array_agg(value_num ORDER BY time))[1], min(time),
           (array_agg(value_num ORDER BY time DESC))[1], max(time)
    FROM sensorhub.readings
    WHERE time >= a AND time < b AND value_num IS NOT NULL AND series_id % parts = part
    GROUP BY series_id, bucket;

    a := date_bin('1 hour', lo, origin);
    b := date_bin('1 hour', hi, origin) + interval '1 hour';
    DELETE FROM sensorhub.rollup_1h WHERE bucket >= a AND bucket < b AND series_id % parts = part;
    INSERT INTO sensorhub.rollup_1h
    SELECT series_id, date_bin('1 hour', bucket, origin) AS b1,
           sum(count)::bigint, sum(sum),
           greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)),
           min(min), max(max),
           (array_agg(first ORDER BY first_time))[1], min(first_time),
           (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
    FROM sensorhub.rollup_1m
    WHERE bucket >= a AND bucket < b AND series_id % parts = part
    GROUP BY series_id, b1;

    a := date_bin('1 day', lo, origin);
    b := date_bin('1 day', hi, origin) + interval '1 day';
    DELETE FROM sensorhub.rollup_1d WHERE bucket >= a AND bucket < b AND series_id % parts = part;
    INSERT INTO sensorhub.rollup_1d
    SELECT series_id, date_bin('1 day', bucket, origin) AS b1,
           sum(count)::bigint, sum(sum),
           greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)),
           min(min), max(max),
           (array_agg(first ORDER BY first_time))[1], min(first_time),
           (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
    FROM sensorhub.rollup_1h
    WHERE bucket >= a AND bucket < b AND series_id % parts = part
    GROUP BY series_id, b1;
END
$$;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION sensorhub.refresh_rollups(timestamptz, timestamptz, integer, integer) FROM PUBLIC;

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_writer') THEN
        GRANT EXECUTE ON FUNCTION sensorhub.refresh_rollups(timestamptz, timestamptz, integer, integer) TO sensorhub_writer;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sensorhub.refresh_rollups(timestamptz, timestamptz, integer, integer);
