package db_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	for _, flavor := range dbtest.Flavors(t) {
		t.Run(string(flavor), func(t *testing.T) {
			dsn := dbtest.Empty(t)
			ctx := t.Context()
			// Four migrators at once: the advisory lock lets one apply each
			// migration and the others find nothing left to do.
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				applied int
				errs    []error
			)
			for range 4 {
				wg.Go(func() {
					res, err := db.Migrate(ctx, dsn, db.Options{Flavor: flavor})
					mu.Lock()
					defer mu.Unlock()
					applied += res.Applied
					if err != nil {
						errs = append(errs, err)
					}
				})
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("concurrent migrate: %v", errs)
			}
			if want := int(db.ExpectedVersion()); applied != want {
				t.Errorf("%d migrations applied in total, want each of %d exactly once", applied, want)
			}
			res, err := db.Migrate(ctx, dsn, db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Applied != 0 || res.Flavor != flavor || res.Version != db.ExpectedVersion() {
				t.Errorf("re-run: %+v; want nothing applied, flavor %s, version %d", res, flavor, db.ExpectedVersion())
			}
			// The recorded flavor wins; asking for the other one is an error.
			other := db.FlavorTimescaleDB
			if flavor == db.FlavorTimescaleDB {
				other = db.FlavorPostgres
			}
			if _, err := db.Migrate(ctx, dsn, db.Options{Flavor: other}); err == nil || !strings.Contains(err.Error(), "cannot switch") {
				t.Errorf("switching flavor: err = %v, want a refusal", err)
			}
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			got, err := db.ReadFlavor(ctx, pool)
			if err != nil || got != flavor {
				t.Errorf("ReadFlavor = %s, %v; want %s", got, err, flavor)
			}
			v, err := db.DBVersion(ctx, pool)
			if err != nil || v != db.ExpectedVersion() {
				t.Errorf("DBVersion = %d, %v; want %d", v, err, db.ExpectedVersion())
			}
		})
	}
}

func TestSameLogicalRelationsOnEveryFlavor(t *testing.T) {
	const columnsSQL = `
		SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'sensorhub' AND a.attnum > 0 AND NOT a.attisdropped
		  AND c.relname IN ('series', 'devices', 'readings', 'rollup_1m', 'rollup_1h', 'rollup_1d', 'dataset_state', 'rollup_pending', 'settings')
		ORDER BY 1, a.attnum`
	shapes := map[db.Flavor]string{}
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		rows, err := d.Pool.Query(t.Context(), columnsSQL)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for rows.Next() {
			var rel, col, typ string
			if err := rows.Scan(&rel, &col, &typ); err != nil {
				t.Fatal(err)
			}
			b.WriteString(rel + "." + col + " " + typ + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "rollup_1d.m2 double precision") || !strings.Contains(b.String(), "readings.utc_offset_min smallint") {
			t.Errorf("%s schema lacks expected columns:\n%s", d.Flavor, b.String())
		}
		shapes[d.Flavor] = b.String()
	})
	if len(shapes) == 2 && shapes[db.FlavorPostgres] != shapes[db.FlavorTimescaleDB] {
		t.Errorf("logical relations differ between flavors:\npostgres:\n%s\ntimescaledb:\n%s", shapes[db.FlavorPostgres], shapes[db.FlavorTimescaleDB])
	}
}

func TestRolesAreLeastPrivilege(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		ctx := t.Context()
		reader, err := pgx.Connect(ctx, d.RoleDSN(t, db.ReaderRole))
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close(context.Background())
		writer, err := pgx.Connect(ctx, d.RoleDSN(t, db.WriterRole))
		if err != nil {
			t.Fatal(err)
		}
		defer writer.Close(context.Background())

		// The writer can do ingest's work.
		var id int32
		if err := writer.QueryRow(ctx, `INSERT INTO sensorhub.series (device_id, parameter, value_type) VALUES ('d', 'p', 'numeric') RETURNING series_id`).Scan(&id); err != nil {
			t.Fatalf("writer: insert series: %v", err)
		}
		ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, err := writer.Exec(ctx, `SELECT sensorhub.ensure_partitions($1)`, []time.Time{ts}); err != nil {
			t.Fatalf("writer: ensure partitions: %v", err)
		}
		if _, err := writer.Exec(ctx, `INSERT INTO sensorhub.readings VALUES ($1, $2, 0, 1.5, NULL)`, id, ts); err != nil {
			t.Fatalf("writer: insert reading: %v", err)
		}
		if _, err := writer.Exec(ctx, `INSERT INTO sensorhub.rollup_pending (lo, hi) VALUES ($1, $1)`, ts); err != nil {
			t.Fatalf("writer: record pending range: %v", err)
		}

		// The reader sees it and can change nothing.
		var n int
		if err := reader.QueryRow(ctx, `SELECT count(*) FROM sensorhub.readings`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("reader: count = %d, %v", n, err)
		}
		for _, stmt := range []string{
			`INSERT INTO sensorhub.series (device_id, parameter, value_type) VALUES ('x', 'y', 'text')`,
			`UPDATE sensorhub.readings SET value_num = 2`,
			`DELETE FROM sensorhub.series`,
			`UPDATE sensorhub.dataset_state SET version = 99`,
			`SELECT sensorhub.ensure_partitions(ARRAY[now()])`,
			`CREATE TABLE sensorhub.evil (x int)`,
			`DROP TABLE sensorhub.readings`,
		} {
			_, err := reader.Exec(ctx, stmt)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" && pgErr.Code != "42809" {
				t.Errorf("reader ran %q: err = %v; want permission denied", stmt, err)
			}
		}
		// Nor can the writer drop or alter what it loads into.
		if _, err := writer.Exec(ctx, `DROP TABLE sensorhub.readings`); err == nil {
			t.Error("writer dropped readings")
		}
	})
}

func TestEnsureLogin(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	user := "login_" + strings.ToLower(rand.Text()[:8])
	t.Cleanup(func() {
		_, _ = d.Server.Admin().Exec(context.Background(), "DROP ROLE IF EXISTS "+user)
	})
	for range 2 { // the second call finds the role and must not fail
		if err := db.EnsureLogin(ctx, d.DSN, user, "s3cr'et", db.ReaderRole); err != nil {
			t.Fatal(err)
		}
	}
	var member bool
	err := d.Pool.QueryRow(ctx, `SELECT pg_has_role($1, 'sensorhub_reader', 'MEMBER') AND (SELECT rolcanlogin FROM pg_roles WHERE rolname = $1)`, user).Scan(&member)
	if err != nil || !member {
		t.Errorf("%s is a login member of sensorhub_reader: %v, %v", user, member, err)
	}
}

// TestMigrationRecomputesStoredRollups stores rollups with the schema before
// the stable m2 merge (version 10), where a large mean with a small spread
// loses digits, then migrates: every stored 1-hour and 1-day m2 must then
// match the readings to 1e-9.
func TestMigrationRecomputesStoredRollups(t *testing.T) {
	for _, flavor := range dbtest.Flavors(t) {
		t.Run(string(flavor), func(t *testing.T) {
			ctx := t.Context()
			dsn := dbtest.Empty(t)
			if _, err := db.Migrate(ctx, dsn, db.Options{Flavor: flavor, UpTo: 10}); err != nil {
				t.Fatal(err)
			}
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var rs []seed.Reading
			start := time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC)
			for i := range 3000 {
				// Mean 1e6, spread about 0.5, one reading every 37 s.
				v := 1e6 + 0.5*math.Sin(float64(i)*0.7) + 0.25*math.Cos(float64(i)*1.9)
				rs = append(rs, seed.Reading{DeviceID: "d", Parameter: "odometer", Time: start.Add(time.Duration(i) * 37 * time.Second), Num: seed.Num(v)})
			}
			if err := seed.Load(ctx, pool, rs); err != nil {
				t.Fatal(err)
			}
			const worstSQL = `
				SELECT coalesce(max(abs(sqrt(r.m2 / (r.count - 1)) - x.sd) / x.sd), 0)
				FROM %s r JOIN (SELECT date_bin($1::interval, time, '2000-01-03 00:00:00+00') AS bucket, stddev_samp(value_num) AS sd
				                FROM sensorhub.readings GROUP BY 1) x USING (bucket)`
			worst := func(name, width string) float64 {
				var w float64
				if err := pool.QueryRow(ctx, fmt.Sprintf(worstSQL, name), width).Scan(&w); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return w
			}
			before := worst("sensorhub.rollup_1d", "1 day")
			if before < 1e-7 {
				t.Errorf("before the migration rollup_1d's stddev is off by only %.2g: the data does not show the defect", before)
			}
			if _, err := db.Migrate(ctx, dsn, db.Options{}); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct{ name, width string }{{"sensorhub.rollup_1h", "1 hour"}, {"sensorhub.rollup_1d", "1 day"}} {
				w := worst(r.name, r.width)
				t.Logf("%s: stddev off by %.3g relative after the migration (rollup_1d before: %.3g)", r.name, w, before)
				if w > 1e-9 {
					t.Errorf("after the migration %s's stddev is off by %.3g relative (before: %.3g in rollup_1d)", r.name, w, before)
				}
			}
			var n int
			if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sensorhub.rollup_1h) + (SELECT count(*) FROM sensorhub.rollup_1d)`).Scan(&n); err != nil || n != 31+2 {
				t.Errorf("%d rollup rows after the migration (%v), want 33", n, err)
			}
		})
	}
}
