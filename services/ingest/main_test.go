package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

// The test binary doubles as the ingest command: with this variable set it
// runs main, so tests can start, kill and re-run the real program.
const asMainEnv = "SENSORHUB_INGEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		return
	}
	os.Exit(dbtest.Main(m))
}

// ingestCmd prepares the real program with args against dsn.
func ingestCmd(t *testing.T, dsn string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1", "DATABASE_URL="+dsn, "LOG_FORMAT=json")
	cmd.Dir = t.TempDir()
	return cmd
}

func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run ingest: %v", err)
	}
	return ee.ExitCode()
}

func writeDataset(t *testing.T, c gen.Config, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Write(f, c); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

type totals struct {
	readings, numeric, text, catalog, rollup1m, pending int64
	digest                                              string // of every reading, in a fixed order
}

func readTotals(t *testing.T, pool *pgxpool.Pool) totals {
	t.Helper()
	var x totals
	err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM sensorhub.readings),
		       (SELECT count(value_num) FROM sensorhub.readings),
		       (SELECT count(value_text) FROM sensorhub.readings),
		       (SELECT coalesce(sum(reading_count), 0) FROM sensorhub.series),
		       (SELECT coalesce(sum(count), 0) FROM sensorhub.rollup_1m),
		       (SELECT count(*) FROM sensorhub.rollup_pending),
		       (SELECT md5(coalesce(string_agg(concat_ws('|', s.device_id, s.parameter, r.time, r.utc_offset_min, r.value_num, r.value_text),
		                                       ',' ORDER BY s.device_id, s.parameter, r.time), ''))
		        FROM sensorhub.readings r JOIN sensorhub.series s USING (series_id))`).
		Scan(&x.readings, &x.numeric, &x.text, &x.catalog, &x.rollup1m, &x.pending, &x.digest)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestKillAndRerunEndsExact kills the job with SIGKILL at random points of a
// load and checks that running it again ends with exactly the input's
// readings, counted once in the catalog and once in the rollups.
func TestKillAndRerunEndsExact(t *testing.T) {
	c := gen.Config{Seed: 3, Devices: 4, Params: 10, TextShare: 0.3, Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.FixedZone("", -4*3600)),
		Interval: 30 * time.Second, Points: 1500, Format: dataset.Reference}
	path := writeDataset(t, c, "big.json")
	const total = 4 * 10 * 1500
	const numeric = 4 * 7 * 1500

	// A clean load gives the reference totals the killed runs must reach.
	clean := dbtest.New(t)
	if out, err := ingestCmd(t, clean.DSN, "load", "-batch-size", "1000", path).CombinedOutput(); err != nil {
		t.Fatalf("clean load: %v\n%s", err, out)
	}
	// TimescaleDB's background job may drain the range at any moment, but
	// only by materializing it.
	if got := readTotals(t, clean.Pool); got.pending == 0 && got.rollup1m != numeric {
		t.Fatalf("a load that defers its rollups (the default) left no range pending: %+v", got)
	}
	refreshRollups(t, clean.DSN)
	want := readTotals(t, clean.Pool)
	if want.readings != total || want.numeric != numeric || want.catalog != total || want.rollup1m != numeric || want.pending != 0 {
		t.Fatalf("clean load totals %+v; want %d readings, %d numeric", want, total, numeric)
	}

	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			d := dbtest.New(t)
			rng := rand.New(rand.NewPCG(seed, 42))
			killAt := int64(rng.IntN(total-5000) + 1000) // somewhere inside the load
			cmd := ingestCmd(t, d.DSN, "load", "-batch-size", "1000", "-workers", "2", path)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			var n int64
			for time.Now().Before(deadline) {
				if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensorhub.readings`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n >= killAt {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			mid := readTotals(t, d.Pool)
			t.Logf("killed at %d readings (aimed at %d)", mid.readings, killAt)
			if mid.readings == total {
				t.Logf("the load finished before the kill; the re-run below still must be exact")
			}
			if mid.readings != mid.catalog {
				t.Errorf("after the kill the catalog counts %d readings but %d are stored", mid.catalog, mid.readings)
			}

			// The re-run refreshes before it exits: it must also repair what
			// the killed run left pending.
			rerun := ingestCmd(t, d.DSN, "load", "-rollups", "wait", "-batch-size", "1000", path)
			if outb, err := rerun.CombinedOutput(); err != nil {
				t.Fatalf("re-run: %v\n%s", err, outb)
			}
			got := readTotals(t, d.Pool)
			if got.readings != want.readings || got.numeric != want.numeric || got.text != want.text || got.catalog != want.catalog ||
				got.rollup1m != want.rollup1m || got.pending != 0 || got.digest != want.digest {
				t.Errorf("after kill and re-run: %+v; want %+v", got, want)
			}
		})
	}
}

func TestExitStatuses(t *testing.T) {
	d := dbtest.New(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ndjson")
	bad := filepath.Join(dir, "bad.ndjson")
	broken := filepath.Join(dir, "broken.json")
	must(t, os.WriteFile(good, []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1}`+"\n"), 0o644))
	must(t, os.WriteFile(bad, []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:01:00Z","value":2}`+"\n"+
		`{"device_id":"d","parameter":"p","timestamp":"yesterday","value":3}`+"\n"), 0o644))
	must(t, os.WriteFile(broken, []byte(`{"d": [{"parameter":"p","timestamp":"2024-01-01T00:02:00Z","value":1,"type":"numeric"}, {"param`), 0o644))

	cases := []struct {
		name string
		args []string
		want int
		out  string
	}{
		{"success", []string{"load", good}, exitOK, ""},
		{"rejects", []string{"load", "-rejects", filepath.Join(dir, "rej.ndjson"), bad}, exitWithRejects, "rejected"},
		{"malformed document", []string{"load", broken}, exitFailure, "broken.json"},
		{"usage", []string{"load", "-workers", "x", good}, exitUsage, "invalid value"},
		{"no files", []string{"load"}, exitUsage, "no input files"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ingestCmd(t, d.DSN, tc.args...).CombinedOutput()
			if got := exitCodeOf(t, err); got != tc.want {
				t.Errorf("exit %d, want %d\n%s", got, tc.want, out)
			}
			if !strings.Contains(string(out), tc.out) {
				t.Errorf("output lacks %q:\n%s", tc.out, out)
			}
		})
	}
	// The rejects file names the place and reason of the bad reading.
	rej, err := os.ReadFile(filepath.Join(dir, "rej.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rej, []byte(`"line":2`)) || !bytes.Contains(rej, []byte(`"field":"timestamp"`)) {
		t.Errorf("rejects file %s lacks line 2 / field timestamp", rej)
	}
}

// TestDefaultRejectsFile: without -rejects the rejects file is
// rejects.ndjson in the working directory, and the repository's .gitignore
// ignores it there (and *.rejects.ndjson), so a load run in a checkout does
// not leave an unignored file of raw records behind.
func TestDefaultRejectsFile(t *testing.T) {
	d := dbtest.New(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ndjson")
	must(t, os.WriteFile(bad, []byte(`{"device_id":"d","parameter":"p","timestamp":"yesterday","value":3}`+"\n"), 0o644))
	cmd := ingestCmd(t, d.DSN, "load", bad)
	cmd.Env = append(cmd.Env, "INGEST_REJECTS=") // the default, whatever the caller's environment says
	out, err := cmd.CombinedOutput()
	if code := exitCodeOf(t, err); code != exitWithRejects {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "rejects.ndjson")); err != nil {
		t.Errorf("no rejects.ndjson in the working directory: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "rejects.ndjson")); err == nil {
		t.Error("rejects.ndjson was written beside the input, not in the working directory")
	}

	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"load", "-h"}, func(string) string { return "" }, nil, &stdout, io.Discard); err != nil ||
		!strings.Contains(stdout.String(), "working directory") {
		t.Errorf("load -h does not say where the default rejects file goes: %v\n%s", err, stdout.String())
	}

	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not on PATH")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".gitignore")); err != nil {
		t.Fatalf("no .gitignore at the repository root %s: %v", root, err)
	}
	for _, p := range []string{"rejects.ndjson", "services/ingest/rejects.ndjson", "x.rejects.ndjson", "services/ingest/2024-01.rejects.ndjson", ".data/rejects.ndjson"} {
		c := exec.Command(git, "check-ignore", "--no-index", "-q", p)
		c.Dir = root
		if err := c.Run(); err != nil {
			t.Errorf("git check-ignore %s: %v; want it ignored by .gitignore", p, err)
		}
	}
}

// runCLI runs the program in this process, as main would, without a database.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	return exitCode(err, &errOut), out.String(), errOut.String()
}

// TestUsage: a bad flag, argument or command exits 2 and says why on stderr.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"load", "-bogus", "x"}, {"load", "-workers", "x", "f"}, {"load", "f"},
		{"refresh", "-bogus"}, {"refresh", "extra"}, {"gen", "-bogus"}, {"gen", "-format", "xml"}, {"gen", "extra"}, {"--version", "x"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "ingest: usage: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and the error on stderr", args, code, stdout, stderr, exitUsage)
		}
	}
}

// versionPattern is what --version prints on every binary.
var versionPattern = regexp.MustCompile(`^ingest \S+ \(go\S+, \w+/\w+\)\n$`)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		if code, stdout, stderr := runCLI(t, args...); code != exitOK || !versionPattern.MatchString(stdout) || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and one line ingest VERSION (GO, OS/ARCH)", args, code, stdout, stderr)
		}
	}
}

// TestHelp: -h and --help print to stdout and exit 0; load's help names the
// input formats and every exit status.
func TestHelp(t *testing.T) {
	help := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, args...)
		if code != exitOK || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 0 and nothing on stderr", args, code, stderr)
		}
		return stdout
	}
	for _, h := range []string{"-h", "--help", "-help", "help"} {
		out := help(h)
		for _, cmd := range []string{"load", "refresh", "gen", "version"} {
			if !strings.Contains(out, "ingest "+cmd) {
				t.Errorf("%s: no %q in %s", h, cmd, out)
			}
		}
	}
	for _, h := range []string{"-h", "--help"} {
		for cmd, synopsis := range map[string]string{
			"load":    "usage: ingest load [flags] FILE...|-\n",
			"refresh": "usage: ingest refresh [flags]\n",
			"gen":     "usage: ingest gen [flags]\n",
		} {
			if out := help(cmd, h); !strings.HasPrefix(out, synopsis) || !strings.Contains(out, "\n  -") {
				t.Errorf("%s %s: %q, want the synopsis and the flags", cmd, h, out)
			}
		}
		out := help("load", h)
		for _, want := range []string{"reference", "ndjson", "csv", "auto", "gzip", "stdin",
			fmt.Sprintf("%d  every reading loaded", exitOK), fmt.Sprintf("%d  failure", exitFailure),
			fmt.Sprintf("%d  usage error", exitUsage), fmt.Sprintf("%d  finished, but some readings were rejected", exitWithRejects)} {
			if !strings.Contains(out, want) {
				t.Errorf("load %s lacks %q:\n%s", h, want, out)
			}
		}
	}
	// -h shows where a default came from, not a DSN that may hold a password.
	var stdout bytes.Buffer
	env := func(k string) string { return map[string]string{"DATABASE_URL": "postgres://u:s3cret@h/db"}[k] }
	if err := run(t.Context(), []string{"load", "-h"}, env, nil, &stdout, io.Discard); err != nil ||
		strings.Contains(stdout.String(), "s3cret") || !strings.Contains(stdout.String(), "$DATABASE_URL") {
		t.Errorf("load -h with DATABASE_URL set: %v\n%s", err, stdout.String())
	}
}

// TestServesMetricsWhileLoading scrapes the job's /metrics in the middle of
// a load: stdin stays open, so the job waits for more input after the
// readings the test wrote.
func TestServesMetricsWhileLoading(t *testing.T) {
	d := dbtest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := ingestCmd(t, d.DSN, "load", "-metrics-addr", addr, "-format", "ndjson", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // the normal path waits for it below
	for i := range 3 {
		fmt.Fprintf(stdin, `{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:0%d:00Z","value":%d}`+"\n", i, i)
	}
	// Poll the job's endpoint until it has counted the three readings.
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, `sensorhub_ingest_readings_total{result="read"} 3`) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, `sensorhub_ingest_readings_total{result="read"} 3`) || !strings.Contains(body, "sensorhub_ingest_bytes_total") {
		t.Fatalf("/metrics while loading lacks the three readings read:\n%s\n%s", body, out.String())
	}
	// The runtime metrics are served live (they are never pushed); the
	// last-run values are not, since the run has not ended.
	if !strings.Contains(body, "\ngo_goroutines ") {
		t.Errorf("/metrics while loading lacks go_goroutines:\n%s", body)
	}
	if strings.Contains(body, "sensorhub_ingest_last_") {
		t.Errorf("/metrics while loading serves last-run values:\n%s", body)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out.String())
	}
}

func TestPushesMetricsToPushgateway(t *testing.T) {
	d := dbtest.New(t)
	var (
		mu     sync.Mutex
		bodies []string
		paths  []string
	)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, paths = append(bodies, string(b)), append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "x.ndjson")
	must(t, os.WriteFile(file, []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1}`+"\n"+
		`{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1}`+"\n"+
		`{"device_id":"d","parameter":"p","timestamp":"nope","value":1}`+"\n"), 0o644))
	out, err := ingestCmd(t, d.DSN, "load", "-pushgateway", gw.URL, "-rejects", filepath.Join(dir, "r.ndjson"), file).CombinedOutput()
	if code := exitCodeOf(t, err); code != exitWithRejects {
		t.Fatalf("exit %d\n%s", code, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "POST /metrics/job/sensorhub_ingest" {
		t.Fatalf("pushes %v; want one POST to the job's group", paths)
	}
	got := map[string]float64{}
	var families []string
	dec := expfmt.NewDecoder(strings.NewReader(bodies[0]), expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		families = append(families, mf.GetName())
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	// The Pushgateway keeps a group's metrics until a push replaces them:
	// only last-run values, never the exited process's runtime metrics.
	for _, name := range families {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			t.Errorf("pushed the runtime metric %s", name)
		}
		if !strings.HasPrefix(name, "sensorhub_ingest_last_run_") && name != "sensorhub_ingest_last_success_timestamp_seconds" {
			t.Errorf("pushed %s, whose name does not say it is the last run's", name)
		}
	}
	for name, want := range map[string]float64{
		"sensorhub_ingest_last_run_readings{read}":      2,
		"sensorhub_ingest_last_run_readings{inserted}":  1,
		"sensorhub_ingest_last_run_readings{duplicate}": 1,
		"sensorhub_ingest_last_run_readings{rejected}":  1,
		"sensorhub_ingest_last_run_readings{updated}":   0,
		"sensorhub_ingest_last_run_failed":              0,
		"sensorhub_ingest_last_run_batches":             1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("pushed %s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if v := got["sensorhub_ingest_last_run_bytes"]; v != float64(fileSize(t, file)) {
		t.Errorf("pushed last_run_bytes %v, want the file's %d bytes", v, fileSize(t, file))
	}
	if v, ok := got["sensorhub_ingest_last_run_duration_seconds"]; !ok || v <= 0 || v > 60 {
		t.Errorf("pushed last_run_duration_seconds %v (present %v)", v, ok)
	}
	if got["sensorhub_ingest_last_success_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success timestamp %v is not now", got["sensorhub_ingest_last_success_timestamp_seconds"])
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
