package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/config"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

// concurrentData is the dataset every concurrency case loads: one file
// holding all of it, and four shards that each hold half of its lines, every
// line in two shards, so that four jobs write the same series over the same
// time range and each reading twice.
type concurrentData struct {
	full   string
	shards []string
}

func writeConcurrentData(t *testing.T) concurrentData {
	t.Helper()
	// The range crosses an hour, a day and Europe's DST change, with
	// readings landing exactly on bucket starts.
	c := gen.Config{Seed: 11, Devices: 3, Params: 8, TextShare: 0.25, Start: time.Date(2024, 3, 30, 22, 0, 0, 0, time.FixedZone("", 2*3600)),
		Interval: 20 * time.Second, Points: 900, Format: dataset.NDJSON}
	d := concurrentData{full: writeDataset(t, c, "all.ndjson")}
	f, err := os.Open(d.full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	bufs := make([]bytes.Buffer, 4)
	sc := bufio.NewScanner(f)
	for k := 0; sc.Scan(); k++ {
		for _, i := range []int{k % 4, (k + 1) % 4} {
			bufs[i].Write(sc.Bytes())
			bufs[i].WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range bufs {
		p := filepath.Join(dir, fmt.Sprintf("shard%d.ndjson", i))
		must(t, os.WriteFile(p, bufs[i].Bytes(), 0o644))
		d.shards = append(d.shards, p)
	}
	return d
}

// TestConcurrentJobsEndExact runs several ingest processes at once, as one
// Job pod per shard of files or an operator's re-run during a run would, on
// each flavor: every one must exit 0, and the database must end with exactly
// the input's readings, a catalog and rollups that agree with them, and a
// new dataset version.
func TestConcurrentJobsEndExact(t *testing.T) {
	data := writeConcurrentData(t)
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		// The reference: the whole file loaded once, alone.
		if out, err := ingestCmd(t, d.DSN, "load", "-rollups", "wait", data.full).CombinedOutput(); err != nil {
			t.Fatalf("reference load: %v\n%s", err, out)
		}
		want := readTotals(t, d.Pool)
		if want.readings != 3*8*900 || want.pending != 0 {
			t.Fatalf("reference load totals %+v", want)
		}

		// Each case in both rollup modes: jobs that refresh before exiting,
		// and jobs that leave it to `ingest refresh`.
		cases := []struct {
			name  string
			files []string
		}{
			{"identical files", []string{data.full, data.full, data.full, data.full}},
			{"overlapping files", data.shards},
		}
		for _, tc := range cases {
			for _, mode := range []string{config.RollupsWait, config.RollupsDefer} {
				t.Run(tc.name+" "+mode, func(t *testing.T) {
					e := dbtest.NewFlavor(t, d.Flavor)
					v0 := datasetVersion(t, e.Pool)
					runJobs(t, e.DSN, mode, tc.files, nil)
					assertExact(t, e.DSN, e.Pool, mode, want, v0)
				})
			}
		}

		if d.Flavor == db.FlavorTimescaleDB {
			t.Run("refresh policies running", func(t *testing.T) {
				e := dbtest.NewFlavor(t, d.Flavor)
				v0 := datasetVersion(t, e.Pool)
				var ran, refused atomic.Int64
				// Shards 0 and 2 hold every line between them.
				runJobs(t, e.DSN, config.RollupsWait, []string{data.shards[0], data.shards[2]}, func(ctx context.Context) {
					runPolicies(ctx, t, e.Pool, &ran, &refused)
				})
				t.Logf("refresh policies ran %d times during the loads, %d refused as concurrent", ran.Load(), refused.Load())
				if ran.Load()+refused.Load() == 0 {
					t.Error("no refresh policy ran during the loads")
				}
				assertExact(t, e.DSN, e.Pool, config.RollupsWait, want, v0)
			})
		}

		t.Run("migrate while loading", func(t *testing.T) {
			// A database one migration short of the rollup rework, with data,
			// upgraded while two jobs load.
			dsn := dbtest.Empty(t)
			const before = 10
			if _, err := db.Migrate(t.Context(), dsn, db.Options{Flavor: d.Flavor, UpTo: before}); err != nil {
				t.Fatal(err)
			}
			if out, err := ingestCmd(t, dsn, "load", data.shards[0]).CombinedOutput(); err != nil {
				t.Fatalf("first load: %v\n%s", err, out)
			}
			pool, err := pgxpool.New(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			v0 := datasetVersion(t, pool)
			runJobs(t, dsn, config.RollupsDefer, []string{data.shards[1], data.shards[2]}, func(context.Context) {
				// Started with the jobs, run to its end: deferring jobs may
				// finish before the four migrations do.
				res, err := db.Migrate(t.Context(), dsn, db.Options{Flavor: d.Flavor})
				if err != nil {
					t.Errorf("migrate during the loads: %v", err)
				} else if res.Applied == 0 || res.Version != db.ExpectedVersion() {
					t.Errorf("migrate during the loads applied %d, at version %d; want up to %d", res.Applied, res.Version, db.ExpectedVersion())
				}
			})
			assertExact(t, dsn, pool, config.RollupsDefer, want, v0)
		})
	})
}

// runJobs starts one ingest process per file at once, with -rollups mode,
// runs during (if any) while they run, and fails t unless every process
// exits 0.
func runJobs(t *testing.T, dsn, mode string, files []string, during func(ctx context.Context)) {
	t.Helper()
	type job struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	jobs := make([]*job, len(files))
	for i, f := range files {
		j := &job{cmd: ingestCmd(t, dsn, "load", "-rollups", mode, "-batch-size", "700", "-workers", "2", f)}
		j.cmd.Stdout, j.cmd.Stderr = &j.out, &j.out
		jobs[i] = j
	}
	for _, j := range jobs {
		if err := j.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	if during != nil {
		wg.Go(func() { during(ctx) })
	}
	for i, j := range jobs {
		if code := exitCodeOf(t, j.cmd.Wait()); code != 0 {
			t.Errorf("job %d of %d (%s) exited %d:\n%s", i+1, len(jobs), filepath.Base(files[i]), code, j.out.String())
		}
	}
	cancel()
	wg.Wait()
}

// runPolicies runs the rollups' refresh policies in the foreground, one
// after the other, until ctx ends, as the scheduler would at any moment.
func runPolicies(ctx context.Context, t *testing.T, pool *pgxpool.Pool, ran, refused *atomic.Int64) {
	rows, err := pool.Query(ctx, `SELECT job_id FROM timescaledb_information.jobs
		WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_schema = 'sensorhub' ORDER BY job_id`)
	if err != nil {
		t.Errorf("list refresh policies: %v", err)
		return
	}
	var ids []int32
	for rows.Next() {
		var id int32
		if err := rows.Scan(&id); err != nil {
			t.Errorf("list refresh policies: %v", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 3 {
		t.Errorf("found refresh policies %v, want 3", ids)
	}
	for ctx.Err() == nil {
		for _, id := range ids {
			_, err := pool.Exec(ctx, `CALL run_job($1)`, id)
			var pgErr *pgconn.PgError
			switch {
			case err == nil:
				ran.Add(1)
			case errors.As(err, &pgErr) && pgErr.Code == "55P03":
				// Ingest is refreshing: the scheduler would try again later.
				refused.Add(1)
			case ctx.Err() == nil:
				t.Errorf("run refresh policy %d: %v", id, err)
			}
		}
	}
}

// assertExact checks that the database holds exactly the readings of want,
// with catalog and rollups recomputed from them, and that the dataset
// version moved past v0.
//
// Jobs that deferred their rollups must have left their ranges pending, which
// `ingest refresh` then materializes.
func assertExact(t *testing.T, dsn string, pool *pgxpool.Pool, mode string, want totals, v0 int64) {
	t.Helper()
	if mode == config.RollupsDefer {
		// TimescaleDB's background job may have drained some already, but
		// not the last load's ranges within this instant.
		if got := readTotals(t, pool); got.pending == 0 && got.rollup1m != want.rollup1m {
			t.Errorf("deferring jobs left no range pending, yet rollup_1m has %d rows of %d", got.rollup1m, want.rollup1m)
		}
		refreshRollups(t, dsn)
	}
	got := readTotals(t, pool)
	if got.readings != want.readings || got.numeric != want.numeric || got.text != want.text || got.catalog != want.catalog ||
		got.rollup1m != want.rollup1m || got.pending != 0 || got.digest != want.digest {
		t.Errorf("totals %+v; want %+v", got, want)
	}
	assertCatalogRecounts(t, pool)
	assertRollupsRecompute(t, pool)
	if v := datasetVersion(t, pool); v <= v0 {
		t.Errorf("dataset version %d, want it past %d", v, v0)
	}
}

// refreshRollups runs `ingest refresh`, which must exit 0 and print what it did.
func refreshRollups(t *testing.T, dsn string) {
	t.Helper()
	out, err := ingestCmd(t, dsn, "refresh").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pending ranges refreshed") {
		t.Fatalf("ingest refresh: %v\n%s", err, out)
	}
}

func datasetVersion(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var v int64
	if err := pool.QueryRow(t.Context(), `SELECT version FROM sensorhub.dataset_state`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// assertCatalogRecounts compares every series' count and first and last
// time with a recount of its readings.
func assertCatalogRecounts(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var bad int
	var example string
	err := pool.QueryRow(t.Context(), `
		WITH c AS (SELECT series_id, count(*) AS n, min(time) AS lo, max(time) AS hi FROM sensorhub.readings GROUP BY series_id)
		SELECT count(*), coalesce(min(format('series %s: catalog %s %s..%s, readings %s %s..%s', s.series_id, s.reading_count, s.first_time, s.last_time, c.n, c.lo, c.hi)), '')
		FROM sensorhub.series s FULL JOIN c USING (series_id)
		WHERE (s.reading_count, s.first_time, s.last_time) IS DISTINCT FROM (coalesce(c.n, 0), c.lo, c.hi)`).Scan(&bad, &example)
	if err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Errorf("%d series disagree with their readings, e.g. %s", bad, example)
	}
	dbtest.CheckDeviceSummary(t, pool)
}

// assertRollupsRecompute compares every rollup, as readers see it, with
// aggregates computed from the readings: the same buckets, exact counts,
// extremes, firsts and lasts, and sums and m2 within rounding.
func assertRollupsRecompute(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for _, w := range rollup.Widths {
		// w.Name is one of three constants, not input.
		q := `
		WITH raw AS (
		    SELECT series_id, date_bin($1::interval, time, '2000-01-03 00:00:00+00') AS bucket,
		           count(*) AS n, sum(value_num) AS s, var_pop(value_num) * count(*) AS m2, min(value_num) AS lo, max(value_num) AS hi,
		           (array_agg(value_num ORDER BY time))[1] AS f, min(time) AS ft, (array_agg(value_num ORDER BY time DESC))[1] AS l, max(time) AS lt,
		           max(abs(value_num)) AS scale
		    FROM sensorhub.readings WHERE value_num IS NOT NULL GROUP BY 1, 2)
		SELECT count(*), coalesce(min(format('series %s bucket %s: rollup %s/%s/%s, readings %s/%s/%s', series_id, bucket, r.count, r.sum, r.m2, raw.n, raw.s, raw.m2)), '')
		FROM raw FULL JOIN ` + w.Name + ` r USING (series_id, bucket)
		WHERE (r.count, r.min, r.max, r.first, r.first_time, r.last, r.last_time) IS DISTINCT FROM (raw.n, raw.lo, raw.hi, raw.f, raw.ft, raw.l, raw.lt)
		   OR abs(r.sum - raw.s) > 1e-9 * abs(raw.s) + 1e-12 * raw.n * raw.scale
		   OR abs(r.m2 - raw.m2) > 1e-9 * raw.m2 + 1e-12 * raw.n * raw.scale * raw.scale`
		var bad int
		var example string
		if err := pool.QueryRow(t.Context(), q, w.Width.String()).Scan(&bad, &example); err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		if bad > 0 {
			t.Errorf("%s: %d buckets disagree with the readings, e.g. %s", w.Name, bad, example)
		}
	}
}
