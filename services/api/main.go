// Command api serves sensorhub's HTTP API (`api serve`, the default), writes
// its OpenAPI document (`api openapi`), hashes API keys for its
// configuration (`api hashkey`) and probes a running server (`api
// healthcheck`, for containers without a shell).
//
// Exit status: 0 after a clean shutdown (or a passing probe), 1 on a failure,
// 2 on a usage error.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // IANA zones for ?tz= even on images without /usr/share/zoneinfo

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
	"github.com/sensorhub/sensorhub/services/api/internal/config"
	"github.com/sensorhub/sensorhub/services/api/internal/cursor"
	"github.com/sensorhub/sensorhub/services/api/internal/httpapi"
	"github.com/sensorhub/sensorhub/services/api/internal/store"

	"github.com/sensorhub/sensorhub/db/cmdline"
)

// version is the build's version, set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the one place where errors become exit statuses.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, config.ErrUsage):
		fmt.Fprintln(stderr, "api:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "api:", err)
		return 1
	}
}

const usage = `usage:
  api [serve] [flags]         serve the HTTP API (run "api serve -h" for flags)
  api openapi [-o FILE]       write the OpenAPI 3.0.3 document as YAML to FILE or stdout
  api hashkey < KEYFILE       print the SHA-256 of the API key on stdin, for SENSORHUB_API_KEYS
  api healthcheck [-url URL]  exit 0 when URL (default http://127.0.0.1:<port of SENSORHUB_API_ADDR>/healthz) answers 200
  api version                 print the build's version (also --version)
  api help                    print this help (also -h, --help)
Every command takes -h for its flags. Exit status: 0 ok, 1 failure, 2 usage error.`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		// Flags without a command are serve's, except the two that every
		// binary answers at the top level.
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			cmd, args = "help", args[1:]
		case a == "-version" || a == "--version":
			cmd, args = "version", args[1:]
		case !strings.HasPrefix(a, "-"):
			cmd, args = a, args[1:]
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "openapi":
		return writeOpenAPI(args, stdout, stderr)
	case "hashkey":
		return hashKey(args, stdin, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args, getenv, stdout, stderr)
	case "help", "version":
		if len(args) > 0 {
			return fmt.Errorf("%w: %s takes no arguments, got %q", config.ErrUsage, cmd, args)
		}
		if cmd == "help" {
			fmt.Fprintln(stdout, usage)
		} else {
			fmt.Fprintln(stdout, versionLine())
		}
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", config.ErrUsage, cmd, usage)
}

// versionLine is what --version prints (package cmdline).
func versionLine() string { return cmdline.Line("api", version) }

// parseFlags parses args with fs, whose Usage must print to fs.Output().
// Help asked for with -h goes to stdout, so it can be paged or grepped;
// after a bad flag the usage goes to stderr with the error.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	err := routeHelp(stdout, stderr, func(out io.Writer) error {
		fs.SetOutput(out)
		return fs.Parse(args)
	})
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %v", config.ErrUsage, err)
	}
	return err
}

// routeHelp runs parse with a buffer for what the flag package prints and
// copies it to stdout after -h (flag.ErrHelp), to stderr otherwise.
func routeHelp(stdout, stderr io.Writer, parse func(out io.Writer) error) error {
	var out bytes.Buffer
	err := parse(&out)
	w := stderr
	if errors.Is(err, flag.ErrHelp) {
		w = stdout
	}
	_, _ = w.Write(out.Bytes())
	return err
}

// usageFunc is a flag set's Usage: the synopsis, what the command does and
// its flags with their defaults.
func usageFunc(fs *flag.FlagSet, synopsis, about string) func() {
	return func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\n%s\n", synopsis, about)
		var flags bool
		fs.VisitAll(func(*flag.Flag) { flags = true })
		if flags {
			fmt.Fprint(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
}

func writeOpenAPI(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("api openapi", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, "api openapi [-o FILE]", "Writes the API's OpenAPI 3.0.3 document, as YAML, to FILE or stdout.")
	out := fs.String("o", "", "write to this file instead of stdout")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", config.ErrUsage, fs.Args())
	}
	spec, err := httpapi.Spec()
	if err != nil {
		return fmt.Errorf("generate OpenAPI document: %w", err)
	}
	if *out == "" {
		_, err = stdout.Write(spec)
		return err
	}
	if err := os.WriteFile(*out, spec, 0o644); err != nil {
		return fmt.Errorf("write OpenAPI document: %w", err)
	}
	return nil
}

// serve runs the API until ctx is done, then shuts down: readiness fails
// first, in-flight requests finish (up to the shutdown timeout), and the
// pool closes last.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config.Config
	err := routeHelp(stdout, stderr, func(out io.Writer) (err error) {
		cfg, err = config.Load(args, getenv, out)
		return err
	})
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stderr)
	logger.Info("api starting", "version", version, "config", cfg)
	if !cfg.Pprof {
		// Linking net/http/pprof keeps the runtime's heap sampling on, and
		// it keeps a record per sampled allocation stack for the life of
		// the process: about 0.5 MB more RSS in 2 minutes of the soak's
		// load (docs/benchmarks.md). Only -pprof serves those profiles.
		runtime.MemProfileRate = 0
	}

	key := []byte(cfg.CursorKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand.Read never fails
		logger.Warn("SENSORHUB_CURSOR_KEY is not set: pagination cursors are signed with a random key, so they break on restart and across replicas")
	}

	authn, err := newAuthenticator(ctx, cfg, logger)
	if err != nil {
		return err
	}
	var limiter *ratelimit.Limiter
	if cfg.RateLimit > 0 {
		burst := cfg.RateBurst
		if burst == 0 {
			burst = int(math.Ceil(cfg.RateLimit))
		}
		limiter = ratelimit.New(cfg.RateLimit, burst, ratelimit.DefaultMaxKeys)
	}

	pool, err := newPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool)
	checkRole(ctx, st, logger)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := st.RegisterMetrics(reg); err != nil {
		return err
	}
	opts := httpapi.Options{
		Auth: authn, RateLimit: limiter, Version: version,
		RequestTimeout: cfg.RequestTimeout, CORSOrigins: cfg.CORSOrigins, Metrics: reg, Logger: logger,
		ResponseCacheBytes: int64(cfg.ResponseCacheMiB) << 20,
	}
	if cfg.ResponseCacheMiB == 0 {
		opts.ResponseCacheBytes = -1 // off
	}
	if cfg.AdminAddr == "" {
		opts.MetricsGatherer = reg
	}
	srv, err := httpapi.NewServer(httpapi.Deps{
		Store:   st,
		Cursors: cursor.NewCodec(key),
		Limits:  httpapi.Limits{MaxPoints: cfg.MaxPoints, MaxRawRange: cfg.MaxRawRange},
		Logger:  logger,
	}, opts)
	if err != nil {
		return err
	}
	// Deferred after pool.Close, so it runs before it, once the servers
	// have shut down: answers given while draining still follow loads.
	defer listenDatasetVersion(ctx, cfg, st, srv, logger)()

	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	servers := []*http.Server{srv.HTTPServer(cfg.Addr, errLog)}
	if cfg.AdminAddr != "" {
		admin := http.NewServeMux()
		admin.Handle("GET /metrics", httpapi.MetricsHandler(reg))
		if cfg.Pprof {
			admin.HandleFunc("GET /debug/pprof/", pprof.Index)
			admin.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
			admin.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			admin.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			admin.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
			logger.Warn("Go profiles served on the admin listener under /debug/pprof/ (-pprof): keep that listener private")
		}
		servers = append(servers, &http.Server{Addr: cfg.AdminAddr, Handler: admin, ErrorLog: errLog,
			ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute})
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			for _, started := range servers[:i] {
				_ = started.Close()
			}
			return fmt.Errorf("listen on %s: %w", s.Addr, err)
		}
		name := "api"
		if i > 0 {
			name = "admin"
		}
		logger.Info("listening", "server", name, "addr", ln.Addr().String())
		go func() {
			if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", name, err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down: readiness fails from now on", "delay", cfg.ShutdownDelay)
	case runErr = <-errc:
		logger.Error("server failed; shutting down", "err", runErr)
	}
	srv.Drain()
	if runErr == nil && cfg.ShutdownDelay > 0 {
		time.Sleep(cfg.ShutdownDelay) // let load balancers see /readyz fail
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			logger.Warn("in-flight requests cut off at the shutdown deadline", "addr", s.Addr, "err", err)
			_ = s.Close()
		}
	}
	logger.Info("stopped")
	return runErr
}

// newAuthenticator builds authentication from the configuration. Off is
// logged loudly at every start; on without any credentials configured is
// refused, so that a forgotten variable cannot open the API to everyone.
func newAuthenticator(ctx context.Context, cfg config.Config, logger *slog.Logger) (*auth.Authenticator, error) {
	if cfg.Auth == config.AuthOff {
		logger.Warn("AUTHENTICATION IS OFF (SENSORHUB_AUTH=off): anyone who reaches this server reads every series without credentials; for local development only",
			"ignored_api_keys", cfg.APIKeys != "" || cfg.APIKeysFile != "", "ignored_jwks_url", cfg.JWKSURL != "")
		return auth.Disabled(), nil
	}
	data := []byte(cfg.APIKeys)
	if cfg.APIKeysFile != "" {
		var err error
		if data, err = os.ReadFile(cfg.APIKeysFile); err != nil {
			return nil, fmt.Errorf("%w: SENSORHUB_API_KEYS_FILE: %v", config.ErrUsage, err)
		}
	}
	var keys []apikey.Key
	if len(strings.TrimSpace(string(data))) > 0 {
		var err error
		if keys, err = apikey.ParseKeys(data); err != nil {
			return nil, fmt.Errorf("%w: %v", config.ErrUsage, err)
		}
	}
	var jwt *auth.JWTVerifier
	if cfg.JWKSURL != "" {
		var err error
		jwt, err = auth.NewJWTVerifier(auth.JWTConfig{
			JWKSURL: cfg.JWKSURL, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Claim: cfg.JWTClaim,
			Refresh: cfg.JWKSRefresh, Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: SENSORHUB_JWKS_URL: %v", config.ErrUsage, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = jwt.Prefetch(pctx)
		cancel()
		if err != nil {
			logger.Warn("JWKS not fetched at start; tokens are refused with 503 until it is", "url", cfg.JWKSURL, "err", err)
		}
	}
	if len(keys) == 0 && jwt == nil {
		return nil, fmt.Errorf("%w: authentication is on (SENSORHUB_AUTH=on, the default) but neither API keys (SENSORHUB_API_KEYS or SENSORHUB_API_KEYS_FILE) "+
			"nor a JWKS URL (SENSORHUB_JWKS_URL) are configured, so no request could succeed: configure credentials, or set SENSORHUB_AUTH=off for local development", config.ErrUsage)
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name + " (" + k.Scope.String() + ")"
	}
	logger.Info("authentication on", "api_keys", names, "jwt", jwt != nil)
	return auth.New(keys, jwt), nil
}

// newPool opens the pool lazily: the API starts, unready, while the
// database is down.
func newPool(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	pc, err := store.PoolConfig(cfg.DatabaseURL, cfg.PoolSize, cfg.StatementTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: DATABASE_URL: %v", config.ErrUsage, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	return pool, nil
}

// listenDatasetVersion passes every dataset version a load commits to srv
// as it commits (store.ListenDatasetVersion), unless -db-listen is off; srv
// polls the version either way. The listener outlives ctx, so that answers
// given while draining still follow loads; the returned func stops it and
// waits until it has.
func listenDatasetVersion(ctx context.Context, cfg config.Config, st *store.Store, srv *httpapi.Server, logger *slog.Logger) (stop func()) {
	if !cfg.DBListen {
		logger.Info("not listening for new dataset versions (SENSORHUB_DB_LISTEN=off): answers follow a load once the version is polled again, within 1s")
		return func() {}
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.ListenDatasetVersion(lctx, srv.SetDatasetVersion, logger) // returns nil once lctx ends
	}()
	return func() {
		cancel()
		<-done
	}
}

// checkRole warns when the API's database role may write: it should be a
// member of sensorhub_reader only.
func checkRole(ctx context.Context, st *store.Store, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	mayWrite, err := st.MayWrite(ctx)
	switch {
	case err != nil:
		logger.Warn("database not reachable at start; /readyz fails until it is", "err", err)
	case mayWrite:
		logger.Warn("the database role may write readings; connect as a member of sensorhub_reader")
	}
}

// newLogger logs text to a terminal and JSON otherwise (format "auto").
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
