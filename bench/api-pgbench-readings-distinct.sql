-- pgbench script of bench/api.sh's distinct-request runs: the query GET
-- /v1/readings runs for a page of 1,000 readings of one series from a
-- minute drawn at random, the distribution of the API's paths in
-- bench/out/api-paths-readings-distinct.txt. As api-pgbench-readings.sql,
-- but with from ($6) bound: api.sh passes lo, hi (the series), t0 (the
-- series' first minute, Unix seconds) and kmax (the last minute offset
-- whose page is still full) with -D.
-- mirrors: services/api/internal/store readingsAscSQL $1=:any_device $2=:devices $3=:any_param $4=:prefixes $5=:sid $6=to_timestamp(:ts) $7=NULL $8=:limit
\set sid random(:lo, :hi)
\set ts :t0 + 60 * random(0, :kmax)
SELECT r.time, r.utc_offset_min, r.value_num, r.value_text
FROM sensorhub.readings r
WHERE r.series_id = (SELECT s.series_id FROM sensorhub.series s WHERE s.series_id = :sid AND (:any_device::boolean OR s.device_id = ANY(:devices::text[]))
  AND (:any_param::boolean OR EXISTS (SELECT FROM unnest(:prefixes::text[]) AS a(prefix) WHERE starts_with(s.parameter, a.prefix))))
  AND r.time >= coalesce(to_timestamp(:ts)::timestamptz, '-infinity')
  AND r.time < coalesce(NULL::timestamptz, 'infinity') ORDER BY r.time LIMIT :limit;
