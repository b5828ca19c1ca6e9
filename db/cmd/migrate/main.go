// Command migrate applies sensorhub's schema migrations to DATABASE_URL. It is
// the one-shot runner used by `make up`, the compose service and the Kubernetes Job.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL connection string (env DATABASE_URL)")
	flavor := fs.String("flavor", envOr(getenv, "SENSORHUB_SCHEMA_FLAVOR", "auto"), "schema path: auto, timescaledb or postgres (env SENSORHUB_SCHEMA_FLAVOR)")
	chunk := fs.String("chunk-interval", envOr(getenv, "SENSORHUB_CHUNK_INTERVAL", "7 days"), "time span of a chunk/partition, fixed at creation (env SENSORHUB_CHUNK_INTERVAL)")
	compress := fs.String("compress-after", envOr(getenv, "SENSORHUB_COMPRESS_AFTER", "30 days"), "TimescaleDB: compress chunks older than this (env SENSORHUB_COMPRESS_AFTER)")
	retention := fs.String("retention", getenv("SENSORHUB_RETENTION"), "TimescaleDB: drop chunks older than this; empty keeps all (env SENSORHUB_RETENTION)")
	apiUser := fs.String("api-user", getenv("SENSORHUB_API_DB_USER"), "also ensure this LOGIN role, member of sensorhub_reader (env SENSORHUB_API_DB_USER)")
	ingestUser := fs.String("ingest-user", getenv("SENSORHUB_INGEST_DB_USER"), "also ensure this LOGIN role, member of sensorhub_writer (env SENSORHUB_INGEST_DB_USER)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	f, err := db.ParseFlavor(*flavor)
	if err != nil {
		return err
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

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
