// Package dbtest gives each test a fresh, migrated database of its own.
//
// The schema is migrated once per process and flavor into a template
// database; each test gets a clone of it (CREATE DATABASE ... TEMPLATE),
// which takes milliseconds, and the clone is dropped when the test ends.
//
// Where PostgreSQL comes from is decided once per process: TEST_DATABASE_URL
// if set, else a TimescaleDB container (DefaultImage) when a Docker engine
// answers, else an ephemeral cluster from the PostgreSQL binaries on this
// machine (see package localpg). Without any of them tests fail, unless
// SENSORHUB_SKIP_DB=1 makes them skip.
//
// Packages that use dbtest should hand their TestMain to Main, so the
// server it started is stopped and its templates dropped:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
package dbtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
)

// dropTimeout bounds the cleanups' DROP DATABASE (see New).
const dropTimeout = 2 * time.Minute

// DB is one test's database, migrated to the newest schema.
type DB struct {
	Name   string        // database name, t_<random>
	DSN    string        // superuser DSN of the database
	Pool   *pgxpool.Pool // open on DSN; closed when the test ends
	Flavor db.Flavor     // the schema flavor it was migrated with
	Server *Server       // the server hosting it, for admin operations
}

// FlavorEnv names the one schema flavor a test run covers, "postgres" or
// "timescaledb"; empty covers both where the server has them. CI runs the
// suite once per flavor, so that tests that take one database (New) run on
// both and tests that take each (Each) run once per flavor.
const FlavorEnv = "SENSORHUB_TEST_FLAVOR"

// runFlavor returns the flavor FlavorEnv names, or FlavorAuto when unset.
func runFlavor(t testing.TB) db.Flavor {
	t.Helper()
	v := os.Getenv(FlavorEnv)
	if v == "" {
		return db.FlavorAuto
	}
	f, err := db.ParseFlavor(v)
	if err != nil || f == db.FlavorAuto {
		t.Fatalf("dbtest: %s=%q: want postgres or timescaledb", FlavorEnv, v)
	}
	return f
}

// New returns a fresh database with the run's flavor (FlavorEnv), else the
// default: timescaledb when the server has it, else postgres. It is dropped
// when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	return NewFlavor(t, db.FlavorAuto)
}

// NewFlavor returns a fresh database migrated with flavor f (FlavorAuto:
// as New). When the server cannot host timescaledb, asking for it skips t
// with the reason, or fails t when SENSORHUB_REQUIRE_TIMESCALEDB=1.
func NewFlavor(t testing.TB, f db.Flavor) *DB {
	t.Helper()
	s := shared(t)
	run := runFlavor(t)
	switch {
	case f == db.FlavorAuto && run != db.FlavorAuto:
		f = run
	case f == db.FlavorAuto:
		f = s.defaultFlavor()
	case run != db.FlavorAuto && f != run:
		t.Skipf("dbtest: this test needs flavor %s, and %s=%s makes this run cover %s only; the run with %s=%s covers it", f, FlavorEnv, run, run, FlavorEnv, f)
	}
	if !s.has(f) {
		msg := fmt.Sprintf("dbtest: server %s cannot host flavor %q", s.describe(), f)
		if f == db.FlavorTimescaleDB && os.Getenv(RequireTimescaleEnv) != "1" {
			t.Skipf("%s: TimescaleDB is not installed and preloaded there (%s=1 fails instead)", msg, RequireTimescaleEnv)
		}
		t.Fatal(msg)
	}
	tp, built := s.template(f)
	if tp.err != nil {
		t.Fatalf("dbtest: %v", tp.err)
	}
	if built {
		t.Logf("dbtest: migrated template %s on %s in %v", tp.name, s.describe(), tp.took.Round(time.Millisecond))
	}

	name := "t_" + randomName()
	if err := s.clone(t.Context(), tp.name, name); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run. On TimescaleDB,
		// DROP DATABASE first stops the database's background scheduler
		// through the extension's launcher, which can take a while when many
		// test databases come and go at once: the bound is generous.
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := dropDatabase(ctx, s.admin, name); err != nil {
			t.Errorf("dbtest: %v", err)
		}
	})
	d := &DB{Name: name, DSN: s.DSN(name), Flavor: f, Server: s}
	pool, err := pgxpool.New(context.Background(), d.DSN)
	if err != nil {
		t.Fatalf("dbtest: open pool on %s: %v", name, err)
	}
	t.Cleanup(pool.Close)
	d.Pool = pool
	return d
}

// Each runs fn as subtest "postgres" and subtest "timescaledb", each with a
// fresh database of that flavor; with FlavorEnv set, only that one. Where the
// server has no TimescaleDB that subtest is skipped with the reason (failed
// with SENSORHUB_REQUIRE_TIMESCALEDB=1).
func Each(t *testing.T, fn func(t *testing.T, d *DB)) {
	t.Helper()
	shared(t) // fail or skip once here rather than in every subtest
	flavors := []db.Flavor{db.FlavorPostgres, db.FlavorTimescaleDB}
	if f := runFlavor(t); f != db.FlavorAuto {
		flavors = []db.Flavor{f}
	}
	for _, f := range flavors {
		t.Run(string(f), func(t *testing.T) { fn(t, NewFlavor(t, f)) })
	}
}

// Flavors returns the flavors the run covers (FlavorEnv) among those the
// test server can host; it fails t when the server cannot host the one
// FlavorEnv names.
func Flavors(t testing.TB) []db.Flavor {
	t.Helper()
	s := shared(t)
	f := runFlavor(t)
	if f == db.FlavorAuto {
		return s.Flavors()
	}
	if !s.has(f) {
		t.Fatalf("dbtest: %s=%s, but server %s cannot host it", FlavorEnv, f, s.describe())
	}
	return []db.Flavor{f}
}

// Main runs the tests, then stops the server dbtest started (container or
// ephemeral cluster) or, on a TEST_DATABASE_URL server, drops this
// process's templates. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	serverOnce.Do(func() {}) // no server can start from here on
	if server == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.close(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: shut down %s: %v\n", server, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Empty returns the superuser DSN of a new database with no schema (from
// template0), for tests of migrating itself; it is dropped when t ends.
func Empty(t testing.TB) string {
	t.Helper()
	s := shared(t)
	name := "e_" + randomName()
	if _, err := s.admin.Exec(t.Context(), "CREATE DATABASE "+ident(name)+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("dbtest: create empty database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := dropDatabase(ctx, s.admin, name); err != nil {
			t.Errorf("dbtest: %v", err)
		}
	})
	return s.DSN(name)
}

// RoleDSN returns a DSN of d's database for a new LOGIN role, with a random
// name and password, that is a member of role (e.g. "sensorhub_reader"), so
// a test can check what that role may and may not do. The login role is
// dropped when t ends.
func (d *DB) RoleDSN(t testing.TB, role string) string {
	t.Helper()
	name, password := "u_"+randomName(), randomName()
	admin := d.Server.admin
	// Role names and passwords cannot be bind parameters; both are
	// generated from [a-z2-7] and role is quoted as an identifier.
	create := fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE %s", ident(name), password, ident(role))
	if _, err := admin.Exec(t.Context(), create); err != nil {
		t.Fatalf("dbtest: create login role in %s: %v", role, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		const kick = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`
		if _, err := admin.Exec(ctx, kick, name); err != nil {
			t.Errorf("dbtest: disconnect role %s: %v", name, err)
		}
		// Objects the role created in d would keep DROP ROLE from working.
		if _, err := d.Pool.Exec(ctx, "DROP OWNED BY "+ident(name)); err != nil {
			t.Errorf("dbtest: drop objects of role %s: %v", name, err)
		}
		if _, err := admin.Exec(ctx, "DROP ROLE IF EXISTS "+ident(name)); err != nil {
			t.Errorf("dbtest: drop role %s: %v", name, err)
		}
	})
	return withUser(d.DSN, name, password)
}

// randomName is 16 characters of [a-z2-7]: safe unquoted in SQL and URLs.
func randomName() string { return strings.ToLower(rand.Text()[:16]) }
