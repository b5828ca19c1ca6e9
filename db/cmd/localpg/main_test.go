package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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
	for _, args := range [][]string{nil, {"frobnicate"}, {"start", "extra"}} {
		if err := run(t.Context(), args, &stdout, &stderr); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("usage errors wrote to stdout: %q", stdout.String())
	}
}
