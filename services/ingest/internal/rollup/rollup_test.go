package rollup_test

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// TestConcurrentRefreshes: refreshes that meet (a job's, `ingest refresh`,
// the write service's), each cut into its own number of parts, take turns; each succeeds, nothing stays pending,
// and every bucket holds the count of its readings once.
func TestConcurrentRefreshes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		ctx := t.Context()
		if _, err := d.Pool.Exec(ctx, `INSERT INTO sensorhub.series (device_id, parameter, value_type) SELECT 'd', 'p' || i, 'numeric' FROM generate_series(1, 6) i`); err != nil {
			t.Fatal(err)
		}
		if d.Flavor == "postgres" {
			if _, err := d.Pool.Exec(ctx, `SELECT sensorhub.ensure_partitions(ARRAY[timestamptz '2024-01-01', '2024-01-08'])`); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Pool.Exec(ctx, `
			INSERT INTO sensorhub.readings (series_id, time, utc_offset_min, value_num)
			SELECT series_id, timestamptz '2024-01-01' + g * interval '10 seconds', 0, g FROM sensorhub.series, generate_series(0, 30000) g`); err != nil {
			t.Fatal(err)
		}
		if d.Flavor == "timescaledb" {
			var chunks int
			if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'`).Scan(&chunks); err != nil {
				t.Fatal(err)
			}
			if chunks < 2 {
				t.Fatalf("the readings fill %d chunk; the test needs a chunk boundary inside the refreshed range", chunks)
			}
		}
		lo, hi := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 4, 11, 20, 0, 0, time.UTC)
		for range 3 {
			if _, err := d.Pool.Exec(ctx, `INSERT INTO sensorhub.rollup_pending (lo, hi) VALUES ($1, $2)`, lo, hi); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		// Different part counts, as the write service (1) and `ingest
		// refresh -workers 2` use: the function's per-part lock alone does
		// not keep part 0 of 1 from meeting part 1 of 2 on the same rows.
		for _, parts := range []int{1, 2, 3, 1} {
			wg.Go(func() {
				if _, err := rollup.Refresh(ctx, d.Pool, parts); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent refresh: %v", err)
		}
		var pending, bad int
		if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM sensorhub.rollup_pending`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		// The readings cross a chunk boundary of TimescaleDB (2024-01-04, 7-day
		// chunks from the epoch), where its refresh is cut in two windows.
		if err := d.Pool.QueryRow(ctx, `
			SELECT sum((SELECT count(*) FROM (
			           SELECT series_id, date_bin(w, time, '2000-01-03') AS bucket, count(*) AS n, sum(value_num) AS s
			           FROM sensorhub.readings GROUP BY 1, 2) raw
			         FULL JOIN (SELECT series_id, bucket, count, sum FROM sensorhub.rollup_1m WHERE w = '1 minute'
			                    UNION ALL SELECT series_id, bucket, count, sum FROM sensorhub.rollup_1h WHERE w = '1 hour'
			                    UNION ALL SELECT series_id, bucket, count, sum FROM sensorhub.rollup_1d WHERE w = '1 day') r
			           USING (series_id, bucket)
			         WHERE (r.count, r.sum) IS DISTINCT FROM (raw.n, raw.s)))::int
			FROM unnest(ARRAY['1 minute', '1 hour', '1 day']::interval[]) w`).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		if pending != 0 || bad != 0 {
			t.Errorf("after the refreshes: %d ranges pending, %d buckets disagree with their readings", pending, bad)
		}
	})
}
