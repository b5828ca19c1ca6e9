package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sensorhub/sensorhub/services/ingest/internal/config"
	"github.com/sensorhub/sensorhub/services/ingest/internal/pipeline"
)

func runRefresh(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.ParseRefresh(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stderr)
	pool, err := connect(ctx, cfg.DatabaseURL, cfg.Workers+1)
	if err != nil {
		return err
	}
	defer pool.Close()
	took, n, err := pipeline.RefreshAll(ctx, pool, cfg.Workers, logger.With("database", pipeline.Redact(pool)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rollups: %d pending ranges refreshed in %s\n", n, took)
	return nil
}
