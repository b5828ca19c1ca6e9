// Command localpg runs the developer's PostgreSQL cluster from the server
// binaries installed on the machine, in the checkout's data folder, so the
// services can be brought up without Docker.
//
//	localpg start  [-dir .data/postgres] [-port 54329] [-db sensorhub]   prints the DSN
//	localpg status [-dir .data/postgres] [-db sensorhub]                 prints the DSN; exit 3 when stopped
//	localpg stop   [-dir .data/postgres]
//	localpg version | --version
//	localpg help | -h | --help
//
// stdout carries only the DSN (so `DATABASE_URL=$(localpg start)` works), or
// the help or version asked for; logs go to stderr. SENSORHUB_PG_BINDIR picks another PostgreSQL tree, e.g.
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

	"github.com/sensorhub/sensorhub/db/cmdline"
)

// DefaultPort is off PostgreSQL's 5432 so a system server can run alongside.
const DefaultPort = 54329

// version is the build's version, set with -ldflags "-X main.version=...".
var version = "dev"

// errNotRunning makes status exit 3, as pg_ctl status does.
var errNotRunning = errors.New("not running")

// errUsage marks errors in how localpg was invoked.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the one place where errors become exit statuses.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errNotRunning):
		return 3 // status has logged why
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "localpg:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "localpg:", err)
		return 1
	}
}

// about is each command's synopsis and description, for its -h.
var about = map[string]string{
	"start":  "usage: localpg start [flags]\n\nStarts the dev cluster (or reuses the running one), creates -db if missing and prints its DSN on stdout.",
	"status": "usage: localpg status [flags]\n\nPrints the DSN of -db when the dev cluster runs; exit status 3 when it does not.",
	"stop":   "usage: localpg stop [flags]\n\nStops the dev cluster.",
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, args := args[0], args[1:]
	var answer func(io.Writer)
	switch cmd {
	case "-h", "-help", "--help", "help":
		answer = usage
	case "-version", "--version", "version":
		answer = func(w io.Writer) { fmt.Fprintln(w, versionLine()) }
	}
	if answer != nil {
		if len(args) > 0 {
			return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, cmd, args)
		}
		answer(stdout)
		return nil
	}
	fs := flag.NewFlagSet("localpg "+cmd, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", about[cmd])
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "", "data folder (default: .data/postgres in the checkout root)")
	binDir := fs.String("bin", "", "PostgreSQL bin folder (env "+localpg.BinDirEnv+"; default: initdb's folder on PATH, else pg_config --bindir, else the newest /usr/lib/postgresql/*/bin)")
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
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected arguments %q", errUsage, cmd, fs.Args())
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
  start    start (or reuse) the dev cluster and print its DSN
  status   print the DSN if running; exit 3 if not
  stop     stop the dev cluster
  version  print the build's version (also --version)
  help     print this help (also -h, --help)
Run 'localpg <command> -h' for flags. Exit status: 0 ok, 1 failure, 2 usage
error, 3 (status) not running.
`)
}

// parseFlags is cmdline.ParseFlags with this binary's usage error.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	return cmdline.ParseFlags(fs, args, stdout, stderr, errUsage)
}

// versionLine is what --version prints (package cmdline).
func versionLine() string { return cmdline.Line("localpg", version) }

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
