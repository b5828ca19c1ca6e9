-- pgbench script of bench/api.sh: the query GET /v1/readings runs for the
-- first page (limit=1000, ascending, no from/to) of one series. It is the Go
-- constant named below, copied verbatim with its bind parameters replaced by
-- pgbench variables (api.sh passes the values with -D; bench/api-sqlcheck.go
-- compares this copy with the Go source before a run):
--   $1-$4  the scope filter: any device, devices, any parameter, prefixes
--          (true, {}, true, {}: the whole dataset, as with auth off)
--   $5     the series id: drawn from the same series as bench/api-wrk.lua draws
--   $6, $7 from and to: NULL (the API binds NULL for an open range)
--   $8     the limit: the API asks for limit+1 = 1001 rows to know whether
--          there is a next page
-- mirrors: services/api/internal/store readingsAscSQL $1=:any_device $2=:devices $3=:any_param $4=:prefixes $5=:sid $6=NULL $7=NULL $8=:limit
\set sid random(:lo, :hi)
SELECT r.time, r.utc_offset_min, r.value_num, r.value_text
FROM sensorhub.readings r
WHERE r.series_id = (SELECT s.series_id FROM sensorhub.series s WHERE s.series_id = :sid AND (:any_device::boolean OR s.device_id = ANY(:devices::text[]))
  AND (:any_param::boolean OR EXISTS (SELECT FROM unnest(:prefixes::text[]) AS a(prefix) WHERE starts_with(s.parameter, a.prefix))))
  AND r.time >= coalesce(NULL::timestamptz, '-infinity')
  AND r.time < coalesce(NULL::timestamptz, 'infinity') ORDER BY r.time LIMIT :limit;
