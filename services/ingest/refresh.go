package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

// refreshConfig is every setting of `ingest refresh`; the README's table
// lists them.
type refreshConfig struct {
	DatabaseURL string
	Workers     int
	LogFormat   string
}

func parseRefreshConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (refreshConfig, error) {
	c := refreshConfig{}
	var envErr error
	fs := flag.NewFlagSet("ingest refresh", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: ingest refresh [flags]

Materializes every rollup range that loads left pending (ingest load -rollups
defer) and exits. Run it after loads on plain PostgreSQL, which has no job
scheduler; on TimescaleDB the database does the same every 30 s, and running it
there too is harmless. Exit status: 0 nothing left pending, 1 failure, 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.DatabaseURL, "database-url", getenv("DATABASE_URL"), "PostgreSQL connection string (env DATABASE_URL)")
	fs.IntVar(&c.Workers, "workers", envInt(getenv, "INGEST_WORKERS", 2, &envErr), "connections recomputing a range side by side on plain PostgreSQL (env INGEST_WORKERS)")
	fs.StringVar(&c.LogFormat, "log-format", envOr(getenv, "LOG_FORMAT", "auto"), "log format: auto (text on a terminal, JSON otherwise), text or json (env LOG_FORMAT)")
	hideEnvDefault(fs, "database-url", "DATABASE_URL", getenv)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return c, err
	}
	if envErr != nil {
		return c, envErr
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: ingest refresh takes no arguments, got %q", errUsage, fs.Args())
	}
	if c.DatabaseURL == "" {
		return c, fmt.Errorf("%w: DATABASE_URL is not set (flag -database-url)", errUsage)
	}
	return c, nil
}

func runRefresh(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseRefreshConfig(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stderr)
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("%w: DATABASE_URL: %v", errUsage, err)
	}
	poolCfg.MaxConns = int32(cfg.Workers + 1)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()

	start := time.Now()
	var ranges []rollup.Range
	err = dbretry.Idempotent(ctx, dbretry.Default, logger, "refresh rollups", func() (err error) {
		ranges, err = rollup.Refresh(ctx, pool, cfg.Workers)
		return err
	})
	if err != nil {
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	logger.Info("rollups refreshed", "database", redact(poolCfg), "ranges", len(ranges), "duration", took)
	fmt.Fprintf(stdout, "rollups: %d pending ranges refreshed in %s\n", len(ranges), took)
	return nil
}
