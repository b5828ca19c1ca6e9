package localpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireBinaries fails (not skips) without PostgreSQL, unless the run says
// databases are off: a test that silently skips hides a broken machine.
func requireBinaries(t *testing.T) {
	t.Helper()
	if os.Getenv("SENSORHUB_SKIP_DB") == "1" {
		t.Skip("SENSORHUB_SKIP_DB=1")
	}
	if !Available() {
		t.Fatalf("PostgreSQL server binaries not found: put initdb on PATH or set %s (or SENSORHUB_SKIP_DB=1)", BinDirEnv)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func query[T any](t *testing.T, dsn, sql string) T {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(context.Background())
	var v T
	if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestEphemeralStartStop(t *testing.T) {
	requireBinaries(t)
	start := time.Now()
	c, err := Start(t.Context(), Config{Ephemeral: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ephemeral cluster up in %v on port %d (timescaledb %v)", time.Since(start).Round(time.Millisecond), c.Port(), c.TimescaleDB())
	t.Cleanup(func() { c.Stop(context.Background()) })

	if got := query[string](t, c.DSN("postgres"), "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q, want off for an ephemeral cluster", got)
	}
	if got := query[string](t, c.DSN("postgres"), "SHOW server_encoding"); got != "UTF8" {
		t.Errorf("server_encoding = %q, want UTF8", got)
	}
	if got := query[string](t, c.DSN("postgres"), "SELECT current_user"); got != "postgres" {
		t.Errorf("current_user = %q, want postgres", got)
	}
	pid, _, err := readPostmasterPID(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(c.Dir())

	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if processAlive(pid) {
		t.Errorf("postmaster %d still alive after Stop", pid)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ephemeral folder %s still there after Stop (stat: %v)", root, err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestEphemeralSettingsAndNoPreload(t *testing.T) {
	requireBinaries(t)
	c, err := Start(t.Context(), Config{
		Ephemeral: true,
		Preload:   []string{},
		Settings:  map[string]string{"application_name": "it's localpg"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	if got := query[string](t, c.DSN("postgres"), "SELECT current_setting('shared_preload_libraries')"); got != "" {
		t.Errorf("shared_preload_libraries = %q, want empty", got)
	}
	if c.TimescaleDB() {
		t.Error("TimescaleDB() = true with nothing preloaded")
	}
}

// persistentDir returns a folder the postgres account can reach when we are
// root (t.TempDir is 0700 root-owned).
func persistentDir(t *testing.T) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	return filepath.Join(parent, "data", "postgres")
}

func TestPersistentReuseAndRestart(t *testing.T) {
	requireBinaries(t)
	ctx := t.Context()
	dir := persistentDir(t)
	cfg := Config{Dir: dir, Logger: testLogger(t)}

	first, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Shutdown(context.Background(), cfg) })
	if first.Reused() {
		t.Error("first Start reports Reused")
	}
	conn, err := pgx.Connect(ctx, first.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	second, err := Start(ctx, Config{Dir: dir, Port: first.Port() + 1})
	if err != nil {
		t.Fatal(err)
	}
	if !second.Reused() || second.Port() != first.Port() {
		t.Errorf("second Start: reused=%v port=%d, want reused on %d", second.Reused(), second.Port(), first.Port())
	}
	st, err := Inspect(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Initialized || !st.Running || st.Port != first.Port() {
		t.Errorf("Inspect = %+v, want initialized and running on %d", st, first.Port())
	}
	// A reused cluster restarts too, logging where Start would have.
	if err := second.Restart(ctx); err != nil {
		t.Fatalf("Restart of the reused cluster: %v", err)
	}
	if got := query[int](t, second.DSN("postgres"), "SELECT v FROM kept"); got != 42 || second.Port() != first.Port() {
		t.Errorf("after Restart: kept.v = %d on port %d, want 42 on %d", got, second.Port(), first.Port())
	}

	if err := Shutdown(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if st, err = Inspect(ctx, dir); err != nil || st.Running || !st.Initialized {
		t.Errorf("after Shutdown: Inspect = %+v, %v; want initialized, not running", st, err)
	}
	if err := Shutdown(ctx, cfg); err != nil {
		t.Errorf("Shutdown of a stopped cluster: %v", err)
	}

	third, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if third.Reused() {
		t.Error("Start after Shutdown reports Reused")
	}
	if got := query[int](t, third.DSN("postgres"), "SELECT v FROM kept"); got != 42 {
		t.Errorf("kept.v = %d after restart, want 42", got)
	}
	if got := query[string](t, third.DSN("postgres"), "SHOW fsync"); got != "on" {
		t.Errorf("fsync = %q, want on for a persistent cluster", got)
	}
	if err := third.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Errorf("persistent cluster files gone after Stop: %v", err)
	}
}

// TestEphemeralRestart restarts a running cluster: sessions from before are
// cut, and afterwards a new postmaster serves the same data, settings and
// port. A stopped cluster refuses to restart.
func TestEphemeralRestart(t *testing.T) {
	requireBinaries(t)
	ctx := t.Context()
	c, err := Start(ctx, Config{Ephemeral: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	port := c.Port()
	held, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(context.Background())
	if _, err := held.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	oldPID, _, err := readPostmasterPID(c.Dir())
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("restarted in %v", time.Since(start).Round(time.Millisecond))

	newPID, pidPort, err := readPostmasterPID(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if newPID == oldPID || processAlive(oldPID) {
		t.Errorf("postmaster %d → %d (old alive: %v), want a new process and the old one gone", oldPID, newPID, processAlive(oldPID))
	}
	if c.Port() != port || pidPort != port {
		t.Errorf("port %d (postmaster.pid: %d) after the restart, want %d as before", c.Port(), pidPort, port)
	}
	var one int
	if err := held.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
		t.Error("a session from before the restart still answers; a fast restart disconnects it")
	}
	if got := query[int](t, c.DSN("postgres"), "SELECT v FROM kept"); got != 42 {
		t.Errorf("kept.v = %d after the restart, want 42", got)
	}
	if got := query[string](t, c.DSN("postgres"), "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q after the restart, want off as the ephemeral settings say", got)
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx); err == nil {
		t.Error("Restart of a stopped cluster succeeded")
	}
}

func TestPreloadExpansion(t *testing.T) {
	bins, err := findBinaries("")
	if err != nil {
		t.Skip(err)
	}
	c := &Cluster{bins: bins}
	var auto []string
	if bins.hasTimescaleDB() {
		auto = []string{"timescaledb"}
	}
	for _, tc := range []struct {
		asked []string
		want  []string
	}{
		{nil, auto},
		{[]string{}, nil},
		{[]string{"auto", "pg_stat_statements"}, append(append([]string{}, auto...), "pg_stat_statements")},
		{[]string{"pg_stat_statements", "pg_stat_statements"}, []string{"pg_stat_statements"}},
	} {
		got := c.preload(tc.asked)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("preload(%q) = %q, want %q", tc.asked, got, tc.want)
		}
	}
}

func TestSettingsRejectsBadNames(t *testing.T) {
	c := &Cluster{data: t.TempDir()}
	if err := c.writeSettings(map[string]string{"port = 1\nfsync": "off"}); err == nil {
		t.Error("writeSettings accepted a name with a newline")
	}
}

// childEnv makes the test binary act as the process that dies.
const childEnv = "LOCALPG_TEST_DYING_CHILD"

// TestEphemeralClusterDiesWithProcess re-runs this test binary as a child
// that starts an ephemeral cluster and then dies without calling Stop; the
// watchdog must stop the server and remove its folder.
func TestEphemeralClusterDiesWithProcess(t *testing.T) {
	if how := os.Getenv(childEnv); how != "" {
		dyingChild(how)
		return
	}
	requireBinaries(t)
	for _, how := range []string{"panic", "exit", "sigkill"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestEphemeralClusterDiesWithProcess$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"="+how)
			cmd.Stderr = tWriter{t}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var data string
			var pid int
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				t.Log("child:", line)
				if v, ok := strings.CutPrefix(line, "CLUSTER "); ok {
					f := strings.Fields(v)
					data = f[0]
					pid, _ = strconv.Atoi(f[1])
					if how == "sigkill" {
						cmd.Process.Signal(syscall.SIGKILL)
					}
				}
			}
			werr := cmd.Wait()
			if data == "" || pid == 0 {
				t.Fatalf("child never reported its cluster (wait: %v)", werr)
			}
			if werr == nil {
				t.Fatalf("child exited cleanly; it was meant to die by %s", how)
			}
			t.Logf("child died (%v); postmaster %d, folder %s", werr, pid, filepath.Dir(data))

			died := time.Now()
			root := filepath.Dir(data)
			deadline := time.Now().Add(30 * time.Second)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				_, statErr := os.Stat(root)
				alive := processAlive(pid)
				if !alive && errors.Is(statErr, os.ErrNotExist) {
					t.Logf("cleaned up %v after the child died", time.Since(died).Round(time.Millisecond))
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("30s after the child died: postmaster alive=%v, folder stat err=%v", alive, statErr)
				}
				<-tick.C
			}
		})
	}
}

// dyingChild starts an ephemeral cluster, reports it, and dies as told.
func dyingChild(how string) {
	c, err := Start(context.Background(), Config{Ephemeral: true})
	if err != nil {
		fmt.Println("start failed:", err)
		os.Exit(3)
	}
	pid, _, err := readPostmasterPID(c.Dir())
	if err != nil {
		fmt.Println("read pid failed:", err)
		os.Exit(3)
	}
	fmt.Printf("CLUSTER %s %d\n", c.Dir(), pid)
	switch how {
	case "panic":
		panic("child dies without stopping its cluster")
	case "exit":
		os.Exit(4)
	default: // block until the parent's SIGKILL; a bare select{} would be a detected deadlock
		time.Sleep(time.Minute)
	}
}

// TestPersistentInPrivateFolder starts a cluster in a checkout that lies in a
// 0700 folder, as `mktemp -d && git clone` leaves it: as root the postgres
// account must still reach its data folder.
func TestPersistentInPrivateFolder(t *testing.T) {
	requireBinaries(t)
	parent, err := os.MkdirTemp("", "localpg-private-") // 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	cfg := Config{Dir: filepath.Join(parent, "checkout", ".data", "postgres"), Logger: testLogger(t)}
	c, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start in a private folder: %v", err)
	}
	t.Cleanup(func() { Shutdown(context.Background(), cfg) })
	conn, err := pgx.Connect(t.Context(), c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	if st, err := os.Stat(parent); err != nil || st.Mode().Perm()&0o044 != 0 {
		t.Errorf("the private folder became readable by others: %v %v", st.Mode(), err)
	}
}
