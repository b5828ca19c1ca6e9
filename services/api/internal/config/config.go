// Package config holds every setting of the API server: one struct, read from
// flags and environment variables (a flag wins over its variable), with
// defaults that work against a local database.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrUsage marks errors in how the server was invoked (bad flag or variable).
var ErrUsage = errors.New("usage")

// Config is every setting of `api serve`. The names of the variables are the
// contract with deployments; the README's table lists them.
type Config struct {
	// DatabaseURL is the PostgreSQL DSN; it should name a member of the
	// sensorhub_reader role.
	DatabaseURL string
	// Addr is where the API listens.
	Addr string
	// AdminAddr is where /metrics listens; empty serves it on Addr.
	AdminAddr string
	// Pprof serves Go's profiles under /debug/pprof/ on AdminAddr: they show
	// the code and its memory, so they are off unless asked for.
	Pprof bool
	// RequestTimeout bounds a request's handling, streamed exports excepted.
	RequestTimeout time.Duration
	// StatementTimeout is the PostgreSQL statement_timeout of the API's sessions.
	StatementTimeout time.Duration
	// MaxPoints bounds the items of one JSON response.
	MaxPoints int
	// MaxRawRange bounds the time range of an unpaginated request for raw
	// readings (process_request with from and to).
	MaxRawRange time.Duration
	// PoolSize is the most connections the API holds.
	PoolSize int
	// DBListen makes the API hold one more connection, outside the pool,
	// that LISTENs for new dataset versions, so ETags move on the moment a
	// load commits rather than at the next poll. Off where LISTEN cannot
	// work: behind PgBouncer in transaction mode.
	DBListen bool
	// ResponseCacheMiB bounds the in-memory response cache; 0 turns it off.
	ResponseCacheMiB int
	// CORSOrigins are the origins browsers may call from ("*" for any); none
	// disables CORS.
	CORSOrigins []string
	// LogFormat is auto (text on a terminal, JSON otherwise), text or json.
	LogFormat string
	// CursorKey signs pagination cursors; empty means a random key per process.
	CursorKey string
	// ShutdownDelay is how long readiness fails before the server stops
	// accepting requests, so load balancers stop routing first.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds waiting for in-flight requests at shutdown.
	ShutdownTimeout time.Duration

	// Auth is "on" (credentials required) or "off" (development only: every
	// request sees every series).
	Auth string
	// APIKeys is a JSON array of API keys (name, sha256, devices, prefixes),
	// from the environment only; APIKeysFile names a file holding one. At
	// most one of them is set.
	APIKeys     string
	APIKeysFile string
	// JWKSURL is where the identity provider publishes the keys that sign
	// JWT bearer tokens; empty accepts no tokens.
	JWKSURL string
	// JWTIssuer and JWTAudience, when set, must match a token's iss and aud.
	JWTIssuer   string
	JWTAudience string
	// JWTClaim names the token claim holding {"devices": [...], "prefixes": [...]}.
	JWTClaim string
	// JWKSRefresh is how long fetched JWKS keys are used before fetching anew.
	JWKSRefresh time.Duration
	// RateLimit is each caller's average requests per second; 0 disables
	// the limit. RateBurst is how many it may send at once (0: the rate,
	// rounded up, at least 1).
	RateLimit float64
	RateBurst int
}

// Values of Config.Auth.
const (
	AuthOn  = "on"
	AuthOff = "off"
)

// DefaultDatabaseURL suits a local database made by `localpg start` or a
// compose file; deployments set DATABASE_URL to a sensorhub_reader member.
const DefaultDatabaseURL = "postgres://postgres@localhost:5432/sensorhub?sslmode=disable"

// Load parses args (without the program and subcommand names) over the
// environment read by getenv. flag.ErrHelp is returned as is after -h.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	e := envReader{getenv: getenv}
	fs := flag.NewFlagSet("api serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: api serve [flags]   (or: api [flags])

Serves the HTTP API until SIGINT or SIGTERM, then shuts down: /readyz fails
first, in-flight requests finish, the database pool closes last. A flag wins
over its environment variable; SENSORHUB_CURSOR_KEY and SENSORHUB_API_KEYS are
read from the environment only. Exit status: 0 after a clean shutdown,
1 failure, 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.DatabaseURL, "database-url", e.str("DATABASE_URL", DefaultDatabaseURL), "PostgreSQL connection string, a member of sensorhub_reader (env DATABASE_URL)")
	fs.StringVar(&c.Addr, "addr", e.str("SENSORHUB_API_ADDR", ":8080"), "API listen address (env SENSORHUB_API_ADDR)")
	fs.StringVar(&c.AdminAddr, "admin-addr", e.strEmpty("SENSORHUB_ADMIN_ADDR", ":9090"), "listen address of /metrics; empty (env: off) serves it on -addr (env SENSORHUB_ADMIN_ADDR)")
	fs.BoolVar(&c.Pprof, "pprof", e.boolean("SENSORHUB_PPROF", false), "serve Go's runtime profiles under /debug/pprof/ on -admin-addr, for diagnosis (env SENSORHUB_PPROF)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", e.duration("SENSORHUB_REQUEST_TIMEOUT", 10*time.Second), "bound on handling one request, exports excepted (env SENSORHUB_REQUEST_TIMEOUT)")
	fs.DurationVar(&c.StatementTimeout, "statement-timeout", e.duration("SENSORHUB_STATEMENT_TIMEOUT", 5*time.Second), "PostgreSQL statement_timeout of every query (env SENSORHUB_STATEMENT_TIMEOUT)")
	fs.IntVar(&c.MaxPoints, "max-points", e.integer("SENSORHUB_MAX_POINTS", 100_000), "most items in one JSON response (env SENSORHUB_MAX_POINTS)")
	fs.DurationVar(&c.MaxRawRange, "max-raw-range", e.duration("SENSORHUB_MAX_RAW_RANGE", 31*24*time.Hour), "widest from..to of an unpaginated raw-readings request (env SENSORHUB_MAX_RAW_RANGE)")
	fs.IntVar(&c.PoolSize, "pool-size", e.integer("SENSORHUB_DB_POOL_SIZE", 10), "most database connections (env SENSORHUB_DB_POOL_SIZE)")
	fs.IntVar(&c.ResponseCacheMiB, "response-cache-mib", e.integer("SENSORHUB_RESPONSE_CACHE_MIB", 64), "MiB of whole answers kept in memory, keyed by dataset version, request and scope; 0 turns the cache off (env SENSORHUB_RESPONSE_CACHE_MIB)")
	listen := fs.String("db-listen", e.str("SENSORHUB_DB_LISTEN", "on"), "on: one more connection LISTENs for new dataset versions, so answers follow a load the moment it commits; off: poll only, as PgBouncer in transaction mode needs (env SENSORHUB_DB_LISTEN)")
	cors := fs.String("cors-origins", e.str("SENSORHUB_CORS_ORIGINS", ""), "comma-separated origins allowed by CORS, * for any; empty disables CORS (env SENSORHUB_CORS_ORIGINS)")
	fs.StringVar(&c.LogFormat, "log-format", e.str("LOG_FORMAT", "auto"), "auto (text on a terminal, JSON otherwise), text or json (env LOG_FORMAT)")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", e.duration("SENSORHUB_SHUTDOWN_DELAY", 0), "time /readyz fails before the listener closes (env SENSORHUB_SHUTDOWN_DELAY)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", e.duration("SENSORHUB_SHUTDOWN_TIMEOUT", 20*time.Second), "bound on waiting for in-flight requests at shutdown (env SENSORHUB_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.Auth, "auth", e.str("SENSORHUB_AUTH", AuthOn), "on: credentials required; off: no authentication, every series visible (development only) (env SENSORHUB_AUTH)")
	fs.StringVar(&c.APIKeysFile, "api-keys-file", e.str("SENSORHUB_API_KEYS_FILE", ""), "file of API keys, a JSON array of {name, sha256, devices, prefixes} (env SENSORHUB_API_KEYS_FILE; or the array itself in SENSORHUB_API_KEYS)")
	fs.StringVar(&c.JWKSURL, "jwks-url", e.str("SENSORHUB_JWKS_URL", ""), "JWKS URL of the identity provider whose JWTs are accepted; empty accepts none (env SENSORHUB_JWKS_URL)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", e.str("SENSORHUB_JWT_ISSUER", ""), "required iss of JWTs; empty: not checked (env SENSORHUB_JWT_ISSUER)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", e.str("SENSORHUB_JWT_AUDIENCE", ""), "required aud of JWTs; empty: not checked (env SENSORHUB_JWT_AUDIENCE)")
	fs.StringVar(&c.JWTClaim, "jwt-claim", e.str("SENSORHUB_JWT_CLAIM", "sensorhub"), `JWT claim holding {"devices": [...], "prefixes": [...]} (env SENSORHUB_JWT_CLAIM)`)
	fs.DurationVar(&c.JWKSRefresh, "jwks-refresh", e.duration("SENSORHUB_JWKS_REFRESH", 10*time.Minute), "how long fetched JWKS keys are used before fetching anew; an unknown key id fetches sooner (env SENSORHUB_JWKS_REFRESH)")
	fs.Float64Var(&c.RateLimit, "rate-limit", e.float("SENSORHUB_RATE_LIMIT", 0), "average requests per second per caller (API key, token subject, or client address without auth); 0: no limit (env SENSORHUB_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", e.integer("SENSORHUB_RATE_BURST", 0), "requests a caller may send at once; 0: the rate rounded up, at least 1 (env SENSORHUB_RATE_BURST)")
	if getenv("DATABASE_URL") != "" {
		// -h prints defaults, and this one may hold a password.
		fs.Lookup("database-url").DefValue = "$DATABASE_URL"
	}
	// Secrets (and what identifies them) come from the environment only, so
	// they never show in ps.
	c.CursorKey = getenv("SENSORHUB_CURSOR_KEY")
	c.APIKeys = getenv("SENSORHUB_API_KEYS")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if e.err != nil {
		return c, e.err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	switch *listen {
	case "on":
		c.DBListen = true
	case "off":
	default:
		return c, fmt.Errorf("%w: -db-listen (SENSORHUB_DB_LISTEN) must be on or off, not %q", ErrUsage, *listen)
	}
	for _, o := range strings.Split(*cors, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CORSOrigins = append(c.CORSOrigins, o)
		}
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...))
		}
	}
	check(c.DatabaseURL != "", "DATABASE_URL is empty")
	check(c.Addr != "", "-addr is empty")
	check(!c.Pprof || c.AdminAddr != "", "-pprof needs -admin-addr: profiles are never served on the API's own listener")
	check(c.RequestTimeout > 0, "-request-timeout must be positive, not %v", c.RequestTimeout)
	check(c.StatementTimeout >= time.Millisecond, "-statement-timeout must be at least 1ms, not %v", c.StatementTimeout)
	check(c.MaxPoints > 0, "-max-points must be positive, not %d", c.MaxPoints)
	check(c.MaxRawRange > 0, "-max-raw-range must be positive, not %v", c.MaxRawRange)
	check(c.PoolSize > 0, "-pool-size must be positive, not %d", c.PoolSize)
	check(c.ResponseCacheMiB >= 0 && c.ResponseCacheMiB <= 1<<20, "-response-cache-mib must be between 0 and 1048576, not %d", c.ResponseCacheMiB)
	check(c.ShutdownDelay >= 0 && c.ShutdownTimeout > 0, "shutdown delay must not be negative and timeout must be positive")
	check(c.Auth == AuthOn || c.Auth == AuthOff, "-auth (SENSORHUB_AUTH) must be on or off, not %q", c.Auth)
	check(c.APIKeys == "" || c.APIKeysFile == "", "set SENSORHUB_API_KEYS or SENSORHUB_API_KEYS_FILE, not both")
	check(c.JWTClaim != "", "-jwt-claim is empty")
	check(c.JWKSRefresh >= time.Second, "-jwks-refresh must be at least 1s, not %v", c.JWKSRefresh)
	check(c.RateLimit >= 0 && !math.IsInf(c.RateLimit, 0) && !math.IsNaN(c.RateLimit), "-rate-limit must be a number of requests a second, 0 for none, not %v", c.RateLimit)
	check(c.RateBurst >= 0, "-rate-burst must not be negative, not %d", c.RateBurst)
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		check(false, "-log-format must be auto, text or json, not %q", c.LogFormat)
	}
	return errors.Join(errs...)
}

// LogValue prints the configuration with its secrets masked.
func (c Config) LogValue() slog.Value {
	key := "random per process"
	if c.CursorKey != "" {
		key = "set"
	}
	apiKeys := "none"
	switch {
	case c.APIKeys != "":
		apiKeys = "SENSORHUB_API_KEYS"
	case c.APIKeysFile != "":
		apiKeys = c.APIKeysFile
	}
	return slog.GroupValue(
		slog.String("database_url", RedactDSN(c.DatabaseURL)),
		slog.String("addr", c.Addr),
		slog.String("admin_addr", c.AdminAddr),
		slog.Bool("pprof", c.Pprof),
		slog.Duration("request_timeout", c.RequestTimeout),
		slog.Duration("statement_timeout", c.StatementTimeout),
		slog.Int("max_points", c.MaxPoints),
		slog.Duration("max_raw_range", c.MaxRawRange),
		slog.Int("pool_size", c.PoolSize),
		slog.Bool("db_listen", c.DBListen),
		slog.Int("response_cache_mib", c.ResponseCacheMiB),
		slog.String("cors_origins", strings.Join(c.CORSOrigins, ",")),
		slog.String("log_format", c.LogFormat),
		slog.String("cursor_key", key),
		slog.Duration("shutdown_delay", c.ShutdownDelay),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.String("auth", c.Auth),
		slog.String("api_keys", apiKeys),
		slog.String("jwks_url", redactURL(c.JWKSURL)),
		slog.String("jwt_issuer", c.JWTIssuer),
		slog.String("jwt_audience", c.JWTAudience),
		slog.String("jwt_claim", c.JWTClaim),
		slog.Duration("jwks_refresh", c.JWKSRefresh),
		slog.Float64("rate_limit", c.RateLimit),
		slog.Int("rate_burst", c.RateBurst),
	)
}

// redactURL masks a URL's password, if any.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN masks the password of a URL or keyword/value DSN.
func RedactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable URL)"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// envReader reads defaults from the environment, remembering the first
// malformed value rather than silently using the default instead.
type envReader struct {
	getenv func(string) string
	err    error
}

func (e *envReader) str(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

// strEmpty is str for a variable whose empty value means something; see lookup.
func (e *envReader) strEmpty(key, def string) string {
	if v, ok := lookup(e.getenv, key); ok {
		return v
	}
	return def
}

func (e *envReader) integer(key string, def int) int {
	return parsed(e, key, def, strconv.Atoi, "an integer")
}

func (e *envReader) boolean(key string, def bool) bool {
	return parsed(e, key, def, strconv.ParseBool, "true or false")
}

func (e *envReader) float(key string, def float64) float64 {
	return parsed(e, key, def, func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }, "a number")
}

func (e *envReader) duration(key string, def time.Duration) time.Duration {
	return parsed(e, key, def, time.ParseDuration, "a duration like 5s or 1m30s")
}

// parsed reads key with parse, def when unset; a value parse rejects is a
// usage error saying it is not what.
func parsed[T any](e *envReader, key string, def T, parse func(string) (T, error), what string) T {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		e.fail(fmt.Errorf("%w: %s=%q is not %s", ErrUsage, key, v, what))
		return def
	}
	return x
}

func (e *envReader) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// lookup reads a variable where "unset" and "off" differ: getenv cannot tell
// an empty variable from a missing one, so "-", "none" or "off" spell empty.
func lookup(getenv func(string) string, key string) (string, bool) {
	switch v := getenv(key); v {
	case "":
		return "", false
	case "-", "none", "off":
		return "", true
	default:
		return v, true
	}
}
