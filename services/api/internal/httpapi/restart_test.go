package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/localpg"
	"github.com/sensorhub/sensorhub/db/seed"
)

const (
	// restartWorkers request the data endpoints and process_request
	// continuously; with the /readyz poller and the test itself they are
	// more than the pool's four connections, so every connection is in use
	// all the time and none that the restart cut can hide idle.
	restartWorkers = 4
	// restartReadyzEvery is how often the /readyz poller asks.
	restartReadyzEvery = 20 * time.Millisecond
	// restartRecoverWithin bounds how long after the server is back every
	// endpoint must answer 200 again.
	restartRecoverWithin = 10 * time.Second
	// restartDBName is the application database of the private cluster.
	restartDBName = "sensorhub"
)

// restartAnswer is one request made while the database restarted.
type restartAnswer struct {
	path   string
	at     time.Duration // when it was sent, since the traffic began
	took   time.Duration
	status int   // 0 when the exchange itself failed
	err    error // why the answer breaks the API's promise, or nil
}

// TestDatabaseRestart restarts PostgreSQL for real (pg_ctl restart -m fast)
// while clients keep requesting every data endpoint, process_request and
// /readyz. Every answer must be a 200 or a fast 503 in the endpoint's error
// shape, never a 500 or a hang; /readyz must report the outage and, once
// the API has recovered, stay ready; the pool must reconnect on its own,
// keep no more server sessions than MaxConns, and leave none once closed.
//
// The cluster is the test's own: the shared test server must not restart
// under other tests (in CI every package shares one through
// TEST_DATABASE_URL).
func TestDatabaseRestart(t *testing.T) {
	if os.Getenv(dbtest.SkipEnv) == "1" {
		t.Skipf("%s=1: skipping a test that needs PostgreSQL", dbtest.SkipEnv)
	}
	if !localpg.Available() {
		t.Skipf("no PostgreSQL server binaries (initdb on PATH or %s): this test restarts a private cluster of its own, "+
			"never the shared test server (TEST_DATABASE_URL or a container), which other tests use meanwhile", localpg.BinDirEnv)
	}
	ctx := t.Context()
	c, err := localpg.Start(ctx, localpg.Config{Ephemeral: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("start a private cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop the private cluster: %v", err)
		}
	})
	if err := c.CreateDatabase(ctx, restartDBName); err != nil {
		t.Fatal(err)
	}
	dsn := c.DSN(restartDBName)
	if _, err := db.Migrate(ctx, dsn, db.Options{}); err != nil {
		t.Fatalf("migrate the private cluster: %v", err)
	}
	seedPool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	err = seed.Load(ctx, seedPool, faultReadings())
	seedPool.Close()
	if err != nil {
		t.Fatalf("seed the private cluster: %v", err)
	}
	// Registered after the cluster's Stop, so it runs before it; the cluster
	// leaves no goroutine behind either way.
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })

	// Errors only: the warnings of a thousand expected 503s would bury them.
	e := serveFaultAPI(t, faultPoolConfig(t, dsn), func(_ *Deps, o *Options) { o.Logger = testLoggerAt(t, slog.LevelError) })
	e.wantOK(t)

	// Traffic: workers cycle through the endpoints, a poller asks /readyz.
	paths := append([]string{faultLegacyPath}, faultPaths...)
	begin := time.Now()
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers []restartAnswer
		readyz  []restartAnswer
	)
	request := func(path string) restartAnswer {
		at := time.Since(begin)
		r, took, err := e.do(t, path)
		a := restartAnswer{path: path, at: at, took: took, err: err}
		if err == nil {
			a.status, a.err = r.StatusCode, restartVerdict(path, r, took)
		}
		return a
	}
	for w := range restartWorkers {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := request(paths[i%len(paths)])
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(restartReadyzEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			a := request("/readyz")
			mu.Lock()
			readyz = append(readyz, a)
			mu.Unlock()
		}
	})
	stopTraffic := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopTraffic) // should the test end early

	time.Sleep(500 * time.Millisecond) // traffic on a healthy database first
	restartAt := time.Since(begin)
	restartCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = c.Restart(restartCtx)
	cancel()
	backAt := time.Since(begin)
	if err != nil {
		stopTraffic()
		t.Fatalf("restart: %v", err)
	}
	// The API must recover by itself: nothing here touches its pool.
	recovery := e.waitReady(t, restartRecoverWithin)
	recoveredAt := time.Since(begin)
	time.Sleep(500 * time.Millisecond) // traffic after recovery, which must all succeed
	stopTraffic()

	t.Logf("pg_ctl restart took %v; the API answered 200 everywhere again %v after it returned (%v after the restart began)",
		(backAt - restartAt).Round(time.Millisecond), recovery.Round(time.Millisecond), (recoveredAt - restartAt).Round(time.Millisecond))
	summarize(t, "data and process_request", answers, restartAt)
	summarize(t, "/readyz", readyz, restartAt)

	all := append(slices.Clone(answers), readyz...)
	for _, a := range all {
		if a.err != nil {
			t.Errorf("GET %s sent %v into the traffic: %v", a.path, a.at.Round(time.Millisecond), a.err)
		}
	}
	for _, a := range answers {
		if a.at+a.took < restartAt && a.status != http.StatusOK {
			t.Errorf("GET %s before the restart: %d, want 200", a.path, a.status)
		}
	}
	// Once the API has recovered it stays so: a ready /readyz means it.
	for _, a := range all {
		if a.at > recoveredAt && a.status != http.StatusOK {
			t.Errorf("GET %s %v after recovery: %d, want 200", a.path, (a.at - recoveredAt).Round(time.Millisecond), a.status)
		}
	}
	if !slices.ContainsFunc(readyz, func(a restartAnswer) bool {
		return a.status == http.StatusServiceUnavailable && a.at+a.took >= restartAt && a.at <= recoveredAt
	}) {
		t.Errorf("/readyz never answered 503 while the database restarted (%d polls every %v)", len(readyz), restartReadyzEvery)
	}
	if n := countStatus(answers, http.StatusOK); n == len(answers) {
		t.Errorf("all %d data requests succeeded: the restart was not noticed, so the test tested nothing", n)
	}

	admin, err := pgxpool.New(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	wantNoLeakedConns(t, admin, e.pool, restartDBName)
}

// restartVerdict returns why an answer during the restart breaks the API's
// promise, or nil: it must be a 200 or a 503 in the endpoint's own error
// shape (a problem document; {"message"} on process_request), within
// faultAnswerWithin.
func restartVerdict(path string, r response, took time.Duration) error {
	if took > faultAnswerWithin {
		return fmt.Errorf("%d after %v, want an answer within %v", r.StatusCode, took.Round(time.Millisecond), faultAnswerWithin)
	}
	if path == faultLegacyPath {
		if r.StatusCode == http.StatusOK {
			return legacyOK(r)
		}
		return legacyUnavailable(r, took)
	}
	switch r.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusServiceUnavailable:
		return notProblem(r)
	}
	return fmt.Errorf("status %d, want 200 or 503; body %.500s", r.StatusCode, r.Body)
}

// summarize logs how many answers of each status came and, for failures,
// when (relative to the restart's beginning) and how long they took.
func summarize(t *testing.T, what string, answers []restartAnswer, restartAt time.Duration) {
	t.Helper()
	statuses := map[int]int{}
	var first, last, slowest time.Duration
	failed := 0
	for _, a := range answers {
		statuses[a.status]++
		if a.status == http.StatusOK {
			continue
		}
		at := a.at - restartAt
		if failed == 0 || at < first {
			first = at
		}
		last = max(last, at+a.took)
		slowest = max(slowest, a.took)
		failed++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d requests, by status %v", what, len(answers), statuses)
	if failed > 0 {
		fmt.Fprintf(&b, "; the failures spanned %v to %v after the restart began, the slowest took %v",
			first.Round(time.Millisecond), last.Round(time.Millisecond), slowest.Round(time.Millisecond))
	}
	t.Log(b.String())
}

func countStatus(answers []restartAnswer, status int) int {
	n := 0
	for _, a := range answers {
		if a.status == status {
			n++
		}
	}
	return n
}
