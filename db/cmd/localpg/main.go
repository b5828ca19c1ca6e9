// Command localpg runs the developer's PostgreSQL cluster from the server
// binaries installed on the machine, in the checkout's data folder, so the
// services can be brought up without Docker.
//
//	localpg start  [-dir .data/postgres] [-port 54329] [-db sensorhub]   prints the DSN
//	localpg status [-dir .data/postgres] [-db sensorhub]                 prints the DSN; exit 3 when stopped
//	localpg stop   [-dir .data/postgres]
//
// stdout carries only the DSN (so `DATABASE_URL=$(localpg start)` works);
// logs go to stderr. SENSORHUB_PG_BINDIR picks another PostgreSQL tree, e.g.
// one with TimescaleDB, which is then preloaded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sensorhub/sensorhub/db/localpg"
)

// DefaultPort is off PostgreSQL's 5432 so a system server can run alongside.
const DefaultPort = 54329

// errNotRunning makes status exit 3, as pg_ctl status does.
var errNotRunning = errors.New("not running")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errNotRunning):
		os.Exit(3)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "localpg:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("localpg "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data folder (default: .data/postgres in the checkout root)")
	binDir := fs.String("bin", "", "PostgreSQL bin folder (default: $"+localpg.BinDirEnv+", else initdb's folder on PATH)")
	var port *int
	var dbname *string
	switch cmd {
	case "start":
		port = fs.Int("port", DefaultPort, "loopback TCP port (0: pick a free one)")
		dbname = fs.String("db", "sensorhub", "database to create if missing and name in the DSN")
	case "status":
		dbname = fs.String("db", "sensorhub", "database to name in the DSN")
	case "stop":
	default:
		usage(stderr)
		return fmt.Errorf("unknown command %q: %w", cmd, flag.ErrHelp)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, fs.Args())
	}
	if *dir == "" {
		root, err := checkoutRoot()
		if err != nil {
			return err
		}
		*dir = filepath.Join(root, ".data", "postgres")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := localpg.Config{Dir: *dir, BinDir: *binDir, Logger: logger}

	switch cmd {
	case "start":
		cfg.Port = *port
		c, err := localpg.Start(ctx, cfg)
		if err != nil {
			return err
		}
		if err := c.CreateDatabase(ctx, *dbname); err != nil {
			return err
		}
		fmt.Fprintln(stdout, c.DSN(*dbname))
		return nil
	case "status":
		st, err := localpg.Inspect(ctx, *dir)
		if err != nil {
			return err
		}
		switch {
		case st.Running:
			logger.Info("running", "dir", st.Dir, "pid", st.PID, "port", st.Port)
			fmt.Fprintln(stdout, st.DSN(*dbname))
			return nil
		case st.Initialized:
			logger.Info("stopped", "dir", st.Dir)
		default:
			logger.Info("no cluster", "dir", st.Dir)
		}
		return errNotRunning
	default: // stop
		return localpg.Shutdown(ctx, cfg)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: localpg start|status|stop [flags]
  start   start (or reuse) the dev cluster and print its DSN
  status  print the DSN if running; exit 3 if not
  stop    stop the dev cluster
Run 'localpg <command> -h' for flags.
`)
}

// checkoutRoot is the nearest folder up from the working directory that
// holds go.work, so every checkout has its own data folder wherever the
// command is run from inside it.
func checkoutRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find checkout root: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find checkout root: no go.work above %s; pass -dir", wd)
		}
	}
}
