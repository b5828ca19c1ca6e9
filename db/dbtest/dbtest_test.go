package dbtest

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sensorhub/sensorhub/db"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func tableExists(t *testing.T, d *DB, name string) bool {
	t.Helper()
	var ok bool
	if err := d.Pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func databaseExists(t *testing.T, s *Server, name string) bool {
	t.Helper()
	var ok bool
	if err := s.Admin().QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestDatabasesAreSeparateAndMigrated(t *testing.T) {
	a, b := New(t), New(t)
	if a.Name == b.Name || a.DSN == b.DSN {
		t.Fatalf("two calls got the same database %s", a.Name)
	}
	if _, err := a.Pool.Exec(t.Context(), "CREATE TABLE public.only_in_a (v int)"); err != nil {
		t.Fatal(err)
	}
	if !tableExists(t, a, "public.only_in_a") {
		t.Error("table missing in the database that created it")
	}
	if tableExists(t, b, "public.only_in_a") {
		t.Error("table created in one test database is visible in another")
	}
	for _, d := range []*DB{a, b} {
		v, err := db.DBVersion(t.Context(), d.Pool)
		if err != nil {
			t.Fatal(err)
		}
		if want := db.ExpectedVersion(); v != want {
			t.Errorf("%s: schema version %d, want %d", d.Name, v, want)
		}
		if f, err := db.ReadFlavor(t.Context(), d.Pool); err != nil || f != d.Flavor {
			t.Errorf("%s: ReadFlavor = %q, %v; want %q", d.Name, f, err, d.Flavor)
		}
	}
}

// TestParallelClones runs tests in parallel, as packages will, and reports
// what one clone costs once the template exists.
func TestParallelClones(t *testing.T) {
	New(t) // build the template outside the measurement
	var mu sync.Mutex
	var names []string
	var total time.Duration
	const n = 8
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run("", func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				d := New(t)
				took := time.Since(start)
				mu.Lock()
				names = append(names, d.Name)
				total += took
				mu.Unlock()
				if _, err := d.Pool.Exec(t.Context(), "CREATE TABLE public.mine (i int)"); err != nil {
					t.Fatal(err)
				}
				if _, err := d.Pool.Exec(t.Context(), "INSERT INTO public.mine VALUES ($1)", i); err != nil {
					t.Fatal(err)
				}
				var got int
				if err := d.Pool.QueryRow(t.Context(), "SELECT i FROM public.mine").Scan(&got); err != nil || got != i {
					t.Errorf("read back %d, %v; want %d", got, err, i)
				}
			})
		}
	})
	t.Logf("%d parallel clones (flavor %s): %v each on average", n, New(t).Flavor, (total / n).Round(time.Millisecond))
	s := shared(t)
	for _, name := range names {
		if databaseExists(t, s, name) {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
	sequential := time.Now()
	New(t)
	t.Logf("one sequential clone + pool: %v", time.Since(sequential).Round(time.Millisecond))
}

func TestEach(t *testing.T) {
	var mu sync.Mutex
	var ran []db.Flavor
	Each(t, func(t *testing.T, d *DB) {
		if want := db.Flavor(t.Name()[len("TestEach/"):]); d.Flavor != want {
			t.Errorf("subtest %s got flavor %s", t.Name(), d.Flavor)
		}
		f, err := db.ReadFlavor(t.Context(), d.Pool)
		if err != nil || f != d.Flavor {
			t.Errorf("ReadFlavor = %q, %v; want %q", f, err, d.Flavor)
		}
		var timescale bool
		if err := d.Pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'timescaledb')").Scan(&timescale); err != nil {
			t.Fatal(err)
		}
		if timescale != (d.Flavor == db.FlavorTimescaleDB) {
			t.Errorf("flavor %s: timescaledb extension installed = %v", d.Flavor, timescale)
		}
		mu.Lock()
		ran = append(ran, d.Flavor)
		mu.Unlock()
	})
	// With FlavorEnv set, Each runs that flavor only; else postgres always.
	if f := runFlavor(t); f != db.FlavorAuto {
		if !slices.Equal(ran, []db.Flavor{f}) {
			t.Errorf("Each ran %v; %s=%s wants exactly it", ran, FlavorEnv, f)
		}
	} else if !slices.Contains(ran, db.FlavorPostgres) {
		t.Errorf("Each ran %v; want at least postgres", ran)
	}
	want := Flavors(t)
	if !slices.Equal(ran, want) {
		t.Errorf("Each ran %v; server hosts %v", ran, want)
	}
	t.Logf("server %s; Each ran %v", shared(t).describe(), ran)
}

func TestRoleDSNIsLeastPrivilege(t *testing.T) {
	d := New(t)
	var role string
	t.Run("reader", func(t *testing.T) {
		dsn := d.RoleDSN(t, "sensorhub_reader")
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect as reader: %v", err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(t.Context(), "SELECT current_user").Scan(&role); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM sensorhub.series").Scan(&n); err != nil {
			t.Errorf("reader cannot read series: %v", err)
		}
		_, err = conn.Exec(t.Context(), "INSERT INTO sensorhub.series (device_id, parameter, value_type) VALUES ('d', 'p', 'numeric')")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("reader INSERT: got %v, want insufficient_privilege", err)
		}
	})
	if role == "" || role == "postgres" {
		t.Fatalf("RoleDSN connected as %q", role)
	}
	var exists bool
	if err := d.Server.Admin().QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("login role %s still exists after its test ended", role)
	}
}

func TestDSNRewriting(t *testing.T) {
	for _, tc := range []struct{ in, db, user, wantDB, wantUser string }{
		{
			in: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", db: "t_x", user: "u",
			wantDB:   "postgres://postgres@127.0.0.1:5432/t_x?sslmode=disable",
			wantUser: "postgres://u:pw@127.0.0.1:5432/postgres?sslmode=disable",
		},
		{
			in: "host=localhost dbname=postgres user=admin", db: "t_x", user: "u",
			wantDB:   "host=localhost dbname=postgres user=admin dbname='t_x'",
			wantUser: "host=localhost dbname=postgres user=admin user='u' password='pw'",
		},
	} {
		if got := withDatabase(tc.in, tc.db); got != tc.wantDB {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.wantDB)
		}
		if got := withUser(tc.in, tc.user, "pw"); got != tc.wantUser {
			t.Errorf("withUser(%q) = %q, want %q", tc.in, got, tc.wantUser)
		}
		for _, dsn := range []string{withDatabase(tc.in, tc.db), withUser(tc.in, tc.user, "pw")} {
			if _, err := pgx.ParseConfig(dsn); err != nil {
				t.Errorf("pgx cannot parse %q: %v", dsn, err)
			}
		}
	}
	cfg, err := pgx.ParseConfig(withUser(withDatabase("host=h dbname=a user=b", "c"), "d", "e"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "c" || cfg.User != "d" || cfg.Password != "e" {
		t.Errorf("keyword/value overrides: database=%q user=%q password=%q", cfg.Database, cfg.User, cfg.Password)
	}
}
