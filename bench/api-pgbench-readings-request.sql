-- pgbench script of bench/api.sh, a diagnostic next to
-- api-pgbench-readings.sql: ALL the SQL one GET /v1/readings request runs, in
-- order: the series lookup (store.FindSeries), then the page query. Both are
-- the Go constants named below, copied verbatim with their bind parameters
-- replaced by pgbench variables (bench/api-sqlcheck.go compares them with the
-- Go source before a run). The lookup needs the device and parameter names,
-- which pgbench cannot draw at random, so this script reads one fixed series
-- (:device, :parameter, :sid its id).
-- mirrors: services/api/internal/store findSeriesSQL $1=:any_device $2=:devices $3=:any_param $4=:prefixes $5=:device $6=:parameter
-- mirrors: services/api/internal/store readingsAscSQL $1=:any_device $2=:devices $3=:any_param $4=:prefixes $5=:sid $6=NULL $7=NULL $8=:limit
SELECT s.series_id, s.device_id, s.parameter, s.value_type, s.first_time, s.last_time, s.reading_count
FROM sensorhub.series s
WHERE (:any_device::boolean OR s.device_id = ANY(:devices::text[]))
  AND (:any_param::boolean OR EXISTS (SELECT FROM unnest(:prefixes::text[]) AS a(prefix) WHERE starts_with(s.parameter, a.prefix)))
  AND s.device_id = :device AND s.parameter = :parameter;
SELECT r.time, r.utc_offset_min, r.value_num, r.value_text
FROM sensorhub.readings r
WHERE r.series_id = (SELECT s.series_id FROM sensorhub.series s WHERE s.series_id = :sid AND (:any_device::boolean OR s.device_id = ANY(:devices::text[]))
  AND (:any_param::boolean OR EXISTS (SELECT FROM unnest(:prefixes::text[]) AS a(prefix) WHERE starts_with(s.parameter, a.prefix))))
  AND r.time >= coalesce(NULL::timestamptz, '-infinity')
  AND r.time < coalesce(NULL::timestamptz, 'infinity') ORDER BY r.time LIMIT :limit;
