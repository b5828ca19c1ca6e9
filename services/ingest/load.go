package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/term"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
	"github.com/sensorhub/sensorhub/services/ingest/internal/metrics"
	"github.com/sensorhub/sensorhub/services/ingest/internal/progress"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rejects"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

func runLoad(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseLoadConfig(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stderr)
	format, err := dataset.ParseFormat(cfg.Format)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	mode, err := copyload.ParseMode(cfg.OnDuplicate)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	dopts := dataset.Options{Format: format, MaxDecompressedBytes: cfg.MaxDecompressed}
	if cfg.NaiveTZ != "" {
		loc, err := time.LoadLocation(cfg.NaiveTZ)
		if err != nil {
			return fmt.Errorf("%w: -naive-tz: %v", errUsage, err)
		}
		dopts.NaiveZone = loc
	}

	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("%w: DATABASE_URL: %v", errUsage, err)
	}
	poolCfg.MaxConns = int32(cfg.Workers + 2)
	logger.Info("ingest starting", "database", redact(poolCfg), "workers", cfg.Workers, "batch_size", cfg.BatchSize,
		"on_duplicate", cfg.OnDuplicate, "dry_run", cfg.DryRun, "files", len(cfg.Files))
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()

	rej := &lazyRejects{path: cfg.RejectsPath}
	defer rej.Close()
	counters := &copyload.Counters{}
	m := metrics.New(counters)
	if cfg.MetricsAddr != "" {
		if err := m.Serve(ctx, cfg.MetricsAddr, logger); err != nil {
			return err
		}
	}
	start := time.Now()
	err = loadAll(ctx, cfg, pool, counters, rej, dopts, mode, stdin, stdout, stderr, logger)
	runFailed := err
	if errors.Is(err, errRejects) {
		runFailed = nil // rejects are reported, not a failed run
	}
	m.Finish(time.Since(start), runFailed)
	if cfg.Pushgateway != "" {
		if perr := m.Push(context.WithoutCancel(ctx), cfg.Pushgateway); perr != nil {
			logger.Error("metrics push failed", "err", perr)
		}
	}
	return err
}

// loadAll loads every file, refreshes the rollups and prints the summary.
func loadAll(ctx context.Context, cfg loadConfig, pool *pgxpool.Pool, counters *copyload.Counters, rej *lazyRejects,
	dopts dataset.Options, mode copyload.Mode, stdin io.Reader, stdout, stderr io.Writer, logger *slog.Logger) error {
	loader, err := copyload.NewLoader(ctx, pool,
		copyload.WithWorkers(cfg.Workers), copyload.WithBatchSize(cfg.BatchSize), copyload.WithMode(mode),
		copyload.WithDryRun(cfg.DryRun), copyload.WithMaxErrors(cfg.MaxErrors), copyload.WithRejects(rej),
		copyload.WithLogger(logger), copyload.WithCounters(counters), copyload.WithDatasetOptions(dopts))
	if err != nil {
		return err
	}

	start := time.Now()
	var results []copyload.FileResult
	var runErr error
	for _, name := range cfg.Files {
		res, err := loadOne(ctx, loader, name, stdin, counters, stderr, logger, cfg.ProgressEvery)
		results = append(results, res)
		if res.Err != nil {
			logger.Error("file stopped early; readings before this point were committed", "file", name, "err", res.Err)
		}
		if err != nil {
			runErr = err
			break
		}
	}
	var rollupNote string
	if runErr == nil && !cfg.DryRun {
		rollupNote, runErr = finishRollups(ctx, cfg, pool, counters, logger)
	}
	if err := rej.Close(); err != nil && runErr == nil {
		runErr = err
	}
	printSummary(stdout, results, time.Since(start), cfg.DryRun)
	if rollupNote != "" {
		fmt.Fprintln(stdout, rollupNote)
	}
	if rej.n > 0 {
		fmt.Fprintf(stdout, "rejected readings written to %s\n", cfg.RejectsPath)
	}
	logger.Info("ingest finished", "files", len(results), "read", counters.Read.Load(), "inserted", counters.Inserted.Load(),
		"duplicates", counters.Duplicates.Load(), "rejected", counters.Rejected.Load(), "duration", time.Since(start).Round(time.Millisecond))

	if runErr != nil {
		return runErr
	}
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("%s: %w", r.File, r.Err)
		}
	}
	if counters.Rejected.Load() > 0 {
		return fmt.Errorf("%w: %d (see %s)", errRejects, counters.Rejected.Load(), cfg.RejectsPath)
	}
	return nil
}

const bumpVersionSQL = `UPDATE sensorhub.dataset_state SET version = version + 1, loaded_at = now()`

// finishRollups refreshes the rollups of what the run loaded (-rollups wait)
// or leaves them pending for the background (defer), then moves the dataset
// version. Deferring keeps every answer exact: the API serves a range that is
// still pending from the raw readings. It returns the summary's rollup line.
func finishRollups(ctx context.Context, cfg loadConfig, pool *pgxpool.Pool, counters *copyload.Counters, logger *slog.Logger) (string, error) {
	changed := counters.Inserted.Load()+counters.Updated.Load() > 0
	var note string
	if cfg.Rollups == rollupsWait {
		refreshStart := time.Now()
		var ranges []rollup.Range
		err := dbretry.Idempotent(ctx, dbretry.Default, logger, "refresh rollups", func() (err error) {
			ranges, err = rollup.Refresh(ctx, pool, cfg.Workers)
			return err
		})
		if err != nil {
			return "", err
		}
		took := time.Since(refreshStart).Round(time.Millisecond)
		logger.Info("rollups refreshed", "ranges", len(ranges), "duration", took)
		note = fmt.Sprintf("rollups: %d pending ranges refreshed in %s", len(ranges), took)
		changed = changed || len(ranges) > 0
	} else {
		// Coalesce leaves one row per island of ranges, as Pending would
		// merge them: its count is the summary's.
		var pending int64
		err := dbretry.Idempotent(ctx, dbretry.Default, logger, "merge pending rollup ranges", func() (err error) {
			pending, err = rollup.Coalesce(ctx, pool)
			return err
		})
		if err != nil {
			return "", err
		}
		by, err := rollup.Materializer(ctx, pool)
		if err != nil {
			return "", err
		}
		logger.Info("rollups deferred", "pending_ranges", pending, "materialized_by", by)
		note = fmt.Sprintf("rollups: %d pending ranges left to %s; until then the API answers them from the raw readings "+
			"(caught up when sensorhub_rollup_pending_ranges is 0)", pending, by)
	}
	// The version feeds the API's cache validators: change it only when the
	// data changed.
	if changed {
		if _, err := pool.Exec(ctx, bumpVersionSQL); err != nil {
			return note, fmt.Errorf("record dataset version: %w", err)
		}
	}
	return note, nil
}

func loadOne(ctx context.Context, loader *copyload.Loader, name string, stdin io.Reader, counters *copyload.Counters,
	stderr io.Writer, logger *slog.Logger, every time.Duration) (copyload.FileResult, error) {
	var (
		src  io.Reader = stdin
		size int64
	)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return copyload.FileResult{File: name, Err: fmt.Errorf("open: %w", err)}, nil
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		src = f
	}
	rep := progress.Start(ctx, counters, counters.Bytes.Load(), size, stderr, logger.With("file", name), every)
	res, err := loader.Load(ctx, name, src)
	rep.Stop()
	logger.Info("file loaded", "file", name, "format", res.Format.String(), "read", res.Read, "inserted", res.Inserted,
		"duplicates", res.Duplicates, "updated", res.Updated, "rejected", res.Rejected, "duration", res.Duration.Round(time.Millisecond),
		"rows_per_s", int64(res.Rate()))
	return res, err
}

func printSummary(w io.Writer, results []copyload.FileResult, total time.Duration, dryRun bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	title := "inserted"
	if dryRun {
		title = "inserted (dry run)"
	}
	fmt.Fprintf(tw, "file\tformat\tread\t%s\tduplicates\tupdated\trejected\tduration\trows/s\tstatus\t\n", title)
	var sum copyload.FileResult
	for _, r := range results {
		status := "ok"
		if r.Err != nil {
			status = "stopped: " + r.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%.0f\t%s\t\n", r.File, r.Format, r.Read, r.Inserted, r.Duplicates,
			r.Updated, r.Rejected, r.Duration.Round(time.Millisecond), r.Rate(), status)
		sum.Read += r.Read
		sum.Inserted += r.Inserted
		sum.Duplicates += r.Duplicates
		sum.Updated += r.Updated
		sum.Rejected += r.Rejected
	}
	sum.Duration = total
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\t%d\t%s\t%.0f\t\t\n", sum.Read, sum.Inserted, sum.Duplicates, sum.Updated,
		sum.Rejected, total.Round(time.Millisecond), sum.Rate())
	tw.Flush()
}

// lazyRejects creates the rejects file on the first reject, so a clean load
// leaves no empty file behind.
type lazyRejects struct {
	path string
	f    *os.File
	w    *rejects.Writer
	n    int64
}

func (l *lazyRejects) Reject(r copyload.Reject) error {
	if l.w == nil {
		f, err := os.Create(l.path)
		if err != nil {
			return fmt.Errorf("create rejects file: %w", err)
		}
		l.f, l.w = f, rejects.NewWriter(f)
	}
	l.n++
	return l.w.Reject(r)
}

func (l *lazyRejects) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// redact renders the connection target without its password, for logs.
func redact(c *pgxpool.Config) string {
	cc := c.ConnConfig
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if strings.EqualFold(format, "text") {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
