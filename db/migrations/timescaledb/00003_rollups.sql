-- Rollups of numeric series on TimescaleDB: hierarchical continuous aggregates
-- (1m from readings, 1h from 1m, 1d from 1h) with real-time aggregation, created
-- WITH NO DATA because TimescaleDB cannot materialise inside a transaction.
-- Same columns as the plain-PostgreSQL tables; see postgres/00003_rollups.sql for
-- how m2 re-aggregates exactly.

-- +goose Up
CREATE MATERIALIZED VIEW sensorhub.rollup_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket('1 minute', time) AS bucket,
       count(value_num)                       AS count,
       sum(value_num)                         AS sum,
       var_pop(value_num) * count(value_num)  AS m2,
       min(value_num)                         AS min,
       max(value_num)                         AS max,
       first(value_num, time)                 AS first,
       min(time)                              AS first_time,
       last(value_num, time)                  AS last,
       max(time)                              AS last_time
FROM sensorhub.readings
WHERE value_num IS NOT NULL
GROUP BY series_id, time_bucket('1 minute', time)
WITH NO DATA;

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

-- Policies keep the aggregates current for data that arrives without ingest's
-- explicit refresh (and repair ranges a crashed ingest left pending).
SELECT add_continuous_aggregate_policy('sensorhub.rollup_1m',
    start_offset => NULL, end_offset => interval '1 minute', schedule_interval => interval '1 minute');
SELECT add_continuous_aggregate_policy('sensorhub.rollup_1h',
    start_offset => NULL, end_offset => interval '1 hour', schedule_interval => interval '15 minutes');
SELECT add_continuous_aggregate_policy('sensorhub.rollup_1d',
    start_offset => NULL, end_offset => interval '1 day', schedule_interval => interval '1 hour');

-- +goose Down
DROP MATERIALIZED VIEW sensorhub.rollup_1d;
DROP MATERIALIZED VIEW sensorhub.rollup_1h;
DROP MATERIALIZED VIEW sensorhub.rollup_1m;
