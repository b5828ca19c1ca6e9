package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/services/ingest/internal/config"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/pipeline"
	"github.com/sensorhub/sensorhub/services/ingest/internal/writeapi"
)

// runServe serves the write API until ctx ends, then shuts down: readiness
// fails, pushes in flight finish and are committed (up to the shutdown
// timeout), and only then do the committers stop.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.ParseServe(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stderr)
	keys, err := loadWriteKeys(cfg)
	if err != nil {
		return err
	}
	dopts := dataset.Options{}
	if cfg.NaiveTZ != "" {
		loc, err := time.LoadLocation(cfg.NaiveTZ)
		if err != nil {
			return fmt.Errorf("%w: -naive-tz: %v", errUsage, err)
		}
		dopts.NaiveZone = loc
	}
	// The overwrite mode's writers connect only when such pushes come.
	// Beyond the writers of both modes: one connection for new series and
	// partitions, one for the refresher, one for readiness.
	pool, err := connect(ctx, cfg.DatabaseURL, 2*cfg.Workers+3)
	if err != nil {
		return err
	}
	defer pool.Close()

	counters := &copyload.Counters{}
	loader, err := copyload.NewLoader(ctx, pool, copyload.WithLogger(logger), copyload.WithCounters(counters),
		copyload.WithDatasetOptions(dopts))
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	refresher := pipeline.NewRefresher(pool, cfg.RefreshInterval, logger)
	committers := map[copyload.Mode]*copyload.Committer{}
	var m *writeapi.Metrics
	onCommit := func(s copyload.GroupStats) {
		m.Committed(s)
		if s.Inserted > 0 {
			refresher.Changed()
		}
	}
	for _, mode := range []copyload.Mode{copyload.ModeSkip, copyload.ModeOverwrite} {
		committers[mode] = copyload.NewCommitter(loader, copyload.GroupOptions{
			Mode: mode, MaxWait: cfg.GroupWait, MaxReadings: cfg.GroupReadings, CommitTimeout: cfg.CommitTimeout, Workers: cfg.Workers,
			OnCommit: onCommit,
		})
	}
	m, err = writeapi.NewMetrics(reg, func() float64 {
		var n int64
		for _, c := range committers {
			n += c.Queued()
		}
		return float64(n)
	})
	if err != nil {
		return err
	}
	var limiter *ratelimit.Limiter
	if cfg.RateLimit > 0 {
		limiter = ratelimit.New(cfg.RateLimit, max(cfg.RateBurst, int(math.Ceil(cfg.RateLimit))), 0)
	}
	var draining atomic.Bool
	handler := writeapi.NewHandler(writeapi.Deps{
		Loader: loader, Committers: committers, Keys: keys, RateLimit: limiter, Metrics: m, Logger: logger,
		Limits: writeapi.Limits{
			MaxBodyBytes: cfg.MaxBodyBytes, MaxDecompressedBytes: cfg.MaxDecompressed, MaxReadings: cfg.MaxReadings,
			MaxListed: cfg.MaxListed, MaxInFlight: cfg.MaxInFlight, Wait: cfg.Wait,
		},
		Ready: func() error {
			pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := pool.Ping(pctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			return nil
		},
	}, &draining)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", writeapi.Handler(reg))
	mux.Handle("/", handler)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	// The committers outlive the HTTP server: a push in flight at SIGTERM is
	// committed and answered before they stop.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var wg sync.WaitGroup
	for _, c := range committers {
		wg.Go(func() { c.Run(workCtx) })
	}
	wg.Go(func() { refresher.Run(workCtx) })

	auth := "on"
	if keys == nil {
		auth = "off"
		logger.Warn("AUTHENTICATION IS OFF (INGEST_AUTH=off): anyone who reaches this service writes any series; for local development only")
	}
	logger.Info("write service listening", "addr", ln.Addr().String(), "database", pipeline.Redact(pool), "auth", auth,
		"group_wait", cfg.GroupWait, "max_in_flight", cfg.MaxInFlight)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		stopWork()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	draining.Store(true)
	logger.Info("shutting down: pushes in flight finish, new ones are refused", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	stopWork()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("write service stopped", "inserted", counters.Inserted.Load(), "duplicates", counters.Duplicates.Load())
	return nil
}

// loadWriteKeys reads the write keys, or returns nil with -auth off.
func loadWriteKeys(cfg config.Serve) (*apikey.Set, error) {
	if cfg.Auth == config.AuthOff {
		return nil, nil
	}
	data := []byte(cfg.WriteKeys)
	name := "INGEST_WRITE_KEYS"
	if cfg.WriteKeysFile != "" {
		var err error
		if data, err = os.ReadFile(cfg.WriteKeysFile); err != nil {
			return nil, fmt.Errorf("%w: write keys: %v", errUsage, err)
		}
		name = cfg.WriteKeysFile
	}
	keys, err := apikey.ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, name, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds no keys; with -auth on nobody could write", errUsage, name)
	}
	return apikey.NewSet(keys), nil
}

// writeOpenAPI writes the write API's OpenAPI document.
func writeOpenAPI(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest openapi", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: ingest openapi [-o FILE]\n\nWrites the write API's OpenAPI 3.0.3 document, as YAML, to FILE or stdout.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "write to this file instead of stdout")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	spec, err := writeapi.Spec()
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
