// Command ingest loads sensor readings into sensorhub's database (`load`),
// serves the write API that takes pushed readings over HTTP (`serve`),
// materializes the rollups loads left pending (`refresh`) and writes synthetic
// datasets (`gen`).
//
// Exit status of load: 0 every reading loaded (or skipped as a duplicate);
// 3 finished, but some readings were rejected (see the rejects file); 1 a
// failure stopped a file or the run (malformed document, --max-errors,
// database error); 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sensorhub/sensorhub/db/cmdline"
	"github.com/sensorhub/sensorhub/services/ingest/internal/config"
)

// version is the build's version, set with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses (package config, whose usage texts print them).
const (
	exitOK          = config.ExitOK
	exitFailure     = config.ExitFailure
	exitUsage       = config.ExitUsage
	exitWithRejects = config.ExitWithRejects
)

// errUsage marks errors that are the caller's invocation, not the data.
var errUsage = config.ErrUsage

// errRejects reports a run that finished but rejected readings.
var errRejects = errors.New("some readings were rejected")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the one place where errors become exit statuses.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errRejects):
		fmt.Fprintln(stderr, "ingest:", err)
		return exitWithRejects
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "ingest:", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "ingest:", err)
		return exitFailure
	}
}

const usage = `usage:
  ingest load [flags] FILE...|-   load readings (reference JSON, NDJSON or CSV; gzip ok)
  ingest refresh [flags]          materialize the rollups loads left pending
  ingest serve [flags]            serve the write API (POST /v1/write) on :8081
  ingest openapi [-o FILE]        write the write API's OpenAPI 3.0.3 document
  ingest gen [flags]              write a synthetic dataset
  ingest version                  print the build's version (also --version)
  ingest help                     print this help (also -h, --help)
Every command takes -h for its flags.`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage)
	}
	switch args[0] {
	case "load":
		return runLoad(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "refresh":
		return runRefresh(ctx, args[1:], getenv, stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "openapi":
		return writeOpenAPI(args[1:], stdout, stderr)
	case "gen":
		return runGen(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			return fmt.Errorf("%w: help takes no arguments; run \"ingest %s -h\"", errUsage, args[1])
		}
		fmt.Fprintln(stdout, usage)
		return nil
	case "-version", "--version", "version":
		if len(args) > 1 {
			return fmt.Errorf("%w: version takes no arguments, got %q", errUsage, args[1:])
		}
		fmt.Fprintln(stdout, versionLine())
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage)
}

// versionLine is what --version prints (package cmdline).
func versionLine() string { return cmdline.Line("ingest", version) }

// parseFlags is cmdline.ParseFlags with this binary's usage error.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	return cmdline.ParseFlags(fs, args, stdout, stderr, errUsage)
}
