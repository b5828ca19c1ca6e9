// Command migrate applies sensorhub's schema migrations to DATABASE_URL. It is
// the one-shot runner used by `make up`, the compose service and the Kubernetes Job.
//
// Exit status: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sensorhub/sensorhub/db"

	"github.com/sensorhub/sensorhub/db/cmdline"
)

// version is the build's version, set with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors in how migrate was invoked, as opposed to failures
// of the migration itself.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the one place where errors become exit statuses: 0 success
// (or help), 2 usage error, 1 any other failure.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "migrate:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "migrate:", err)
		return 1
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: migrate [flags]

Brings the database at DATABASE_URL to the newest schema version and exits;
it is idempotent and safe to run from several processes at once. With
-api-user and -ingest-user it also ensures those login roles, with the
passwords in SENSORHUB_API_DB_PASSWORD and SENSORHUB_INGEST_DB_PASSWORD
(environment only). Exit status: 0 ok, 1 failure, 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	dsn := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL connection string (env DATABASE_URL)")
	flavor := fs.String("flavor", envOr(getenv, "SENSORHUB_SCHEMA_FLAVOR", "auto"), "schema path: auto, timescaledb or postgres (env SENSORHUB_SCHEMA_FLAVOR)")
	chunk := fs.String("chunk-interval", envOr(getenv, "SENSORHUB_CHUNK_INTERVAL", "7 days"), "time span of a chunk/partition, fixed at creation (env SENSORHUB_CHUNK_INTERVAL)")
	compress := fs.String("compress-after", envOr(getenv, "SENSORHUB_COMPRESS_AFTER", "30 days"), "TimescaleDB: compress chunks older than this (env SENSORHUB_COMPRESS_AFTER)")
	retention := fs.String("retention", getenv("SENSORHUB_RETENTION"), "TimescaleDB: drop chunks older than this; empty keeps all (env SENSORHUB_RETENTION)")
	apiUser := fs.String("api-user", getenv("SENSORHUB_API_DB_USER"), "also ensure this LOGIN role, member of sensorhub_reader (env SENSORHUB_API_DB_USER)")
	ingestUser := fs.String("ingest-user", getenv("SENSORHUB_INGEST_DB_USER"), "also ensure this LOGIN role, member of sensorhub_writer (env SENSORHUB_INGEST_DB_USER)")
	showVersion := fs.Bool("version", false, "print the build's version and exit")
	if getenv("DATABASE_URL") != "" {
		// -h prints defaults, and this one may hold a password.
		fs.Lookup("database-url").DefValue = "$DATABASE_URL"
	}
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionLine())
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: migrate takes no arguments, got %q", errUsage, fs.Args())
	}
	if *dsn == "" {
		return fmt.Errorf("%w: DATABASE_URL is not set (flag -database-url)", errUsage)
	}
	f, err := db.ParseFlavor(*flavor)
	if err != nil {
		return fmt.Errorf("%w: -flavor (env SENSORHUB_SCHEMA_FLAVOR): %v", errUsage, err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if _, err := db.Migrate(ctx, *dsn, db.Options{
		Flavor: f, ChunkInterval: *chunk, CompressAfter: *compress, Retention: *retention, Logger: logger,
	}); err != nil {
		return err
	}
	// Passwords come from the environment only, never flags, so they do not
	// show in process listings.
	for _, l := range []struct{ user, password, group string }{
		{*apiUser, getenv("SENSORHUB_API_DB_PASSWORD"), db.ReaderRole},
		{*ingestUser, getenv("SENSORHUB_INGEST_DB_PASSWORD"), db.WriterRole},
	} {
		if l.user == "" {
			continue
		}
		if err := db.EnsureLogin(ctx, *dsn, l.user, l.password, l.group); err != nil {
			return err
		}
		logger.Info("login role ready", "user", l.user, "member_of", l.group, "password_set", l.password != "")
	}
	return nil
}

// parseFlags is cmdline.ParseFlags with this binary's usage error.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	return cmdline.ParseFlags(fs, args, stdout, stderr, errUsage)
}

// versionLine is what --version prints (package cmdline).
func versionLine() string { return cmdline.Line("migrate", version) }

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
