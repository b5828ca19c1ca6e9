package db_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
)

// TestMigrateStopsTimescaleJobs: no TimescaleDB job of the schema starts
// while migrations run (they drop and recreate jobs, which has crashed
// policy workers), and the database's scheduler runs again afterwards, also
// after a migrate with nothing to do repairs workers left stopped.
func TestMigrateStopsTimescaleJobs(t *testing.T) {
	for _, flavor := range dbtest.Flavors(t) {
		if flavor != db.FlavorTimescaleDB {
			continue
		}
		t.Run(string(flavor), func(t *testing.T) {
			ctx := t.Context()
			dsn := dbtest.Empty(t)
			if _, err := db.Migrate(ctx, dsn, db.Options{Flavor: flavor}); err != nil {
				t.Fatal(err)
			}
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()

			// A job that started during the migrations started before the
			// last one was recorded.
			var early []string
			if err := pool.QueryRow(ctx, `
				SELECT coalesce(array_agg(j.job_id || ' (' || j.proc_name || ' ' || coalesce(j.hypertable_name, '') || ')'), '{}')
				FROM timescaledb_information.job_stats s JOIN timescaledb_information.jobs j USING (job_id)
				WHERE j.job_id >= 1000 AND s.last_run_started_at > '-infinity'
				  AND s.last_run_started_at < (SELECT max(tstamp) FROM sensorhub.schema_migrations)`).Scan(&early); err != nil {
				t.Fatal(err)
			}
			if len(early) != 0 {
				t.Errorf("jobs started while the migrations ran: %v", early)
			}

			scheduler := func() bool {
				var n int
				if err := pool.QueryRow(ctx, `
					SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND backend_type = 'TimescaleDB Background Worker Scheduler'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n > 0
			}
			waitFor := func(want bool) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for scheduler() != want {
					if time.Now().After(deadline) {
						t.Fatalf("scheduler running: %v after 20 s, want %v", !want, want)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			waitFor(true)

			if _, err := pool.Exec(ctx, `SELECT _timescaledb_functions.stop_background_workers()`); err != nil {
				t.Fatal(err)
			}
			waitFor(false)
			res, err := db.Migrate(ctx, dsn, db.Options{Flavor: flavor})
			if err != nil {
				t.Fatal(err)
			}
			if res.Applied != 0 {
				t.Errorf("second migrate applied %d migrations, want 0", res.Applied)
			}
			waitFor(true)
		})
	}
}
