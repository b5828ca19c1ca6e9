// Package config reads every setting of the ingest binary's commands (load,
// refresh, serve): flags, each with its environment variable (a flag wins)
// and a default that works locally. The README's configuration table lists
// them; the names of the variables are the contract with deployments.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sensorhub/sensorhub/db/cmdline"
)

// ErrUsage marks errors that are the caller's invocation, not the data.
var ErrUsage = errors.New("usage")

// Exit statuses of the ingest commands, which their usage texts print;
// documented in the README.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitWithRejects = 3
)

// parseFlags is cmdline.ParseFlags with this binary's usage error.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	return cmdline.ParseFlags(fs, args, stdout, stderr, ErrUsage)
}

// hideEnvDefault shows a flag's default taken from the environment as
// $name in -h, since the value may hold a password.
func hideEnvDefault(fs *flag.FlagSet, flagName, envName string, getenv func(string) string) {
	if getenv(envName) != "" {
		fs.Lookup(flagName).DefValue = "$" + envName
	}
}

// Load is every setting of `ingest load`; the README's table lists them.
type Load struct {
	DatabaseURL     string
	Format          string
	Precision       string
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

// ParseLoad reads the settings of `ingest load` from args and the environment.
func ParseLoad(args []string, getenv func(string) string, stdout, stderr io.Writer) (Load, error) {
	c := Load{}
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
  line       InfluxDB line protocol: the series key (measurement and sorted
             tags) is the device, each field a parameter (-precision)
  auto       detect each file's format from its content (the default; never
             picks line)

Exit status:
  %d  every reading loaded or skipped as a duplicate
  %d  failure: a malformed document, -max-errors exceeded, or a database error
     (what was committed stays; run again)
  %d  usage error
  %d  finished, but some readings were rejected (see the rejects file)

Flags:
`, ExitOK, ExitFailure, ExitUsage, ExitWithRejects)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.DatabaseURL, "database-url", getenv("DATABASE_URL"), "PostgreSQL connection string (env DATABASE_URL)")
	fs.StringVar(&c.Format, "format", envOr(getenv, "INGEST_FORMAT", "auto"), "input format: auto, reference, ndjson, csv or line (InfluxDB line protocol, never detected) (env INGEST_FORMAT)")
	fs.StringVar(&c.Precision, "precision", envOr(getenv, "INGEST_PRECISION", "ns"), "unit of line protocol timestamps: ns, us, ms or s (env INGEST_PRECISION)")
	fs.IntVar(&c.Workers, "workers", envInt(getenv, "INGEST_WORKERS", 2, &envErr), "parallel COPY connections (env INGEST_WORKERS)")
	fs.IntVar(&c.BatchSize, "batch-size", envInt(getenv, "INGEST_BATCH_SIZE", 50000, &envErr), "readings per transaction; larger batches amortise each commit (env INGEST_BATCH_SIZE)")
	fs.StringVar(&c.OnDuplicate, "on-duplicate", envOr(getenv, "INGEST_ON_DUPLICATE", "skip"), "a reading whose series and time are stored: skip or overwrite (env INGEST_ON_DUPLICATE)")
	fs.StringVar(&c.Rollups, "rollups", envOr(getenv, "INGEST_ROLLUPS", RollupsDefer), "defer: exit once the readings are committed and leave the rollups' refresh to the background (answers stay exact); wait: refresh them before exiting (env INGEST_ROLLUPS)")
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
		return c, fmt.Errorf("%w: no input files (use - for stdin)", ErrUsage)
	}
	if c.DatabaseURL == "" {
		return c, fmt.Errorf("%w: DATABASE_URL is not set (flag -database-url)", ErrUsage)
	}
	if c.Rollups != RollupsDefer && c.Rollups != RollupsWait {
		return c, fmt.Errorf("%w: -rollups %q: want %s or %s", ErrUsage, c.Rollups, RollupsDefer, RollupsWait)
	}
	return c, nil
}

// The two ways a load treats its rollups (-rollups).
const (
	// RollupsDefer exits once the readings are committed.
	RollupsDefer = "defer"
	// RollupsWait refreshes the rollups before exiting.
	RollupsWait = "wait"
)

// Refresh is every setting of `ingest refresh`; the README's table
// lists them.
type Refresh struct {
	DatabaseURL string
	Workers     int
	LogFormat   string
}

// ParseRefresh reads the settings of `ingest refresh`.
func ParseRefresh(args []string, getenv func(string) string, stdout, stderr io.Writer) (Refresh, error) {
	c := Refresh{}
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
		return c, fmt.Errorf("%w: ingest refresh takes no arguments, got %q", ErrUsage, fs.Args())
	}
	if c.DatabaseURL == "" {
		return c, fmt.Errorf("%w: DATABASE_URL is not set (flag -database-url)", ErrUsage)
	}
	return c, nil
}

// Serve is every setting of `ingest serve`; the README's table lists
// them.
type Serve struct {
	DatabaseURL     string
	Addr            string
	Auth            string
	WriteKeys       string // the JSON array itself (INGEST_WRITE_KEYS)
	WriteKeysFile   string
	RateLimit       float64
	RateBurst       int
	MaxBodyBytes    int64
	MaxDecompressed int64
	MaxReadings     int64
	MaxListed       int
	MaxInFlight     int
	Wait            time.Duration
	GroupWait       time.Duration
	GroupReadings   int
	CommitTimeout   time.Duration
	Workers         int
	RefreshInterval time.Duration
	NaiveTZ         string
	ShutdownTimeout time.Duration
	LogFormat       string
}

// The two settings of -auth.
const (
	// AuthOn requires a write key.
	AuthOn = "on"
	// AuthOff lets anyone write any series (development only).
	AuthOff = "off"
)

// ParseServe reads the settings of `ingest serve`.
func ParseServe(args []string, getenv func(string) string, stdout, stderr io.Writer) (Serve, error) {
	c := Serve{}
	var envErr error
	fs := flag.NewFlagSet("ingest serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: ingest serve [flags]

Serves the write API: POST /v1/write takes readings as NDJSON, CSV, the
reference document or InfluxDB line protocol (gzip ok), validates them as
ingest load does and answers once the accepted ones are committed. Pushes
arriving together share a transaction (group commit). Also serves /healthz,
/readyz, /metrics and /openapi.yaml. Exit status: 0 after a clean shutdown
(SIGTERM or SIGINT), 1 failure, 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.DatabaseURL, "database-url", getenv("DATABASE_URL"), "PostgreSQL connection string, a member of sensorhub_writer (env DATABASE_URL)")
	fs.StringVar(&c.Addr, "addr", envOr(getenv, "INGEST_SERVE_ADDR", ":8081"), "listen address (env INGEST_SERVE_ADDR)")
	fs.StringVar(&c.Auth, "auth", envOr(getenv, "INGEST_AUTH", AuthOn), "on: a write API key is required; off: anyone may write any series (development only) (env INGEST_AUTH)")
	fs.StringVar(&c.WriteKeysFile, "write-keys-file", getenv("INGEST_WRITE_KEYS_FILE"), "file of write API keys, a JSON array of {name, sha256, devices, prefixes} (env INGEST_WRITE_KEYS_FILE; or the array itself in INGEST_WRITE_KEYS)")
	fs.Float64Var(&c.RateLimit, "rate-limit", envFloat(getenv, "INGEST_RATE_LIMIT", 0, &envErr), "average pushes per second per key; 0: no limit (env INGEST_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", envInt(getenv, "INGEST_RATE_BURST", 0, &envErr), "pushes a key may send at once; 0: the rate rounded up, at least 1 (env INGEST_RATE_BURST)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", int64(envInt(getenv, "INGEST_MAX_BODY_BYTES", 16<<20, &envErr)), "bound on a push's body as sent (env INGEST_MAX_BODY_BYTES)")
	fs.Int64Var(&c.MaxDecompressed, "max-decompressed-bytes", int64(envInt(getenv, "INGEST_MAX_DECOMPRESSED_BYTES", 64<<20, &envErr)), "bound on a gzip body once inflated (env INGEST_MAX_DECOMPRESSED_BYTES)")
	fs.Int64Var(&c.MaxReadings, "max-readings", int64(envInt(getenv, "INGEST_MAX_READINGS", 100_000, &envErr)), "bound on the readings of one push; larger bodies get 413 (env INGEST_MAX_READINGS)")
	fs.IntVar(&c.MaxListed, "max-listed-rejects", envInt(getenv, "INGEST_MAX_LISTED_REJECTS", 100, &envErr), "rejected readings listed in an answer; all are counted (env INGEST_MAX_LISTED_REJECTS)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", envInt(getenv, "INGEST_MAX_IN_FLIGHT", 32, &envErr), "pushes parsed or waiting at once; with -max-readings it bounds memory (env INGEST_MAX_IN_FLIGHT)")
	fs.DurationVar(&c.Wait, "write-wait", envDuration(getenv, "INGEST_WRITE_WAIT", 10*time.Second, &envErr), "how long a push waits for a slot and for its group commit to start before 503 with Retry-After; such a push was not written (env INGEST_WRITE_WAIT)")
	fs.DurationVar(&c.GroupWait, "group-wait", envDuration(getenv, "INGEST_GROUP_WAIT", 5*time.Millisecond, &envErr), "how long a commit waits for other pushes to share its transaction (env INGEST_GROUP_WAIT)")
	fs.IntVar(&c.Workers, "workers", envInt(getenv, "INGEST_WORKERS", 2, &envErr), "connections writing groups side by side, one waiting for its commit while the next copies (env INGEST_WORKERS)")
	fs.DurationVar(&c.CommitTimeout, "commit-timeout", envDuration(getenv, "INGEST_COMMIT_TIMEOUT", 10*time.Second, &envErr), "bound on writing one group, retries included; past it the transaction is rolled back and its pushes get 503 (env INGEST_COMMIT_TIMEOUT)")
	fs.IntVar(&c.GroupReadings, "group-readings", envInt(getenv, "INGEST_GROUP_READINGS", 50_000, &envErr), "readings that end a group early (env INGEST_GROUP_READINGS)")
	fs.DurationVar(&c.RefreshInterval, "refresh-interval", envDuration(getenv, "INGEST_REFRESH_INTERVAL", time.Second, &envErr), "materialize pushed ranges' rollups at most this often; answers are exact before it (env INGEST_REFRESH_INTERVAL)")
	fs.StringVar(&c.NaiveTZ, "naive-tz", getenv("INGEST_NAIVE_TZ"), "IANA zone for timestamps without an offset; empty rejects them (env INGEST_NAIVE_TZ)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", envDuration(getenv, "INGEST_SHUTDOWN_TIMEOUT", 20*time.Second, &envErr), "on SIGTERM, how long pushes in flight may take to finish (env INGEST_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.LogFormat, "log-format", envOr(getenv, "LOG_FORMAT", "auto"), "log format: auto (text on a terminal, JSON otherwise), text or json (env LOG_FORMAT)")
	hideEnvDefault(fs, "database-url", "DATABASE_URL", getenv)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return c, err
	}
	if envErr != nil {
		return c, envErr
	}
	c.WriteKeys = getenv("INGEST_WRITE_KEYS")
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("%w: ingest serve takes no arguments, got %q", ErrUsage, fs.Args())
	case c.DatabaseURL == "":
		return c, fmt.Errorf("%w: DATABASE_URL is not set (flag -database-url)", ErrUsage)
	case c.Auth != AuthOn && c.Auth != AuthOff:
		return c, fmt.Errorf("%w: -auth (INGEST_AUTH) must be on or off, not %q", ErrUsage, c.Auth)
	case c.Auth == AuthOn && c.WriteKeys == "" && c.WriteKeysFile == "":
		return c, fmt.Errorf("%w: -auth on needs write keys: set INGEST_WRITE_KEYS or INGEST_WRITE_KEYS_FILE (hashes from `api hashkey`), or -auth off for development", ErrUsage)
	case c.WriteKeys != "" && c.WriteKeysFile != "":
		return c, fmt.Errorf("%w: set INGEST_WRITE_KEYS or INGEST_WRITE_KEYS_FILE, not both", ErrUsage)
	case c.RateLimit < 0 || c.RateBurst < 0:
		return c, fmt.Errorf("%w: -rate-limit and -rate-burst must not be negative", ErrUsage)
	case c.MaxBodyBytes <= 0 || c.MaxDecompressed <= 0 || c.MaxReadings <= 0 || c.MaxInFlight <= 0 || c.GroupReadings <= 0 || c.Workers <= 0:
		return c, fmt.Errorf("%w: the -max-* bounds, -group-readings and -workers must be positive", ErrUsage)
	case c.MaxListed < 0:
		return c, fmt.Errorf("%w: -max-listed-rejects must not be negative", ErrUsage)
	case c.Wait <= 0 || c.GroupWait <= 0 || c.RefreshInterval <= 0 || c.CommitTimeout <= 0:
		return c, fmt.Errorf("%w: -write-wait, -group-wait, -commit-timeout and -refresh-interval must be positive", ErrUsage)
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
		*bad = fmt.Errorf("%w: %s=%q is not an integer", ErrUsage, key, v)
	}
	return n
}

// envFloat reads a number default from the environment.
func envFloat(getenv func(string) string, key string, def float64, bad *error) float64 {
	v := getenv(key)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && *bad == nil {
		*bad = fmt.Errorf("%w: %s=%q is not a number", ErrUsage, key, v)
	}
	return f
}

// envDuration reads a duration default such as 5ms or 10s.
func envDuration(getenv func(string) string, key string, def time.Duration, bad *error) time.Duration {
	v := getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil && *bad == nil {
		*bad = fmt.Errorf("%w: %s=%q is not a duration (such as 500ms or 10s)", ErrUsage, key, v)
	}
	return d
}
