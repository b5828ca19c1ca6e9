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
