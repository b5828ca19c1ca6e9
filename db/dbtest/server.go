package dbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/localpg"
)

// Environment variables that decide where the test server comes from.
const (
	// URLEnv names a superuser (or CREATEDB) DSN to use instead of starting a
	// server; its database is the maintenance database.
	URLEnv = "TEST_DATABASE_URL"
	// ImageEnv overrides DefaultImage for the Docker path.
	ImageEnv = "SENSORHUB_TEST_IMAGE"
	// SkipEnv set to 1 makes database tests skip instead of fail when no
	// server can be had.
	SkipEnv = "SENSORHUB_SKIP_DB"
	// RequireTimescaleEnv set to 1 makes a missing TimescaleDB a failure
	// rather than a skip, for CI jobs that must cover both flavors.
	RequireTimescaleEnv = "SENSORHUB_REQUIRE_TIMESCALEDB"
)

// DefaultImage is the container used when a Docker engine answers: pinned,
// so every run tests against the same TimescaleDB and PostgreSQL.
const DefaultImage = "timescale/timescaledb:2.28.3-pg15"

// Server is the PostgreSQL server that hosts this process's test databases:
// one per process, found or started on first use.
type Server struct {
	source   string // for messages: where the server came from
	adminDSN string // superuser, maintenance database
	admin    *pgxpool.Pool
	flavors  []db.Flavor
	external bool // TEST_DATABASE_URL: not ours to stop, so drop what we made
	stop     func(context.Context) error

	mu        sync.Mutex
	templates map[db.Flavor]*template
}

type template struct {
	once sync.Once
	name string
	took time.Duration
	err  error
}

// The process's server. Found lazily rather than in init so that packages
// whose tests never touch a database never start one.
var (
	serverOnce sync.Once
	server     *Server
	serverErr  error
)

// shared returns the process's server, failing (or, with SENSORHUB_SKIP_DB=1,
// skipping) t when none can be had.
func shared(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("dbtest: %s=1: skipping test that needs PostgreSQL", SkipEnv)
	}
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		server, serverErr = startServer(ctx)
	})
	if serverErr != nil {
		t.Fatalf("dbtest: no PostgreSQL server for tests: %v\n"+
			"(set %s to a superuser DSN, run a Docker engine, or install PostgreSQL server binaries; %s=1 skips database tests)",
			serverErr, URLEnv, SkipEnv)
	}
	return server
}

// startServer takes TEST_DATABASE_URL, else a container when a Docker engine
// answers, else an ephemeral cluster from the local binaries.
func startServer(ctx context.Context) (*Server, error) {
	if dsn := os.Getenv(URLEnv); dsn != "" {
		s, err := connect(ctx, URLEnv, dsn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", URLEnv, err)
		}
		s.external = true
		return s, nil
	}
	if dockerAnswers(ctx, 5*time.Second) {
		return startContainer(ctx)
	}
	if !localpg.Available() {
		return nil, errors.New("no Docker engine answers and no PostgreSQL server binaries were found")
	}
	return startLocal(ctx)
}

func startLocal(ctx context.Context) (*Server, error) {
	start := time.Now()
	c, err := localpg.Start(ctx, localpg.Config{
		Ephemeral: true,
		// Parallel tests each hold a pool.
		Settings: map[string]string{"max_connections": "300"},
	})
	if err != nil {
		return nil, fmt.Errorf("start ephemeral cluster: %w", err)
	}
	s, err := connect(ctx, fmt.Sprintf("local cluster %s (started in %v)", c.Dir(), time.Since(start).Round(time.Millisecond)), c.DSN("postgres"))
	if err != nil {
		return nil, errors.Join(err, c.Stop(ctx))
	}
	s.stop = c.Stop
	return s, nil
}

// dockerAnswers reports whether a Docker engine responds within timeout.
// testcontainers finds the engine as everywhere (DOCKER_HOST, docker
// contexts, ~/.testcontainers.properties, default sockets); the timeout and
// the recover keep a missing or wedged engine from hanging or crashing the
// test binary.
func dockerAnswers(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("docker provider: %v", r)
			}
		}()
		p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
		if err != nil {
			done <- err
			return
		}
		done <- p.Health(ctx)
	}()
	select {
	case err := <-done:
		return err == nil
	case <-ctx.Done():
		return false
	}
}

func startContainer(ctx context.Context) (*Server, error) {
	image := DefaultImage
	if v := os.Getenv(ImageEnv); v != "" {
		image = v
	}
	start := time.Now()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts("5432/tcp"),
		testcontainers.WithEnv(map[string]string{"POSTGRES_PASSWORD": "postgres"}),
		testcontainers.WithCmd("postgres",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=300", "-c", "timescaledb.telemetry_level=off"),
		// The entrypoint starts a temporary server for its init scripts first,
		// so the real one is the second to say it is ready.
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
			wait.ForListeningPort("5432/tcp")),
	)
	if err != nil {
		if c != nil {
			err = errors.Join(err, c.Terminate(context.WithoutCancel(ctx)))
		}
		return nil, fmt.Errorf("start container %s: %w", image, err)
	}
	hostPort, err := c.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("container %s address: %w", image, err), c.Terminate(context.WithoutCancel(ctx)))
	}
	dsn := "postgres://postgres:postgres@" + hostPort + "/postgres?sslmode=disable"
	s, err := connect(ctx, fmt.Sprintf("container %s (started in %v)", image, time.Since(start).Round(time.Millisecond)), dsn)
	if err != nil {
		return nil, errors.Join(err, c.Terminate(context.WithoutCancel(ctx)))
	}
	s.stop = func(ctx context.Context) error { return c.Terminate(ctx) }
	return s, nil
}

const timescaleUsableSQL = `SELECT
	EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
	AND current_setting('shared_preload_libraries') ~ '(^|[ ,])timescaledb($|[ ,])'`

// connect opens the admin pool and learns which flavors the server can host.
func connect(ctx context.Context, source, dsn string) (*Server, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", source, err)
	}
	var timescale bool
	if err := pool.QueryRow(ctx, timescaleUsableSQL).Scan(&timescale); err != nil {
		pool.Close()
		return nil, fmt.Errorf("query %s: %w", source, err)
	}
	s := &Server{source: source, adminDSN: dsn, admin: pool, flavors: []db.Flavor{db.FlavorPostgres}, templates: map[db.Flavor]*template{}}
	if timescale {
		s.flavors = append(s.flavors, db.FlavorTimescaleDB)
	}
	return s, nil
}

// String says where the server came from, for test logs.
func (s *Server) String() string { return s.source }

// Flavors returns the schema flavors this server can host: always postgres,
// and timescaledb when the extension is installed and preloaded.
func (s *Server) Flavors() []db.Flavor { return append([]db.Flavor(nil), s.flavors...) }

func (s *Server) has(f db.Flavor) bool {
	for _, g := range s.flavors {
		if g == f {
			return true
		}
	}
	return false
}

// DSN returns the superuser DSN of dbname on this server.
func (s *Server) DSN(dbname string) string { return withDatabase(s.adminDSN, dbname) }

// Admin returns a superuser pool on the maintenance database, for tests
// that need server-wide operations. Do not close it.
func (s *Server) Admin() *pgxpool.Pool { return s.admin }

// templateLockKey serializes template builds among all processes sharing
// one server (TEST_DATABASE_URL): the migrations create cluster-wide roles,
// and two concurrent CREATE ROLEs of one name collide.
const templateLockKey int64 = 0x5e_45_7e_57

// template returns the migrated template database for f,
// building it on first use; built is true for the one caller that built it.
func (s *Server) template(f db.Flavor) (tp *template, built bool) {
	s.mu.Lock()
	tp = s.templates[f]
	if tp == nil {
		tp = &template{}
		s.templates[f] = tp
	}
	s.mu.Unlock()
	tp.once.Do(func() {
		built = true
		// Not a test's context: the template outlives the test that builds it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		tp.name, tp.err = s.buildTemplate(ctx, f)
		tp.took = time.Since(start)
	})
	return tp, built
}

// buildTemplate returns the template's name even on error, so that close
// can drop what was left.
func (s *Server) buildTemplate(ctx context.Context, f db.Flavor) (string, error) {
	name := fmt.Sprintf("sensorhub_tmpl_%s_%d", f, os.Getpid())
	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return name, fmt.Errorf("build template %s: %w", name, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return name, fmt.Errorf("build template %s: lock: %w", name, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck // closing the session releases it too

	// A template left by a dead process whose pid we now have.
	if err := dropDatabase(ctx, conn.Conn(), name); err != nil {
		return name, err
	}
	// template0: template1 may carry extensions (the TimescaleDB image
	// installs timescaledb there) that a postgres-flavored schema must not see.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return name, fmt.Errorf("create template %s: %w", name, err)
	}
	if _, err := db.Migrate(ctx, s.DSN(name), db.Options{Flavor: f}); err != nil {
		return name, fmt.Errorf("migrate template %s: %w", name, err)
	}
	if f == db.FlavorTimescaleDB {
		// Test databases come and go by the hundred. With the schema's
		// background jobs scheduled, TimescaleDB would run refresh policies
		// and sensorhub.materialize_pending in each of them at moments no test
		// chooses, change rollups under a test's assertions, and hold up DROP
		// DATABASE while a job runs. Tests run jobs with CALL run_job instead;
		// a database from Empty and Migrate keeps them scheduled.
		if err := unscheduleJobs(ctx, s.DSN(name)); err != nil {
			return name, fmt.Errorf("template %s: %w", name, err)
		}
	}
	// Disallowing connections keeps TimescaleDB's scheduler (and anyone
	// else) out, so CREATE DATABASE ... TEMPLATE does not find it in use.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
		return name, fmt.Errorf("freeze template %s: %w", name, err)
	}
	if err := terminate(ctx, conn.Conn(), name); err != nil {
		return name, err
	}
	return name, nil
}

// clone creates a database from the template, retrying while backends that
// were just told to go are still leaving it.
func (s *Server) clone(ctx context.Context, tmpl, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tmpl))
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use
			return fmt.Errorf("create database %s from %s: %w", name, tmpl, err)
		}
		if err := terminate(ctx, s.admin, tmpl); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create database %s from %s: template still in use: %w", name, tmpl, err)
		case <-tick.C:
		}
	}
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func terminate(ctx context.Context, q execer, dbname string) error {
	const sql = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`
	if _, err := q.Exec(ctx, sql, dbname); err != nil {
		return fmt.Errorf("disconnect sessions from %s: %w", dbname, err)
	}
	return nil
}

// dropDatabase drops dbname if it exists, template or not, whoever is
// connected.
func dropDatabase(ctx context.Context, q execer, dbname string) error {
	// A template cannot be dropped; this is a no-op error when dbname is gone.
	if _, err := q.Exec(ctx, "ALTER DATABASE "+ident(dbname)+" IS_TEMPLATE false"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
			return fmt.Errorf("drop database %s: %w", dbname, err)
		}
	}
	if _, err := q.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(dbname)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", dbname, err)
	}
	return nil
}

// close drops the templates on a server we do not own and stops one we do.
func (s *Server) close(ctx context.Context) error {
	var errs []error
	if s.external {
		s.mu.Lock()
		for _, tp := range s.templates {
			if tp.name != "" {
				errs = append(errs, dropDatabase(ctx, s.admin, tp.name))
			}
		}
		s.mu.Unlock()
	}
	s.admin.Close()
	if s.stop != nil {
		errs = append(errs, s.stop(ctx))
	}
	return errors.Join(errs...)
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// defaultFlavor is what New uses: the richer path when the server has it.
func (s *Server) defaultFlavor() db.Flavor {
	if s.has(db.FlavorTimescaleDB) {
		return db.FlavorTimescaleDB
	}
	return db.FlavorPostgres
}

// describe lists the flavors for messages.
func (s *Server) describe() string {
	names := make([]string, len(s.flavors))
	for i, f := range s.flavors {
		names[i] = string(f)
	}
	return s.source + " [" + strings.Join(names, ", ") + "]"
}

const unscheduleJobsSQL = `SELECT count(*) FROM timescaledb_information.jobs j, LATERAL alter_job(j.job_id, scheduled => false) WHERE j.job_id >= 1000`

// unscheduleJobs pauses every job the schema added (TimescaleDB's own jobs
// have ids below 1000).
func unscheduleJobs(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("unschedule jobs: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, unscheduleJobsSQL); err != nil {
		return fmt.Errorf("unschedule jobs: %w", err)
	}
	return nil
}
