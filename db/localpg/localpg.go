// Package localpg starts and stops a PostgreSQL cluster from the server
// binaries installed on this machine, without Docker: a persistent one for
// the dev bring-up (cmd/localpg) and throwaway ones for tests (dbtest).
//
// When the process runs as root (sessions and CI do), initdb and postgres
// refuse to run, so the cluster's files and processes belong to the
// "postgres" system account instead.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds how long Start waits for the server to accept
// connections.
const startTimeout = 30 * time.Second

// Config says where a cluster lives and how it runs. The zero value with
// Ephemeral set is a throwaway cluster on a free port.
type Config struct {
	// Dir is the data folder (PGDATA); it is created and initialized when it
	// holds no cluster. Required unless Ephemeral, which must leave it empty.
	Dir string
	// Port is the loopback TCP port; 0 picks a free one.
	Port int
	// BinDir is the PostgreSQL bin folder; "" means $SENSORHUB_PG_BINDIR,
	// else the folder of initdb on PATH.
	BinDir string
	// Preload is shared_preload_libraries. Nil means automatic: timescaledb
	// when the binaries have it. An "auto" entry expands the same way, so
	// {"auto", "pg_stat_statements"} adds to the automatic choice; a non-nil
	// empty list preloads nothing.
	Preload []string
	// Settings are extra server settings (name → value); they win over ours.
	Settings map[string]string
	// Ephemeral makes a throwaway cluster for tests: it lives in a new folder
	// under os.TempDir, runs with fsync off, and is stopped and removed by Stop
	// or, if this process dies first, by a watchdog process.
	Ephemeral bool
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL server started (or found running) by
// Start. Its superuser is "postgres", trusted on loopback without password.
type Cluster struct {
	bins      binaries
	data      string // PGDATA
	root      string // ephemeral folder removed by Stop; "" when persistent
	logFile   string // the server's log, kept across restarts
	port      int
	timescale bool
	reused    bool
	reaper    *reaper
	logger    *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// Start initializes the cluster if Config.Dir has none, starts it, and
// returns once it accepts connections. A persistent cluster that already
// runs (postmaster.pid names a live process and its port answers) is reused
// on the port it has.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bins, err := findBinaries(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{bins: bins, logger: logger}
	if cfg.Ephemeral {
		if err := c.startEphemeral(ctx, cfg); err != nil {
			return nil, err
		}
		return c, nil
	}
	if cfg.Dir == "" {
		return nil, errors.New("start cluster: Config.Dir is empty and Ephemeral is false")
	}
	if c.data, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", cfg.Dir, err)
	}
	c.logFile = filepath.Join(c.data, "postgres.log")
	st, err := Inspect(ctx, c.data)
	if err != nil {
		return nil, err
	}
	if st.Running {
		c.port, c.reused = st.Port, true
		if cfg.Port != 0 && cfg.Port != st.Port {
			logger.Warn("cluster already runs on another port; reusing it", "dir", c.data, "port", st.Port, "asked", cfg.Port)
		}
		if err := c.waitReady(ctx); err != nil {
			return nil, fmt.Errorf("reuse cluster in %s: %w", c.data, err)
		}
		logger.Info("reusing running cluster", "dir", c.data, "port", c.port, "pid", st.PID)
		return c, nil
	}
	// Parents stay traversable for the postgres account; PGDATA itself must
	// be private to it.
	if err := os.MkdirAll(filepath.Dir(c.data), 0o755); err != nil {
		return nil, fmt.Errorf("create parent of data folder: %w", err)
	}
	if err := os.Mkdir(c.data, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	if err := bins.letTraverse(c.data); err != nil {
		return nil, err
	}
	if err := bins.chown(c.data); err != nil {
		return nil, err
	}
	if err := c.initAndStart(ctx, cfg, c.data); err != nil {
		return nil, err
	}
	return c, nil
}

// startEphemeral makes the throwaway folder and its watchdog first, so that
// even a death during initdb leaves nothing behind.
func (c *Cluster) startEphemeral(ctx context.Context, cfg Config) error {
	if cfg.Dir != "" {
		return errors.New("start ephemeral cluster: Config.Dir must be empty (the cluster gets its own temp folder)")
	}
	root, err := os.MkdirTemp("", "sensorhub-pg-")
	if err != nil {
		return fmt.Errorf("create ephemeral folder: %w", err)
	}
	// World-traversable so clients of another account can reach the socket.
	if err := os.Chmod(root, 0o755); err != nil {
		os.RemoveAll(root)
		return fmt.Errorf("chmod %s: %w", root, err)
	}
	if err := c.bins.chown(root); err != nil {
		os.RemoveAll(root)
		return err
	}
	c.root, c.data, c.logFile = root, filepath.Join(root, "data"), filepath.Join(root, "postgres.log")
	if c.reaper, err = startReaper(c.bins, c.data, root); err != nil {
		os.RemoveAll(root)
		return err
	}
	if err := c.initAndStart(ctx, cfg, root); err != nil {
		return errors.Join(err, c.Stop(context.WithoutCancel(ctx)))
	}
	return nil
}

// initAndStart runs initdb when needed, writes our settings and starts the
// server, retrying on another free port when a port we picked was taken in
// the meantime.
func (c *Cluster) initAndStart(ctx context.Context, cfg Config, socketDir string) error {
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, cfg.Ephemeral); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("inspect %s: %w", c.data, err)
	}
	preload := c.preload(cfg.Preload)
	for attempt := 1; ; attempt++ {
		port := cfg.Port
		if port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			port = p
		}
		if err := c.writeSettings(settings(cfg, port, socketDir, preload)); err != nil {
			return err
		}
		start := time.Now()
		err := c.bins.run(ctx, "pg_ctl", "start", "-D", c.data, "-l", c.logFile, "-w", "-t", fmt.Sprint(int(startTimeout.Seconds())), "-s")
		if err != nil {
			logTail := tail(c.logFile, 2000)
			if cfg.Port == 0 && attempt < 3 && strings.Contains(logTail, "already in use") {
				c.logger.Warn("picked port was taken, retrying", "port", port)
				continue
			}
			return fmt.Errorf("start cluster in %s on port %d: %w\n%s", c.data, port, err, logTail)
		}
		c.port = port
		if err := c.waitReady(ctx); err != nil {
			return fmt.Errorf("start cluster in %s: %w\n%s", c.data, err, tail(c.logFile, 2000))
		}
		c.logger.Info("cluster started", "dir", c.data, "port", port, "preload", preload, "timescaledb", c.timescale, "took", time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// initdb creates the cluster: superuser postgres, trusted on loopback and
// the socket, UTF8 with the C locale so sorting is the same everywhere.
func (c *Cluster) initdb(ctx context.Context, ephemeral bool) error {
	start := time.Now()
	args := []string{"-D", c.data, "-U", "postgres", "-E", "UTF8", "--no-locale", "-A", "trust", "--no-instructions"}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	if err := c.bins.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("initialize cluster: %w", err)
	}
	// postgresql.conf stays initdb's; our settings live in a file it
	// includes, rewritten on every Start, so `pg_ctl start` by hand behaves
	// the same.
	conf := filepath.Join(c.data, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", conf, err)
	}
	_, err = fmt.Fprintf(f, "\n# Written by sensorhub localpg on every start.\ninclude_if_exists = '%s'\n", settingsFile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append include to %s: %w", conf, err)
	}
	c.logger.Info("cluster initialized", "dir", c.data, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// settingsFile is included by postgresql.conf and holds what Config asks.
const settingsFile = "sensorhub.conf"

// settingName keeps a Settings key from smuggling other lines into the file.
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

func settings(cfg Config, port int, socketDir string, preload []string) map[string]string {
	s := map[string]string{
		"listen_addresses":         "127.0.0.1",
		"port":                     fmt.Sprint(port),
		"unix_socket_directories":  "",
		"shared_preload_libraries": strings.Join(preload, ","),
	}
	// A socket path longer than sun_path (108 bytes) fails the start; go
	// TCP-only rather than fail.
	if len(socketDir)+len("/.s.PGSQL.65535") < 100 {
		s["unix_socket_directories"] = socketDir
	}
	if slices.Contains(preload, "timescaledb") {
		s["timescaledb.telemetry_level"] = "off"
	}
	if cfg.Ephemeral {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
	}
	maps.Copy(s, cfg.Settings)
	return s
}

func (c *Cluster) writeSettings(s map[string]string) error {
	var b strings.Builder
	b.WriteString("# Written by sensorhub localpg on every start; edits are overwritten.\n")
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if !settingName.MatchString(k) {
			return fmt.Errorf("write settings: invalid setting name %q", k)
		}
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(s[k], "'", "''"))
	}
	path := filepath.Join(c.data, settingsFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	return c.bins.chown(path)
}

// preload expands Config.Preload (see its doc).
func (c *Cluster) preload(asked []string) []string {
	if asked == nil {
		asked = []string{"auto"}
	}
	var out []string
	for _, lib := range asked {
		if lib == "auto" {
			if c.bins.hasTimescaleDB() {
				lib = "timescaledb"
			} else {
				continue
			}
		}
		if !slices.Contains(out, lib) {
			out = append(out, lib)
		}
	}
	return out
}

// waitReady polls until the server answers a query, within startTimeout,
// and learns whether TimescaleDB is usable there.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.probe(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for server on port %d: %w (last error: %v)", c.port, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

const timescaleUsableSQL = `SELECT
	EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
	AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'`

func (c *Cluster) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.QueryRow(ctx, timescaleUsableSQL).Scan(&c.timescale)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds it; initAndStart retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func dsn(port int, dbname string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, url.PathEscape(dbname))
}

// DSN returns the superuser URL of dbname on this cluster.
func (c *Cluster) DSN(dbname string) string { return dsn(c.port, dbname) }

// Port returns the loopback TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Dir returns the data folder (PGDATA).
func (c *Cluster) Dir() string { return c.data }

// Reused reports whether Start found the cluster already running.
func (c *Cluster) Reused() bool { return c.reused }

// TimescaleDB reports whether the server can create the timescaledb
// extension: it is installed and preloaded.
func (c *Cluster) TimescaleDB() bool { return c.timescale }

// CreateDatabase creates dbname unless it exists, so a dev cluster can hand
// out a DSN of an application database rather than the maintenance one.
func (c *Cluster) CreateDatabase(ctx context.Context, dbname string) error {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("create database %s: %w", dbname, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", dbname).Scan(&exists); err != nil {
		return fmt.Errorf("create database %s: %w", dbname, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbname}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", dbname, err)
	}
	c.logger.Info("database created", "name", dbname)
	return nil
}

// Restart restarts the server as an operator's `pg_ctl restart -m fast`
// would: sessions are disconnected (committed work is kept), the server
// stops, and it starts again on the same data folder with the same settings
// and port. It returns once the server answers queries again. Meanwhile
// clients see their connections end and new ones refused or told the
// server is starting, which is what tests of reconnection need. Restart
// must not run concurrently with Stop, nor after it.
func (c *Cluster) Restart(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err != nil {
		return fmt.Errorf("restart cluster in %s: not running: %w", c.data, err)
	}
	start := time.Now()
	// The port stays: it lives in settingsFile, which a restart rereads.
	// -l is needed although the server logs there already: without it the
	// new server would inherit our output pipe and run would never return.
	err := c.bins.run(ctx, "pg_ctl", "restart", "-D", c.data, "-l", c.logFile, "-m", "fast",
		"-w", "-t", fmt.Sprint(int(startTimeout.Seconds())), "-s")
	if err != nil {
		return fmt.Errorf("restart cluster in %s on port %d: %w\n%s", c.data, c.port, err, tail(c.logFile, 2000))
	}
	if err := c.waitReady(ctx); err != nil {
		return fmt.Errorf("restart cluster in %s: %w\n%s", c.data, err, tail(c.logFile, 2000))
	}
	c.logger.Info("cluster restarted", "dir", c.data, "port", c.port, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Stop shuts the server down in fast mode (sessions are disconnected, no
// work is lost) and, for an ephemeral cluster, removes its folder. A reused
// cluster is stopped too. Calling Stop again returns the first result.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() { c.stopErr = c.stop(ctx) })
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	var errs []error
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil {
		if err := c.bins.run(ctx, "pg_ctl", "stop", "-D", c.data, "-m", "fast", "-w", "-t", "60"); err != nil {
			errs = append(errs, fmt.Errorf("stop cluster in %s: %w", c.data, err))
		}
	} else if c.root == "" {
		errs = append(errs, fmt.Errorf("stop cluster in %s: not running", c.data))
	}
	if c.reaper != nil {
		// The watchdog stops whatever still runs and removes the folder as
		// the cluster owner; removing it ourselves too covers a failed
		// watchdog.
		if err := c.reaper.release(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(c.root); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", c.root, err))
		}
	}
	if len(errs) == 0 {
		c.logger.Info("cluster stopped", "dir", c.data)
	}
	return errors.Join(errs...)
}
