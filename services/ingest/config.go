package main

// The configuration of each ingest command: flags, each with its
// environment variable and a default that works locally (the README's
// configuration table lists them), read in one place per command.

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// loadConfig is every setting of `ingest load`; the README's table lists them.
type loadConfig struct {
	DatabaseURL     string
	Format          string
	Workers         int
	BatchSize       int
	OnDuplicate     string
	Rollups         string
	DryRun          bool
	MaxErrors       int64
	RejectsPath     string
	NaiveTZ         string
	MaxDecompressed int64
	LogFormat       string
	ProgressEvery   time.Duration
	MetricsAddr     string
	Pushgateway     string
	Files           []string
}

func parseLoadConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (loadConfig, error) {
	c := loadConfig{}
	var envErr error
	fs := flag.NewFlagSet("ingest load", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: ingest load [flags] FILE...|-

Loads sensor readings from each FILE, or from stdin for -, into DATABASE_URL.
Every reading is validated; rejected ones go to the rejects file, their good
neighbours are loaded. Loading again is idempotent.

Input formats (-format), gzip-compressed input read transparently:
  reference  {"<device_id>": [{"parameter", "timestamp", "value", "type"}, ...], ...}
  ndjson     one {"device_id", "parameter", "timestamp", "value"[, "type"]} per line;
             from - (stdin), lines are loaded as they arrive
  csv        header device_id,parameter,timestamp,value[,type]
  auto       detect each file's format from its content (the default)

Exit status:
  %d  every reading loaded or skipped as a duplicate
  %d  failure: a malformed document, -max-errors exceeded, or a database error
     (what was committed stays; run again)
  %d  usage error
  %d  finished, but some readings were rejected (see the rejects file)

Flags:
`, exitOK, exitFailure, exitUsage, exitWithRejects)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.DatabaseURL, "database-url", getenv("DATABASE_URL"), "PostgreSQL connection string (env DATABASE_URL)")
	fs.StringVar(&c.Format, "format", envOr(getenv, "INGEST_FORMAT", "auto"), "input format: auto, reference, ndjson or csv (env INGEST_FORMAT)")
	fs.IntVar(&c.Workers, "workers", envInt(getenv, "INGEST_WORKERS", 2, &envErr), "parallel COPY connections (env INGEST_WORKERS)")
	fs.IntVar(&c.BatchSize, "batch-size", envInt(getenv, "INGEST_BATCH_SIZE", 50000, &envErr), "readings per transaction; larger batches amortise each commit (env INGEST_BATCH_SIZE)")
	fs.StringVar(&c.OnDuplicate, "on-duplicate", envOr(getenv, "INGEST_ON_DUPLICATE", "skip"), "a reading whose series and time are stored: skip or overwrite (env INGEST_ON_DUPLICATE)")
	fs.StringVar(&c.Rollups, "rollups", envOr(getenv, "INGEST_ROLLUPS", rollupsDefer), "defer: exit once the readings are committed and leave the rollups' refresh to the background (answers stay exact); wait: refresh them before exiting (env INGEST_ROLLUPS)")
	fs.BoolVar(&c.DryRun, "dry-run", false, "validate and report, write nothing")
	fs.Int64Var(&c.MaxErrors, "max-errors", int64(envInt(getenv, "INGEST_MAX_ERRORS", -1, &envErr)), "abort after this many rejected readings; -1 = no limit (env INGEST_MAX_ERRORS)")
	fs.StringVar(&c.RejectsPath, "rejects", envOr(getenv, "INGEST_REJECTS", "rejects.ndjson"), "NDJSON file for rejected readings, written only when there are some; the default and relative paths are in the working directory (env INGEST_REJECTS)")
	fs.StringVar(&c.NaiveTZ, "naive-tz", getenv("INGEST_NAIVE_TZ"), "IANA zone for timestamps without an offset; empty rejects them (env INGEST_NAIVE_TZ)")
	fs.Int64Var(&c.MaxDecompressed, "max-decompressed-bytes", int64(envInt(getenv, "INGEST_MAX_DECOMPRESSED_BYTES", 0, &envErr)), "bound on inflated gzip input; 0 = 64 GiB (env INGEST_MAX_DECOMPRESSED_BYTES)")
	fs.StringVar(&c.LogFormat, "log-format", envOr(getenv, "LOG_FORMAT", "auto"), "log format: auto (text on a terminal, JSON otherwise), text or json (env LOG_FORMAT)")
	fs.DurationVar(&c.ProgressEvery, "progress-interval", 10*time.Second, "log progress this often when not on a terminal")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", getenv("INGEST_METRICS_ADDR"), "serve Prometheus /metrics here while loading, e.g. :9091; empty: off (env INGEST_METRICS_ADDR)")
	fs.StringVar(&c.Pushgateway, "pushgateway", getenv("PUSHGATEWAY_URL"), "push the run's metrics to this Pushgateway at the end; empty: off (env PUSHGATEWAY_URL)")
	hideEnvDefault(fs, "database-url", "DATABASE_URL", getenv)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return c, err
	}
	if envErr != nil {
		return c, envErr
	}
	c.Files = fs.Args()
	if len(c.Files) == 0 {
		return c, fmt.Errorf("%w: no input files (use - for stdin)", errUsage)
	}
	if c.DatabaseURL == "" {
		return c, fmt.Errorf("%w: DATABASE_URL is not set (flag -database-url)", errUsage)
	}
	if c.Rollups != rollupsDefer && c.Rollups != rollupsWait {
		return c, fmt.Errorf("%w: -rollups %q: want %s or %s", errUsage, c.Rollups, rollupsDefer, rollupsWait)
	}
	return c, nil
}

// The two ways a load treats its rollups (-rollups).
const (
	rollupsDefer = "defer"
	rollupsWait  = "wait"
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

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// envInt reads an integer default from the environment; a malformed value is
// reported through bad rather than silently replaced by the default.
func envInt(getenv func(string) string, key string, def int, bad *error) int {
	v := getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil && *bad == nil {
		*bad = fmt.Errorf("%w: %s=%q is not an integer", errUsage, key, v)
	}
	return n
}
