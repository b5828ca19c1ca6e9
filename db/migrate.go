// Package db owns sensorhub's schema: the embedded migrations for both physical
// paths (TimescaleDB and plain PostgreSQL) and the code that applies them.
//
// Both paths expose the same logical relations in the schema "sensorhub":
// series, devices (and device_summary, behind it), readings, rollup_1m,
// rollup_1h, rollup_1d, dataset_state, rollup_pending and settings, so
// readers run one and the same SQL on both.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Schema is the PostgreSQL schema that holds every sensorhub relation.
const Schema = "sensorhub"

// VersionTable records applied migrations (goose's bookkeeping).
const VersionTable = Schema + ".schema_migrations"

// lockID is the advisory lock that serialises concurrent migrate runs, so two
// replicas or a Job retried by Kubernetes never apply a migration twice.
const lockID int64 = 0x5e_45_0b_0b

//go:embed migrations
var migrations embed.FS

// Flavor names a physical path of the schema.
type Flavor string

const (
	// FlavorAuto picks TimescaleDB when the extension can be created, else PostgreSQL.
	FlavorAuto Flavor = ""
	// FlavorPostgres uses declarative partitions and rollup tables refreshed by ingest.
	FlavorPostgres Flavor = "postgres"
	// FlavorTimescaleDB uses a hypertable, continuous aggregates, compression and policies.
	FlavorTimescaleDB Flavor = "timescaledb"
)

// ParseFlavor accepts "", "auto", "postgres" and "timescaledb".
func ParseFlavor(s string) (Flavor, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return FlavorAuto, nil
	case "postgres", "postgresql", "plain":
		return FlavorPostgres, nil
	case "timescaledb", "timescale":
		return FlavorTimescaleDB, nil
	}
	return "", fmt.Errorf("unknown schema flavor %q (want auto, postgres or timescaledb)", s)
}

// Options are the migration settings. They are fixed when the schema is first
// created; later runs keep what the database recorded.
type Options struct {
	// Flavor forces a physical path; FlavorAuto detects it.
	Flavor Flavor
	// ChunkInterval is the time span of one hypertable chunk or partition (default "7 days").
	ChunkInterval string
	// CompressAfter is the age at which TimescaleDB compresses chunks (default "30 days").
	CompressAfter string
	// Retention, when set, drops TimescaleDB chunks older than it (default: keep all).
	Retention string
	// UpTo stops at this schema version instead of the newest (0), so an
	// upgrade can be staged, and tested against a job running on the schema
	// before it.
	UpTo int64
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.ChunkInterval == "" {
		o.ChunkInterval = "7 days"
	}
	if o.CompressAfter == "" {
		o.CompressAfter = "30 days"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Result reports what Migrate did.
type Result struct {
	Flavor  Flavor
	Version int64
	Applied int
}

// Migrate brings the database at dsn to the newest schema version. It is
// idempotent and safe to run from several processes at once.
func Migrate(ctx context.Context, dsn string, opts Options) (Result, error) {
	opts.defaults()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: parse DATABASE_URL: %w", err)
	}
	ctl, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: connect: %w", err)
	}
	defer ctl.Close(context.WithoutCancel(ctx))

	if _, err := ctl.Exec(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
		return Result{}, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer ctl.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockID) //nolint:errcheck // closing the session releases it anyway

	if _, err := ctl.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+Schema); err != nil {
		return Result{}, fmt.Errorf("migrate: create schema %s: %w", Schema, err)
	}
	flavor, err := chooseFlavor(ctx, ctl, opts.Flavor)
	if err != nil {
		return Result{}, err
	}
	fsys, err := migrationFS(flavor)
	if err != nil {
		return Result{}, err
	}

	// Migrations read their settings with current_setting('sensorhub.*'): passing
	// them as startup parameters keeps them out of the SQL text.
	gcfg := cfg.Copy()
	gcfg.RuntimeParams["sensorhub.flavor"] = string(flavor)
	gcfg.RuntimeParams["sensorhub.chunk_interval"] = opts.ChunkInterval
	gcfg.RuntimeParams["sensorhub.compress_after"] = opts.CompressAfter
	gcfg.RuntimeParams["sensorhub.retention"] = opts.Retention
	sqlDB := stdlib.OpenDB(*gcfg)
	defer sqlDB.Close()
	sqlDB.SetMaxOpenConns(2)

	p, err := newProvider(sqlDB, fsys, opts.Logger)
	if err != nil {
		return Result{}, err
	}
	pause, err := newJobPause(ctx, ctl, flavor, opts.Logger)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: read migration status: %w", err)
	}
	var results []*goose.MigrationResult
	if pending {
		if err = pause.stop(ctx); err == nil {
			results, err = upRetryingRaces(ctx, p, opts)
		}
	}
	if rerr := pause.resume(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("migrate (%s): %w", flavor, err)
	}
	for _, r := range results {
		opts.Logger.Info("migration applied", "version", r.Source.Version, "file", path.Base(r.Source.Path), "duration", r.Duration)
	}
	version, err := p.GetDBVersion(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: read version: %w", err)
	}
	opts.Logger.Info("schema up to date", "flavor", flavor, "version", version, "applied", len(results), "duration", time.Since(start).Round(time.Millisecond))
	return Result{Flavor: flavor, Version: version, Applied: len(results)}, nil
}

// raceAttempts bounds the tries of a migration that lost a race.
const raceAttempts = 5

// upRetryingRaces applies the pending migrations, trying one again when it
// lost a race with concurrent work on the catalog, e.g. a TimescaleDB policy
// job updating the job a migration drops ("tuple concurrently deleted").
// A failed migration rolled back whole (or, without a transaction, is made of
// statements that may run twice), so it is safe to apply again.
func upRetryingRaces(ctx context.Context, p *goose.Provider, opts Options) ([]*goose.MigrationResult, error) {
	var all []*goose.MigrationResult
	for attempt := 1; ; attempt++ {
		var (
			results []*goose.MigrationResult
			err     error
		)
		if opts.UpTo > 0 {
			results, err = p.UpTo(ctx, opts.UpTo)
		} else {
			results, err = p.Up(ctx)
		}
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			results = partial.Applied
		}
		all = append(all, results...)
		if err == nil || attempt == raceAttempts || !lostRace(err) {
			return all, err
		}
		delay := time.Duration(attempt) * 200 * time.Millisecond
		opts.Logger.Warn("migration lost a race with concurrent work; trying it again", "attempt", attempt, "delay", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return all, ctx.Err()
		}
	}
}

// lostRace reports whether err is a conflict with a concurrent transaction
// rather than a fault of the migration.
func lostRace(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", "40P01", "55P03": // serialization failure, deadlock, lock not available
		return true
	case "XX000": // catalog rows changed under us: "tuple concurrently updated/deleted"
		return strings.Contains(pgErr.Message, "concurrently")
	}
	return false
}

func newProvider(sqlDB *sql.DB, fsys fs.FS, logger *slog.Logger) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID + 1))
	if err != nil {
		return nil, fmt.Errorf("migrate: session locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithTableName(VersionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(logger),
	)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return p, nil
}

// chooseFlavor keeps the flavor a database was created with; a new database gets
// the requested one, or TimescaleDB when auto and the extension can be created.
func chooseFlavor(ctx context.Context, conn *pgx.Conn, want Flavor) (Flavor, error) {
	recorded, err := recordedFlavor(ctx, conn)
	if err != nil {
		return "", err
	}
	if recorded != "" {
		if want != FlavorAuto && want != recorded {
			return "", fmt.Errorf("migrate: database was created with flavor %s; cannot switch to %s", recorded, want)
		}
		return recorded, nil
	}
	if want != FlavorAuto {
		return want, nil
	}
	ok, err := TimescaleDBAvailable(ctx, conn)
	if err != nil {
		return "", err
	}
	if ok {
		return FlavorTimescaleDB, nil
	}
	return FlavorPostgres, nil
}

// Querier is what this package needs from a pgx connection or pool.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// The settings table is looked up first: a query naming a missing table fails
// at parse time, whatever guards it.
const (
	settingsExistSQL  = `SELECT to_regclass('sensorhub.settings') IS NOT NULL`
	recordedFlavorSQL = `SELECT coalesce((SELECT value FROM sensorhub.settings WHERE name = 'flavor'), '')`
)

func recordedFlavor(ctx context.Context, q Querier) (Flavor, error) {
	var exists bool
	if err := q.QueryRow(ctx, settingsExistSQL).Scan(&exists); err != nil {
		return "", fmt.Errorf("read schema flavor: %w", err)
	}
	if !exists {
		return "", nil
	}
	var s string
	if err := q.QueryRow(ctx, recordedFlavorSQL).Scan(&s); err != nil {
		return "", fmt.Errorf("read schema flavor: %w", err)
	}
	return Flavor(s), nil
}

// ReadFlavor returns the flavor the database was migrated with, or an error when
// it was never migrated.
func ReadFlavor(ctx context.Context, q Querier) (Flavor, error) {
	f, err := recordedFlavor(ctx, q)
	if err != nil {
		return "", err
	}
	if f == "" {
		return "", errors.New("database has no sensorhub schema: run migrate first")
	}
	return f, nil
}

const timescaleAvailableSQL = `
SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'timescaledb')
    OR (EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb')
        AND current_setting('shared_preload_libraries') ~ '(^|[ ,])timescaledb($|[ ,])')`

// TimescaleDBAvailable reports whether the timescaledb extension is installed in
// the database or can be created there (installed on the server and preloaded).
func TimescaleDBAvailable(ctx context.Context, q Querier) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, timescaleAvailableSQL).Scan(&ok); err != nil {
		return false, fmt.Errorf("detect timescaledb: %w", err)
	}
	return ok, nil
}

// migrationFS merges the common migrations with the flavor's own into one
// sequence; versions are unique across the two folders.
func migrationFS(f Flavor) (fs.FS, error) {
	merged := fstest.MapFS{}
	for _, dir := range []string{"migrations/common", "migrations/" + string(f)} {
		entries, err := fs.ReadDir(migrations, dir)
		if err != nil {
			return nil, fmt.Errorf("migrations for flavor %q: %w", f, err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
				continue
			}
			if _, dup := merged[e.Name()]; dup {
				return nil, fmt.Errorf("migration %s exists twice", e.Name())
			}
			b, err := fs.ReadFile(migrations, dir+"/"+e.Name())
			if err != nil {
				return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
			}
			merged[e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	return merged, nil
}

// ExpectedVersion is the schema version this build migrates to (the same on
// both flavors); readiness checks compare it with the database's.
func ExpectedVersion() int64 {
	var newest int64
	// The tree is embedded at build time, so walking it cannot fail at run time.
	_ = fs.WalkDir(migrations, "migrations", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if v, err := strconv.ParseInt(strings.SplitN(d.Name(), "_", 2)[0], 10, 64); err == nil && v > newest {
			newest = v
		}
		return nil
	})
	return newest
}

const dbVersionSQL = `SELECT coalesce(max(version_id), 0) FROM ` + VersionTable + ` WHERE is_applied`

// DBVersion returns the newest applied schema version, for readiness checks.
func DBVersion(ctx context.Context, q Querier) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, dbVersionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
