-- rollup_1h and rollup_1d merged m2 with the cancelling form that
-- 00010_merge_moments.sql describes. A continuous aggregate's query cannot be
-- altered, so both are created anew with merge_moments, in this transaction:
-- readers see the old views or the new ones, never neither. The new views
-- start empty, and with real-time aggregation they answer from rollup_1m until
-- 00012 materializes them, so every answer is exact throughout, only slower
-- for a while. Ownership, policies and grants are set up as 00003, 00004 and
-- 00006 did for the views they replace.
--
-- Every refresh policy, rollup_1m's too, now refreshes in one pass
-- (buckets_per_batch 0). TimescaleDB 2.28 splits a refresh into batches of 10
-- buckets and skips the bucket that starts exactly at the end of the newest
-- invalidation when that end falls on a batch edge (timescale/timescaledb
-- #10221, fixed in 2.29, which no longer supports PostgreSQL 15); the bucket
-- stays stale, and below the watermark real-time aggregation does not cover
-- it. One pass has no batch edges, and for our refreshes it is faster too.

-- +goose Up
DROP MATERIALIZED VIEW sensorhub.rollup_1d;
DROP MATERIALIZED VIEW sensorhub.rollup_1h;

CREATE MATERIALIZED VIEW sensorhub.rollup_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket('1 hour', bucket) AS bucket,
       sum(count)::bigint AS count,
       sum(sum)           AS sum,
       (sensorhub.merge_moments(ARRAY[count::float8, sum, m2]))[3] AS m2,
       min(min)           AS min,
       max(max)           AS max,
       first(first, first_time) AS first,
       min(first_time)    AS first_time,
       last(last, last_time)    AS last,
       max(last_time)     AS last_time
FROM sensorhub.rollup_1m
GROUP BY series_id, time_bucket('1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW sensorhub.rollup_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket('1 day', bucket) AS bucket,
       sum(count)::bigint AS count,
       sum(sum)           AS sum,
       (sensorhub.merge_moments(ARRAY[count::float8, sum, m2]))[3] AS m2,
       min(min)           AS min,
       max(max)           AS max,
       first(first, first_time) AS first,
       min(first_time)    AS first_time,
       last(last, last_time)    AS last,
       max(last_time)     AS last_time
FROM sensorhub.rollup_1h
GROUP BY series_id, time_bucket('1 day', bucket)
WITH NO DATA;

SELECT alter_job(job_id, config => config || '{"buckets_per_batch": 0}')
FROM timescaledb_information.jobs
WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_schema = 'sensorhub' AND hypertable_name = 'rollup_1m';
SELECT add_continuous_aggregate_policy('sensorhub.rollup_1h',
    start_offset => NULL, end_offset => interval '1 hour', schedule_interval => interval '15 minutes', buckets_per_batch => 0);
SELECT add_continuous_aggregate_policy('sensorhub.rollup_1d',
    start_offset => NULL, end_offset => interval '1 day', schedule_interval => interval '1 hour', buckets_per_batch => 0);

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_reader') THEN
        GRANT SELECT ON sensorhub.rollup_1h, sensorhub.rollup_1d TO sensorhub_reader;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_writer') THEN
        RAISE WARNING 'role sensorhub_writer does not exist: continuous aggregates stay owned by %, and ingest must run as that user to refresh them', current_user;
        RETURN;
    END IF;
    GRANT SELECT ON sensorhub.rollup_1h, sensorhub.rollup_1d TO sensorhub_writer;
    IF NOT pg_has_role(current_user, 'sensorhub_writer', 'MEMBER') THEN
        EXECUTE format('GRANT sensorhub_writer TO %I', current_user);
    END IF;
    ALTER MATERIALIZED VIEW sensorhub.rollup_1h OWNER TO sensorhub_writer;
    ALTER MATERIALIZED VIEW sensorhub.rollup_1d OWNER TO sensorhub_writer;
    BEGIN
        UPDATE _timescaledb_config.bgw_job SET owner = current_user::regrole
        WHERE proc_name = 'policy_refresh_continuous_aggregate' AND owner = 'sensorhub_writer'::regrole;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'refresh policies now belong to the NOLOGIN role sensorhub_writer and will not run; give them to a login role';
    END;
END
$$;
-- +goose StatementEnd

-- +goose Down
SELECT alter_job(job_id, config => config - 'buckets_per_batch')
FROM timescaledb_information.jobs
WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_schema = 'sensorhub' AND hypertable_name = 'rollup_1m';
DROP MATERIALIZED VIEW sensorhub.rollup_1d;
DROP MATERIALIZED VIEW sensorhub.rollup_1h;

CREATE MATERIALIZED VIEW sensorhub.rollup_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket('1 hour', bucket) AS bucket,
       sum(count)::bigint AS count,
       sum(sum)           AS sum,
       greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)) AS m2,
       min(min)           AS min,
       max(max)           AS max,
       first(first, first_time) AS first,
       min(first_time)    AS first_time,
       last(last, last_time)    AS last,
       max(last_time)     AS last_time
FROM sensorhub.rollup_1m
GROUP BY series_id, time_bucket('1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW sensorhub.rollup_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket('1 day', bucket) AS bucket,
       sum(count)::bigint AS count,
       sum(sum)           AS sum,
       greatest(0, sum(m2) + sum(sum * sum / count) - sum(sum) * sum(sum) / sum(count)) AS m2,
       min(min)           AS min,
       max(max)           AS max,
       first(first, first_time) AS first,
       min(first_time)    AS first_time,
       last(last, last_time)    AS last,
       max(last_time)     AS last_time
FROM sensorhub.rollup_1h
GROUP BY series_id, time_bucket('1 day', bucket)
WITH NO DATA;
