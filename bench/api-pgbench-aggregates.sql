-- pgbench script of bench/api.sh: the query GET /v1/aggregates runs for 7 days
-- of 1-hour buckets of one numeric series, which the planner serves from
-- rollup_1h (after its check that no load left the window's rollups pending,
-- which the bench's fully refreshed database passes). It is the Go constant named below, copied verbatim with its bind
-- parameters replaced by pgbench variables (api.sh passes the values with -D;
-- bench/api-sqlcheck.go compares this copy with the Go source before a run):
--   $1 int4[]        numeric series ids: the API binds {id}; here ARRAY[:sid],
--                    sid drawn from the same series as bench/api-wrk.lua draws
--   $2 int4[]        text series ids: empty, as for any numeric series
--   $3 timestamptz[] the 168 bucket starts the planner computes
--   $4, $5           from and to
-- mirrors: services/api/internal/store rollup1hOneSQL $1=ARRAY[:sid] $2=:text_ids $3=:buckets $4=:from $5=:to
\set sid random(:lo, :hi)
WITH stale AS MATERIALIZED (
    SELECT EXISTS (SELECT FROM sensorhub.rollup_pending
                   WHERE lo < :to::timestamptz AND hi >= :from::timestamptz - interval '1 day') AS yes)
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
FROM (SELECT r.*, width_bucket(bucket, :buckets::timestamptz[]) AS i
      FROM sensorhub.rollup_1h r
      WHERE series_id = ANY(ARRAY[:sid]::int4[]) AND bucket >= :from::timestamptz AND bucket < :to::timestamptz
        AND NOT (SELECT yes FROM stale)) g
GROUP BY series_id, i
UNION ALL
SELECT series_id, width_bucket(time, :buckets::timestamptz[]) AS i,
       count(*) AS count, sum(value_num ORDER BY time), min(value_num), max(value_num),
       stddev_samp(value_num ORDER BY time),
       (array_agg(value_num ORDER BY time))[1],
       (array_agg(value_num ORDER BY time DESC))[1],
       NULL::text, NULL::text
FROM sensorhub.readings
WHERE series_id = ANY(ARRAY[:sid]::int4[]) AND time >= :from::timestamptz AND time < :to::timestamptz
  AND value_num IS NOT NULL
  AND (SELECT yes FROM stale)
GROUP BY series_id, i
UNION ALL
SELECT series_id, width_bucket(time, :buckets::timestamptz[]) AS i,
       count(*) AS count, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       (array_agg(value_text ORDER BY time))[1],
       (array_agg(value_text ORDER BY time DESC))[1]
FROM sensorhub.readings
WHERE series_id = ANY(:text_ids::int4[]) AND time >= :from::timestamptz AND time < :to::timestamptz
  AND value_text IS NOT NULL
GROUP BY series_id, i
ORDER BY 1, 2;
