-- refresh_rollups merged m2 into the 1-hour and 1-day rollups with the
-- cancelling form that 00010_merge_moments.sql describes; it now folds them
-- with merge_moments. The m2 already stored in rollup_1h and rollup_1d is
-- recomputed the same way from the level below (1m rows were always right:
-- var_pop is stable), finest first, rewriting only rows whose m2 changes.
-- Ranges a refresh could not finish (underflow) are still in rollup_pending
-- and are recomputed by the next load.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION sensorhub.refresh_rollups(lo timestamptz, hi timestamptz, part integer, parts integer) RETURNS void
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
    SELECT series_id, bucket,
           count(*), sum(value_num), var_pop(value_num) * count(*),
           min(value_num), max(value_num),
           (min(ARRAY[date_part('epoch', time - bucket), value_num]))[2], min(time),
           (max(ARRAY[date_part('epoch', time - bucket), value_num]))[2], max(time)
    FROM (SELECT series_id, time, value_num, date_bin('1 minute', time, origin) AS bucket FROM sensorhub.readings) r
    WHERE time >= a AND time < b AND value_num IS NOT NULL AND series_id % parts = part
    GROUP BY series_id, bucket;

    a := date_bin('1 hour', lo, origin);
    b := date_bin('1 hour', hi, origin) + interval '1 hour';
    DELETE FROM sensorhub.rollup_1h WHERE bucket >= a AND bucket < b AND series_id % parts = part;
    INSERT INTO sensorhub.rollup_1h
    SELECT series_id, b1,
           sum(count)::bigint, sum(sum),
           (merge_moments(ARRAY[count::float8, sum, m2]))[3],
           min(min), max(max),
           (min(ARRAY[date_part('epoch', first_time - b1), first]))[2], min(first_time),
           (max(ARRAY[date_part('epoch', last_time - b1), last]))[2], max(last_time)
    FROM (SELECT *, date_bin('1 hour', bucket, origin) AS b1 FROM sensorhub.rollup_1m) r
    WHERE bucket >= a AND bucket < b AND series_id % parts = part
    GROUP BY series_id, b1;

    a := date_bin('1 day', lo, origin);
    b := date_bin('1 day', hi, origin) + interval '1 day';
    DELETE FROM sensorhub.rollup_1d WHERE bucket >= a AND bucket < b AND series_id % parts = part;
    INSERT INTO sensorhub.rollup_1d
    SELECT series_id, b1,
           sum(count)::bigint, sum(sum),
           (merge_moments(ARRAY[count::float8, sum, m2]))[3],
           min(min), max(max),
           (min(ARRAY[date_part('epoch', first_time - b1), first]))[2], min(first_time),
           (max(ARRAY[date_part('epoch', last_time - b1), last]))[2], max(last_time)
    FROM (SELECT *, date_bin('1 day', bucket, origin) AS b1 FROM sensorhub.rollup_1h) r
    WHERE bucket >= a AND bucket < b AND series_id % parts = part
    GROUP BY series_id, b1;
END
$$;
-- +goose StatementEnd


UPDATE sensorhub.rollup_1h h SET m2 = x.m2
FROM (SELECT series_id, date_bin('1 hour', bucket, '2000-01-03 00:00:00+00') AS bucket,
             (sensorhub.merge_moments(ARRAY[count::float8, sum, m2]))[3] AS m2
      FROM sensorhub.rollup_1m GROUP BY 1, 2) x
WHERE h.series_id = x.series_id AND h.bucket = x.bucket AND h.m2 IS DISTINCT FROM x.m2;

UPDATE sensorhub.rollup_1d d SET m2 = x.m2
FROM (SELECT series_id, date_bin('1 day', bucket, '2000-01-03 00:00:00+00') AS bucket,
             (sensorhub.merge_moments(ARRAY[count::float8, sum, m2]))[3] AS m2
      FROM sensorhub.rollup_1h GROUP BY 1, 2) x
WHERE d.series_id = x.series_id AND d.bucket = x.bucket AND d.m2 IS DISTINCT FROM x.m2;

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION sensorhub.refresh_rollups(lo timestamptz, hi timestamptz, part integer, parts integer) RETURNS void
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
    SELECT series_id, bucket,
           count(*), sum(value_num), var_pop(value_num) * count(*),
           min(value_num), max(value_num),
           (min(ARRAY[date_part('epoch', time - bucket), value_num]))[2], min(time),
           (max(ARRAY[date_part('epoch', time - bucket), value_num]))[2], max(time)
    FROM (SELECT series_id, time, value_num, date_bin('1 minute', time, origin) AS bucket FROM sensorhub.readings) r
    WHERE time >= a AND time < b AND value_num IS NOT NULL AND series_id % parts = part
    GROUP BY series_id, bucket;

    a := date_bin('1 hour', lo, origin);
    b := date_bin('1 hour', hi, origin) + interval '1 hour';
    DELETE FROM sensorhub.rollup_1h WHERE bucket >= a AND bucket < b AND series_id % parts = part;
    INSERT INTO sensorhub.rollup_1h
    SELECT series_id, b1,
           sum(count)::bigint, sum(sum),
           greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)),
           min(min), max(max),
           (min(ARRAY[date_part('epoch', first_time - b1), first]))[2], min(first_time),
           (max(ARRAY[date_part('epoch', last_time - b1), last]))[2], max(last_time)
    FROM (SELECT *, date_bin('1 hour', bucket, origin) AS b1 FROM sensorhub.rollup_1m) r
    WHERE bucket >= a AND bucket < b AND series_id % parts = part
    GROUP BY series_id, b1;

    a := date_bin('1 day', lo, origin);
    b := date_bin('1 day', hi, origin) + interval '1 day';
    DELETE FROM sensorhub.rollup_1d WHERE bucket >= a AND bucket < b AND series_id % parts = part;
    INSERT INTO sensorhub.rollup_1d
    SELECT series_id, b1,
           sum(count)::bigint, sum(sum),
           greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)),
           min(min), max(max),
           (min(ARRAY[date_part('epoch', first_time - b1), first]))[2], min(first_time),
           (max(ARRAY[date_part('epoch', last_time - b1), last]))[2], max(last_time)
    FROM (SELECT *, date_bin('1 day', bucket, origin) AS b1 FROM sensorhub.rollup_1h) r
    WHERE bucket >= a AND bucket < b AND series_id % parts = part
    GROUP BY series_id, b1;
END
$$;
-- +goose StatementEnd

