package db_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

// TestBackgroundMaterializerDrainsPending runs TimescaleDB's job
// sensorhub.materialize_pending (migration 00013) as its scheduler would: it
// must materialize every pending range into all three aggregates, below the
// watermark too, delete the ranges, and stand aside while ingest's refresh
// holds the lock.
func TestBackgroundMaterializerDrainsPending(t *testing.T) {
	d := dbtest.NewFlavor(t, db.FlavorTimescaleDB)
	ctx := t.Context()
	// Scheduled by the migration (dbtest's template databases pause it).
	fresh := dbtest.Empty(t)
	if _, err := db.Migrate(ctx, fresh, db.Options{Flavor: db.FlavorTimescaleDB}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	var every time.Duration
	var scheduled, canLogin bool
	err = conn.QueryRow(ctx, `
		SELECT extract(epoch FROM j.schedule_interval)::bigint * 1000000000, j.scheduled, r.rolcanlogin
		FROM timescaledb_information.jobs j JOIN pg_roles r ON r.oid = j.owner
		WHERE j.proc_schema = 'sensorhub' AND j.proc_name = 'materialize_pending'`).Scan(&every, &scheduled, &canLogin)
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("job sensorhub.materialize_pending: %v", err)
	}
	if every != 30*time.Second || !scheduled || !canLogin {
		t.Errorf("materialize_pending runs every %v, scheduled %v, as a role that can log in: %v; want every 30s, true, true", every, scheduled, canLogin)
	}
	var job int
	if err := d.Pool.QueryRow(ctx, `SELECT job_id FROM timescaledb_information.jobs WHERE proc_schema = 'sensorhub' AND proc_name = 'materialize_pending'`).Scan(&job); err != nil {
		t.Fatal(err)
	}

	start := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	var rs []seed.Reading
	for i := range 24 * 12 {
		rs = append(rs, seed.Reading{DeviceID: "d", Parameter: "p", Time: start.Add(time.Duration(i) * 5 * time.Minute), Num: seed.Num(float64(i))})
	}
	if err := seed.Load(ctx, d.Pool, rs); err != nil {
		t.Fatal(err)
	}
	// Written as a deferring load writes: readings between the materialized
	// ones (below the watermark) and days after them, past the chunk
	// boundary of 2024-06-06 (7-day chunks from the epoch), where the job
	// cuts its refreshes.
	const insert = `
		INSERT INTO sensorhub.readings (series_id, time, utc_offset_min, value_num)
		SELECT s.series_id, t, 0, 1000 FROM sensorhub.series s,
		       generate_series($1::timestamptz, $2::timestamptz, interval '7 minutes') t
		ON CONFLICT DO NOTHING`
	lo, hi := start.Add(time.Minute), start.Add(6*24*time.Hour+7*time.Hour)
	if _, err := d.Pool.Exec(ctx, insert, lo, hi); err != nil {
		t.Fatal(err)
	}
	var chunks int
	if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'`).Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if chunks < 2 {
		t.Fatalf("the readings fill %d chunk; the test needs a chunk boundary inside the pending ranges", chunks)
	}
	// stale counts the rollup buckets whose count disagrees with a recount.
	stale := func() int {
		t.Helper()
		var sum int
		rows, err := d.Pool.Query(ctx, `
			SELECT w, (SELECT count(*) FROM (
			          SELECT date_bin(w, time, '2000-01-03 00:00:00+00') AS bucket, count(*) AS n
			          FROM sensorhub.readings GROUP BY 1) x
			        FULL JOIN (SELECT bucket, count AS n FROM sensorhub.rollup_1m WHERE w = '1 minute'
			                   UNION ALL SELECT bucket, count FROM sensorhub.rollup_1h WHERE w = '1 hour'
			                   UNION ALL SELECT bucket, count FROM sensorhub.rollup_1d WHERE w = '1 day') r USING (bucket)
			        WHERE x.n IS DISTINCT FROM r.n)
			FROM unnest(ARRAY['1 minute', '1 hour', '1 day']::interval[]) w`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var w time.Duration
			var k int
			if err := rows.Scan(&w, &k); err != nil {
				t.Fatal(err)
			}
			sum += k
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	pending := func() (n int) {
		t.Helper()
		if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM sensorhub.rollup_pending`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := stale(); n == 0 {
		t.Fatal("the rollups already agree with the readings: the data does not show a stale range")
	}
	if _, err := d.Pool.Exec(ctx, `INSERT INTO sensorhub.rollup_pending (lo, hi) VALUES ($1, $2), ($3, $4)`,
		lo, start.Add(20*time.Hour), start.Add(20*time.Hour+30*time.Minute), hi); err != nil {
		t.Fatal(err)
	}

	// While ingest refreshes (it holds the lock), the job leaves the ranges.
	held, err := d.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Exec(ctx, `SELECT pg_advisory_lock(hashtext('sensorhub.refresh_caggs'))`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `CALL run_job($1)`, job); err != nil {
		t.Fatalf("run_job while ingest holds the lock: %v", err)
	}
	if n := pending(); n != 2 {
		t.Errorf("the job ran while ingest held the refresh lock and left %d of 2 pending ranges", n)
	}
	if _, err := held.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('sensorhub.refresh_caggs'))`); err != nil {
		t.Fatal(err)
	}
	held.Release()

	if _, err := d.Pool.Exec(ctx, `CALL run_job($1)`, job); err != nil {
		t.Fatalf("run_job: %v", err)
	}
	if n := pending(); n != 0 {
		t.Errorf("%d ranges still pending after the job ran", n)
	}
	if n := stale(); n != 0 {
		t.Errorf("after the job ran, %d rollup buckets disagree with a recount of the readings", n)
	}
}
