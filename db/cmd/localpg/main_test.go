package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/db/localpg"
)

func TestStartStatusStop(t *testing.T) {
	if os.Getenv("SENSORHUB_SKIP_DB") == "1" {
		t.Skip("SENSORHUB_SKIP_DB=1")
	}
	if !localpg.Available() {
		t.Fatalf("PostgreSQL server binaries not found (or SENSORHUB_SKIP_DB=1)")
	}
	// Reachable by the postgres account when we are root (t.TempDir is 0700).
	parent, err := os.MkdirTemp("", "localpg-cmd-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o755)
	t.Cleanup(func() { os.RemoveAll(parent) })
	dir := filepath.Join(parent, "postgres")
	ctx := t.Context()

	runOK := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("localpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}

	out := runOK("start", "-dir", dir, "-port", "0")
	t.Cleanup(func() { run(context.Background(), []string{"stop", "-dir", dir}, os.Stderr, os.Stderr) })
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(out, "/sensorhub?sslmode=disable\n") {
		t.Fatalf("start printed %q, want one DSN line of database sensorhub", out)
	}
	dsn := strings.TrimSpace(out)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to printed DSN: %v", err)
	}
	conn.Close(ctx)

	if again := runOK("start", "-dir", dir, "-port", "0"); again != out {
		t.Errorf("second start printed %q, want the running cluster's %q", again, out)
	}
	if st := runOK("status", "-dir", dir); st != out {
		t.Errorf("status printed %q, want %q", st, out)
	}
	runOK("stop", "-dir", dir)

	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"status", "-dir", dir}, &stdout, &stderr)
	if !errors.Is(err, errNotRunning) || stdout.Len() != 0 {
		t.Errorf("status after stop: err=%v stdout=%q, want errNotRunning and nothing", err, stdout.String())
	}
}

func TestUsageErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{nil, {"frobnicate"}, {"start", "extra"}, {"start", "-bogus"}, {"status", "-port", "1"}, {"stop", "-dir"}, {"version", "x"}} {
		err := run(t.Context(), args, &stdout, &stderr)
		if code := exitCode(err, io.Discard); code != 2 {
			t.Errorf("run(%q): %v (exit %d), want a usage error (exit 2)", args, err, code)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("usage errors wrote to stdout: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "usage: localpg start|status|stop") {
		t.Errorf("no usage on stderr after an unknown command: %q", stderr.String())
	}
}

// versionPattern is what --version prints on every binary.
var versionPattern = regexp.MustCompile(`^localpg \S+ \(go\S+, \w+/\w+\)\n$`)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout, &stderr)
		if code := exitCode(err, io.Discard); code != 0 || !versionPattern.MatchString(stdout.String()) || stderr.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and one line localpg VERSION (GO, OS/ARCH)", args, code, stdout.String(), stderr.String())
		}
	}
}

// TestHelp: help at the top level and on each command goes to stdout and
// exits 0.
func TestHelp(t *testing.T) {
	help := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout, &stderr)
		if code := exitCode(err, io.Discard); code != 0 || stderr.Len() != 0 {
			t.Errorf("%q: %v (exit %d), stderr %q; want exit 0 and nothing on stderr", args, err, code, stderr.String())
		}
		return stdout.String()
	}
	for _, h := range []string{"-h", "--help", "-help", "help"} {
		out := help(h)
		for _, cmd := range []string{"start", "status", "stop", "version"} {
			if !strings.Contains(out, "  "+cmd+" ") {
				t.Errorf("%s: no %q in %s", h, cmd, out)
			}
		}
	}
	for _, cmd := range []string{"start", "status", "stop"} {
		for _, h := range []string{"-h", "--help"} {
			if out := help(cmd, h); !strings.HasPrefix(out, "usage: localpg "+cmd+" [flags]\n") || !strings.Contains(out, "  -dir") {
				t.Errorf("%s %s: %q, want the synopsis and the flags", cmd, h, out)
			}
		}
	}
	if out := help("start", "-h"); !strings.Contains(out, "(env SENSORHUB_PG_BINDIR") {
		t.Errorf("start -h: -bin does not name its variable:\n%s", out)
	}
}
