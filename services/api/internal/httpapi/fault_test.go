package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// These tests put toxiproxy between the API's pool and a real PostgreSQL and
// check the API's promises during database faults: data requests fail fast
// with a 5xx problem (never a 500, never a hang), /readyz fails while the
// database is away and /healthz does not, and the pool recovers on its own.

const (
	faultRequestTimeout   = time.Second
	faultStatementTimeout = 500 * time.Millisecond
	// faultAnswerWithin is how long a request may take during a fault: the
	// request timeout plus room for a loaded CI machine.
	faultAnswerWithin = 1500 * time.Millisecond
)

// faultPaths are data requests that each reach the database.
var faultPaths = []string{
	"/v1/devices",
	"/v1/series?device_id=d",
	"/v1/latest?device_id=d",
	"/v1/readings?device_id=d&parameter=p",
	"/v1/aggregates?device_id=d&parameter=p&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z",
}

// faultLegacyPath is the original service's endpoint on the seeded series.
// Its failures keep that service's shape, {"message": ...}, not problems.
const faultLegacyPath = "/api/v1/core/process_request?device_id=d&parameter=p"

// faultSeeded is how many readings the fault tests seed into series d/p.
const faultSeeded = 2

// faultAppName is the application_name of the API's pool in these tests,
// so that pg_stat_activity tells its backends from the harness's.
const faultAppName = "sensorhub-api-faulttest"

// faultEnv is the API serving through a toxiproxy proxy to a test database.
type faultEnv struct {
	proxy  *toxiproxy.Proxy
	ts     *testServer
	client *http.Client
	pool   *pgxpool.Pool // the API's
	db     *dbtest.DB
}

// newFaultEnv seeds a fresh database, starts a proxy in front of it and the
// API on a pool whose connections go through the proxy. Everything it starts
// is closed when t ends, after which no goroutine of the test may remain.
func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	d := dbtest.New(t)
	if err := seed.Load(t.Context(), d.Pool, faultReadings()); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the server, pool and proxy
	// below are closed. The database harness's own goroutines predate it.
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })

	pc := faultPoolConfig(t, d.DSN)
	upstream := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port)))
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, "pg", "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	host, port, err := net.SplitHostPort(proxy.Listen)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.Host, pc.ConnConfig.Port = host, uint16(p)
	e := serveFaultAPI(t, pc, nil)
	e.proxy, e.db = proxy, d
	return e
}

// faultReadings are what the fault tests seed: faultSeeded readings of
// series d/p, valued 0, 1, ... a minute apart.
func faultReadings() []seed.Reading {
	at := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	readings := make([]seed.Reading, faultSeeded)
	for i := range readings {
		readings[i] = seed.Reading{DeviceID: "d", Parameter: "p", Time: at.Add(time.Duration(i) * time.Minute), Num: seed.Num(float64(i))}
	}
	return readings
}

// faultPoolConfig is the API's pool configuration for dsn with the fault
// tests' short timeouts, and faultAppName so its sessions can be counted.
func faultPoolConfig(t *testing.T, dsn string) *pgxpool.Config {
	t.Helper()
	pc, err := store.PoolConfig(dsn, 4, faultStatementTimeout)
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.RuntimeParams["application_name"] = faultAppName
	pc.ConnConfig.ConnectTimeout = faultRequestTimeout
	return pc
}

// serveFaultAPI opens the API's pool with pc and serves the API on it with
// the fault tests' request timeout, then change (when not nil); both are
// closed when t ends.
func serveFaultAPI(t *testing.T, pc *pgxpool.Config, change func(*Deps, *Options)) *faultEnv {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ts := newTestServer(t, pool, func(d *Deps, o *Options) {
		o.RequestTimeout = faultRequestTimeout
		// The fault tests ask the same questions again and again to see the
		// database's failures; the response cache would answer them without
		// it (respcache_test.go covers the cache during an outage).
		o.ResponseCacheBytes = -1
		if change != nil {
			change(d, o)
		}
	})
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections) // runs before newTestServer's hs.Close
	return &faultEnv{ts: ts, client: client, pool: pool}
}

// get requests path on the API with the env's own client (whose idle
// connections are closed at the end, for goleak), validating the response
// against the OpenAPI document, and reports how long the answer took.
func (e *faultEnv) get(t *testing.T, path string) (response, time.Duration) {
	t.Helper()
	r, took, err := e.do(t, path)
	if err != nil {
		t.Fatal(err)
	}
	return r, took
}

// do is get for any goroutine: it returns the failure of the exchange
// rather than ending the test (validateResponse reports a response that
// breaks the OpenAPI document with t.Errorf, which any goroutine may call).
func (e *faultEnv) do(t *testing.T, path string) (response, time.Duration, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.ts.url+path, nil)
	if err != nil {
		return response{}, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return response{}, time.Since(start), fmt.Errorf("GET %s: %w (after %v)", path, err, time.Since(start))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return response{}, took, fmt.Errorf("GET %s: read body: %w (after %v)", path, err, took)
	}
	r := response{Response: resp, Body: body}
	validateResponse(t, req, r)
	return r, took, nil
}

// wantFastProblem requests path and checks the answer is a 5xx problem
// (never 500) that came within faultAnswerWithin; it returns the status.
func (e *faultEnv) wantFastProblem(t *testing.T, path string) int {
	t.Helper()
	r, took := e.get(t, path)
	if took > faultAnswerWithin {
		t.Errorf("GET %s: answered after %v, want within %v", path, took.Round(time.Millisecond), faultAnswerWithin)
	}
	switch r.StatusCode {
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		t.Errorf("GET %s: status %d after %v, want 503 or 504; body %.500s", path, r.StatusCode, took.Round(time.Millisecond), r.Body)
		return r.StatusCode
	}
	if err := notProblem(r); err != nil {
		t.Errorf("GET %s: %v", path, err)
	}
	return r.StatusCode
}

// notProblem returns why r is not a problem document of its status, or nil.
func notProblem(r response) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("%d with Content-Type %q, want application/problem+json", r.StatusCode, ct)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != r.StatusCode || p.Title == "" {
		return fmt.Errorf("%d is not a problem document of that status (%v): %.500s", r.StatusCode, err, r.Body)
	}
	return nil
}

// wantFastLegacy requests the original service's endpoint and checks it
// fails as that service would: 503 within faultAnswerWithin, application/json
// and a body that is only a non-empty message (never a 500, never a problem).
func (e *faultEnv) wantFastLegacy(t *testing.T) {
	t.Helper()
	r, took := e.get(t, faultLegacyPath)
	if err := legacyUnavailable(r, took); err != nil {
		t.Error(err)
	}
}

// legacyUnavailable returns why r, answered after took, is not a fast 503
// of process_request in its own {"message": ...} shape, or nil.
func legacyUnavailable(r response, took time.Duration) error {
	if r.StatusCode != http.StatusServiceUnavailable {
		return fmt.Errorf("process_request: status %d after %v, want 503; body %.500s", r.StatusCode, took.Round(time.Millisecond), r.Body)
	}
	if took > faultAnswerWithin {
		return fmt.Errorf("process_request: 503 after %v, want within %v", took.Round(time.Millisecond), faultAnswerWithin)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("process_request: 503 with Content-Type %q, want application/json", ct)
	}
	if ra := r.Header.Get("Retry-After"); ra != "1" {
		return fmt.Errorf("process_request: 503 with Retry-After %q, want 1 like the other endpoints' 503s", ra)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return fmt.Errorf("process_request: 503 body is not JSON (%v): %.500s", err, r.Body)
	}
	if msg, ok := body["message"].(string); !ok || msg == "" || len(body) != 1 {
		return fmt.Errorf("process_request: 503 body %.500s, want only a non-empty message", r.Body)
	}
	return nil
}

// legacyOK returns why r is not process_request's 200 with the seeded
// readings of d/p, or nil.
func legacyOK(r response) error {
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("process_request: status %d, want 200; body %.500s", r.StatusCode, r.Body)
	}
	var g struct {
		Message   string `json:"message"`
		GraphData []struct {
			DeviceID  string  `json:"device_id"`
			Parameter string  `json:"parameter"`
			Value     float64 `json:"value"`
		} `json:"graph_data"`
	}
	if err := json.Unmarshal(r.Body, &g); err != nil {
		return fmt.Errorf("process_request: decode 200 body: %v; body %.500s", err, r.Body)
	}
	if len(g.GraphData) != faultSeeded || g.Message == "" {
		return fmt.Errorf("process_request: %d readings and message %q, want the %d seeded ones", len(g.GraphData), g.Message, faultSeeded)
	}
	for i, it := range g.GraphData {
		if it.DeviceID != "d" || it.Parameter != "p" || it.Value != float64(i) {
			return fmt.Errorf("process_request: reading %d is %+v, want d/p with value %d as seeded", i, it, i)
		}
	}
	return nil
}

// wantOK checks every data request, process_request and /readyz succeed.
func (e *faultEnv) wantOK(t *testing.T) {
	t.Helper()
	for _, path := range append([]string{"/readyz", "/healthz"}, faultPaths...) {
		if r, _ := e.get(t, path); r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, want 200; body %.500s", path, r.StatusCode, r.Body)
		}
	}
	if r, _ := e.get(t, faultLegacyPath); legacyOK(r) != nil {
		t.Fatal(legacyOK(r))
	}
}

// waitReady polls until /readyz, every data request and process_request
// succeed again.
func (e *faultEnv) waitReady(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, within, func() bool {
		for _, path := range append([]string{"/readyz", faultLegacyPath}, faultPaths...) {
			if r, _ := e.get(t, path); r.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	}, "/readyz, every data request and process_request to succeed again")
	return time.Since(start)
}

// TestDatabaseDown stops the proxy, which closes the pool's connections and
// refuses new ones: data requests must answer 503 problems within the
// request timeout, /readyz 503 and /healthz 200. Once the proxy is back the
// pool must recover on its own.
func TestDatabaseDown(t *testing.T) {
	e := newFaultEnv(t)
	e.wantOK(t) // the pool holds connections that the outage will cut

	e.proxy.Stop()
	for round := range 2 { // the second round meets no stale connection
		for _, path := range faultPaths {
			if status := e.wantFastProblem(t, path); status != http.StatusServiceUnavailable {
				t.Errorf("round %d: GET %s during the outage: %d, want 503", round, path, status)
			}
		}
		e.wantFastLegacy(t)
		r, took := e.get(t, "/readyz")
		if r.StatusCode != http.StatusServiceUnavailable || took > faultAnswerWithin {
			t.Errorf("round %d: /readyz during the outage: %d after %v, want 503 within %v", round, r.StatusCode, took, faultAnswerWithin)
		}
		if r, _ := e.get(t, "/healthz"); r.StatusCode != http.StatusOK {
			t.Errorf("round %d: /healthz during the outage: %d, want 200", round, r.StatusCode)
		}
	}

	if err := e.proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("recovered %v after the database came back", e.waitReady(t, 10*time.Second).Round(time.Millisecond))
	e.wantOK(t)
	e.wantNoLeakedConns(t)
}

// TestDatabaseSlow delays every answer of the database beyond the request
// timeout: requests must end in a 5xx problem within the timeout, not hang;
// once the delay is gone they succeed again.
func TestDatabaseSlow(t *testing.T) {
	e := newFaultEnv(t)
	e.wantOK(t)

	latency := 2 * faultRequestTimeout
	toxic := `{"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":` +
		strconv.FormatInt(latency.Milliseconds(), 10) + `}}`
	if _, err := e.proxy.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		t.Fatal(err)
	}
	statuses := map[int]int{}
	for _, path := range faultPaths {
		statuses[e.wantFastProblem(t, path)]++
	}
	e.wantFastLegacy(t)
	r, took := e.get(t, "/readyz")
	if r.StatusCode != http.StatusServiceUnavailable || took > faultAnswerWithin {
		t.Errorf("/readyz with %v latency: %d after %v, want 503 within %v", latency, r.StatusCode, took, faultAnswerWithin)
	}
	t.Logf("with %v latency and a %v request timeout, data requests answered (status: count) %v", latency, faultRequestTimeout, statuses)

	if err := e.proxy.Toxics.RemoveToxic(t.Context(), "lat"); err != nil {
		t.Fatal(err)
	}
	t.Logf("recovered %v after the latency was removed", e.waitReady(t, 10*time.Second).Round(time.Millisecond))
	e.wantOK(t)
	e.wantNoLeakedConns(t)
}

// TestConnectionsReset makes the proxy reset every connection as soon as
// data flows: requests must answer 503 problems at once, and succeed again
// once the toxic is gone.
func TestConnectionsReset(t *testing.T) {
	e := newFaultEnv(t)
	e.wantOK(t)

	if _, err := e.proxy.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"reset","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`)); err != nil {
		t.Fatal(err)
	}
	for _, path := range faultPaths {
		if status := e.wantFastProblem(t, path); status != http.StatusServiceUnavailable {
			t.Errorf("GET %s with connections reset: %d, want 503", path, status)
		}
	}
	e.wantFastLegacy(t)
	if r, _ := e.get(t, "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with connections reset: %d, want 503", r.StatusCode)
	}
	if err := e.proxy.Toxics.RemoveToxic(t.Context(), "reset"); err != nil {
		t.Fatal(err)
	}
	t.Logf("recovered %v after the resets stopped", e.waitReady(t, 10*time.Second).Round(time.Millisecond))
	e.wantOK(t)
	e.wantNoLeakedConns(t)
}

// connsSettleWithin bounds how long the server may take to notice that a
// connection is gone: a broken connection's backend ends once its socket
// closes, and a closed pool's at its Terminate message.
const connsSettleWithin = 5 * time.Second

// apiBackends counts the server's sessions of the API's pool: those in
// dbName under faultAppName.
func apiBackends(ctx context.Context, admin *pgxpool.Pool, dbName string) (int, error) {
	const sql = `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`
	var n int
	if err := admin.QueryRow(ctx, sql, dbName, faultAppName).Scan(&n); err != nil {
		return 0, fmt.Errorf("count backends of %s in %s: %w", faultAppName, dbName, err)
	}
	return n, nil
}

// wantNoLeakedConns checks, once the API has recovered, that the server
// holds no more sessions for the API's pool than the pool may open (none of
// the connections the fault broke lingers), then closes the pool and checks
// that every one of them ends. admin is a superuser pool on the same server.
func wantNoLeakedConns(t *testing.T, admin, pool *pgxpool.Pool, dbName string) {
	t.Helper()
	ctx := t.Context()
	limit := int(pool.Config().MaxConns)
	first, n := -1, 0
	start := time.Now()
	for {
		var err error
		if n, err = apiBackends(ctx, admin, dbName); err != nil {
			t.Fatal(err)
		}
		if first < 0 {
			first = n
		}
		if n <= limit {
			break
		}
		if time.Since(start) > connsSettleWithin {
			t.Fatalf("after recovery the server still holds %d sessions of the API's pool after %v, more than its %d MaxConns: connections leaked",
				n, connsSettleWithin, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("after recovery: %d server sessions of the API's pool (first count %d, settled in %v; pool holds %d, MaxConns %d)",
		n, first, time.Since(start).Round(time.Millisecond), pool.Stat().TotalConns(), limit)

	pool.Close()
	start = time.Now()
	for {
		var err error
		if n, err = apiBackends(ctx, admin, dbName); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Since(start) > connsSettleWithin {
			t.Fatalf("%v after the API's pool closed the server still holds %d of its sessions", connsSettleWithin, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("pool closed: its server sessions were gone after %v", time.Since(start).Round(time.Millisecond))
}

// wantNoLeakedConns is wantNoLeakedConns for the env's pool and database.
func (e *faultEnv) wantNoLeakedConns(t *testing.T) {
	t.Helper()
	wantNoLeakedConns(t, e.db.Server.Admin(), e.pool, e.db.Name)
}
