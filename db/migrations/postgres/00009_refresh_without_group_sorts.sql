-- refresh_rollups took first and last of each bucket with
-- (array_agg(v ORDER BY time))[1]: PostgreSQL 15 sorts each group's input for
-- an ordered aggregate, so a refresh paid one small sort per bucket, millions
-- of them for minute buckets. min/max over ARRAY[seconds into the bucket,
-- value] picks the same reading (time is unique per series, so the first
-- element decides) without any per-group sort. Seconds into the bucket, not
-- since the epoch, keep microseconds exact in a float8 (a day is 86,400 s).
-- Same signature, same results; ACLs survive CREATE OR REPLACE.

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
