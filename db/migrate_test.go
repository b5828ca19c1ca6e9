package db_test

import (
	"context"
	"crypto/rand"
	"errors"
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
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// emptyDB creates an unmigrated database on the test server.
func emptyDB(t *testing.T) string {
	t.Helper()
	srv := dbtest.New(t).Server
	name := "e_" + strings.ToLower(rand.Text()[:12])
	if _, err := srv.Admin().Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = srv.Admin().Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return srv.DSN(name)
}

func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	for _, flavor := range dbtest.Flavors(t) {
		t.Run(string(flavor), func(t *testing.T) {
			dsn := emptyDB(t)
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
