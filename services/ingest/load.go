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

	"github.com/sensorhub/sensorhub/services/ingest/internal/config"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/metrics"
	"github.com/sensorhub/sensorhub/services/ingest/internal/pipeline"
	"github.com/sensorhub/sensorhub/services/ingest/internal/progress"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rejects"
)

func runLoad(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := config.ParseLoad(args, getenv, stdout, stderr)
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
	precision, err := dataset.ParsePrecision(cfg.Precision)
	if err != nil {
		return fmt.Errorf("%w: -precision: %v", errUsage, err)
	}
	dopts := dataset.Options{Format: format, Precision: precision, MaxDecompressedBytes: cfg.MaxDecompressed}
	if cfg.NaiveTZ != "" {
		loc, err := time.LoadLocation(cfg.NaiveTZ)
		if err != nil {
			return fmt.Errorf("%w: -naive-tz: %v", errUsage, err)
		}
		dopts.NaiveZone = loc
	}

	pool, err := connect(ctx, cfg.DatabaseURL, cfg.Workers+2)
	if err != nil {
		return err
	}
	defer pool.Close()
	logger.Info("ingest starting", "database", pipeline.Redact(pool), "workers", cfg.Workers, "batch_size", cfg.BatchSize,
		"on_duplicate", cfg.OnDuplicate, "dry_run", cfg.DryRun, "files", len(cfg.Files))

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
func loadAll(ctx context.Context, cfg config.Load, pool *pgxpool.Pool, counters *copyload.Counters, rej *lazyRejects,
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
		rollupNote, runErr = pipeline.Finish(ctx, pool, pipeline.FinishOptions{
			Wait: cfg.Rollups == config.RollupsWait, Workers: cfg.Workers,
			Changed: counters.Inserted.Load()+counters.Updated.Load() > 0,
		}, logger)
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

// connect is pipeline.Connect with a malformed DATABASE_URL reported as a
// usage error.
func connect(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	if _, err := pgxpool.ParseConfig(url); err != nil {
		return nil, fmt.Errorf("%w: DATABASE_URL: %v", errUsage, err)
	}
	return pipeline.Connect(ctx, url, maxConns)
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
