-- pgbench script of bench/api.sh's distinct-request runs: the query GET
-- /v1/aggregates runs for 1-hour buckets of one numeric series over a window
-- of 144 to 168 hours starting at an hour drawn at random, the distribution of
-- the API's paths in bench/out/api-paths-aggregates-distinct.txt. As
-- api-pgbench-aggregates.sql, but with the window drawn: api.sh passes lo,
-- hi (the series), base (the hour of their first reading, Unix seconds),
-- hmax (the largest hour offset either way) with -D. The bucket starts
-- ($3) are computed in the statement, once (an InitPlan), where the API
-- binds the array its planner computed.
-- mirrors: services/api/internal/store rollup1hOneSQL $1=ARRAY[:sid] $2=:text_ids $3=ARRAY(SELECT(generate_series(to_timestamp(:t0),to_timestamp(:tl),'1h'))) $4=to_timestamp(:t0) $5=to_timestamp(:t1)
\set sid random(:lo, :hi)
\set h random(-:hmax, :hmax)
\set len random(144, 168)
\set t0 :base + 3600 * :h
\set tl :t0 + 3600 * (:len - 1)
\set t1 :t0 + 3600 * :len
WITH stale AS MATERIALIZED (
    SELECT EXISTS (SELECT FROM sensorhub.rollup_pending
                   WHERE lo < to_timestamp(:t1)::timestamptz AND hi >= to_timestamp(:t0)::timestamptz - interval '1 day') AS yes)
SELECT 0, 0, 0::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       NULL::text, NULL::text
WHERE (SELECT yes FROM stale)
UNION ALL
SELECT series_id, i,
       sum(count)::bigint AS count, sum(sum), min(min), max(max),
       sensorhub.stddev_merge(ARRAY[count::float8, sum, m2]),
       (array_agg(first ORDER BY first_time))[1],
       (array_agg(last ORDER BY last_time DESC))[1],
       NULL::text, NULL::text
FROM (SELECT r.*, width_bucket(bucket, ARRAY(SELECT(generate_series(to_timestamp(:t0),to_timestamp(:tl),'1h')))::timestamptz[]) AS i
      FROM sensorhub.rollup_1h r
      WHERE series_id = ANY(ARRAY[:sid]::int4[]) AND bucket >= to_timestamp(:t0)::timestamptz AND bucket < to_timestamp(:t1)::timestamptz
        AND NOT (SELECT yes FROM stale)) g
GROUP BY series_id, i
UNION ALL
SELECT series_id, width_bucket(time, ARRAY(SELECT(generate_series(to_timestamp(:t0),to_timestamp(:tl),'1h')))::timestamptz[]) AS i,
       count(*) AS count, sum(value_num ORDER BY time), min(value_num), max(value_num),
       stddev_samp(value_num ORDER BY time),
       (array_agg(value_num ORDER BY time))[1],
       (array_agg(value_num ORDER BY time DESC))[1],
       NULL::text, NULL::text
FROM sensorhub.readings
WHERE series_id = ANY(ARRAY[:sid]::int4[]) AND time >= to_timestamp(:t0)::timestamptz AND time < to_timestamp(:t1)::timestamptz
  AND value_num IS NOT NULL
  AND (SELECT yes FROM stale)
GROUP BY series_id, i
UNION ALL
SELECT series_id, width_bucket(time, ARRAY(SELECT(generate_series(to_timestamp(:t0),to_timestamp(:tl),'1h')))::timestamptz[]) AS i,
       count(*) AS count, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       (array_agg(value_text ORDER BY time))[1],
       (array_agg(value_text ORDER BY time DESC))[1]
FROM sensorhub.readings
WHERE series_id = ANY(:text_ids::int4[]) AND time >= to_timestamp(:t0)::timestamptz AND time < to_timestamp(:t1)::timestamptz
  AND value_text IS NOT NULL
GROUP BY series_id, i
ORDER BY 1, 2;
