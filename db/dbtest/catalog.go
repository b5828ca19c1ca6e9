package dbtest

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// deviceSummaryMismatchSQL counts the devices whose row in
// sensorhub.device_summary differs from an aggregation of their series, and
// describes one of them.
const deviceSummaryMismatchSQL = `
WITH c AS (SELECT device_id, count(*)::integer AS n, sum(reading_count)::bigint AS readings,
                  min(first_time) AS lo, max(last_time) AS hi
           FROM sensorhub.series GROUP BY device_id)
SELECT count(*), coalesce(min(format('device %s: summary %s %s %s..%s, series %s %s %s..%s', device_id,
       d.series_count, d.reading_count, d.first_time, d.last_time, c.n, c.readings, c.lo, c.hi)), '')
FROM sensorhub.device_summary d FULL JOIN c USING (device_id)
WHERE (d.series_count, d.reading_count, d.first_time, d.last_time) IS DISTINCT FROM (c.n, c.readings, c.lo, c.hi)`

// CheckDeviceSummary fails t unless the per-device totals the catalog's
// triggers keep equal an aggregation of the series.
func CheckDeviceSummary(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	var bad int
	var example string
	if err := pool.QueryRow(t.Context(), deviceSummaryMismatchSQL).Scan(&bad, &example); err != nil {
		t.Fatalf("dbtest: check device summary: %v", err)
	}
	if bad > 0 {
		t.Errorf("%d devices' summaries disagree with their series, e.g. %s", bad, example)
	}
}
