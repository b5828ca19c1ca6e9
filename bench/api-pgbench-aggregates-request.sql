-- pgbench script of bench/api.sh, a diagnostic next to
-- api-pgbench-aggregates.sql: ALL the SQL one GET /v1/aggregates request runs,
-- in order: the series lookup (store.ListSeries), then the aggregate query.
-- Both are the Go constants named below, copied verbatim with their bind
-- parameters replaced by pgbench variables (bench/api-sqlcheck.go compares
-- them with the Go source before a run). The lookup needs the device and
-- parameter names, which pgbench cannot draw at random, so this script reads
-- one fixed series (:device, :params = {parameter}, :sid its id).
--   lookup: $1-$4 the scope filter (all), $5 device, $6 {parameter},
--           $7-$9 no prefix, glob or type (NULL), $10 max points + 1
-- mirrors: services/api/internal/store listSeriesSQL $1=:any_device $2=:devices $3=:any_param $4=:prefixes $5=:device $6=:params $7=NULL $8=NULL $9=NULL $10=:max_series
-- mirrors: services/api/internal/store rollup1hOneSQL $1=ARRAY[:sid] $2=:text_ids $3=:buckets $4=:from $5=:to
SELECT s.series_id, s.device_id, s.parameter, s.value_type, s.first_time, s.last_time, s.reading_count
FROM sensorhub.series s
WHERE (:any_device::boolean OR s.device_id = ANY(:devices::text[]))
  AND (:any_param::boolean OR EXISTS (SELECT FROM unnest(:prefixes::text[]) AS a(prefix) WHERE starts_with(s.parameter, a.prefix)))
  AND (:device::text IS NULL OR s.device_id = :device)
  AND (:params::text[] IS NULL OR s.parameter = ANY(:params))
  AND (NULL::text IS NULL OR starts_with(s.parameter, NULL))
  AND (NULL::text IS NULL OR s.parameter ~ NULL)
  AND (NULL::text IS NULL OR s.value_type = NULL)
ORDER BY s.device_id, s.parameter
LIMIT :max_series;
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
