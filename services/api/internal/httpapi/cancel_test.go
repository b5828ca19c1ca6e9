package httpapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

// TestClientDisconnectCancelsQuery holds a lock that the API's query must
// wait for, lets the client give up, and checks that the API's query stops
// waiting at once rather than at its statement timeout.
func TestClientDisconnectCancelsQuery(t *testing.T) {
	d := dbtest.New(t)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := seed.Load(t.Context(), d.Pool, []seed.Reading{{DeviceID: "d", Parameter: "p", Time: at, Num: seed.Num(1)}}); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, openPool(t, d.DSN), nil) // statement timeout 5 s

	// An exclusive lock on the catalog: every series lookup waits for it.
	lock, err := d.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(t.Context(), `LOCK TABLE sensorhub.series IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	const waitingSQL = `
		SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'sensorhub-api' AND state = 'active' AND wait_event_type = 'Lock'`
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/v1/series?device_id=d", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()

	// Wait until the API's query is blocked on the lock, then hang up.
	waitFor(t, 3*time.Second, func() bool {
		var n int
		return d.Pool.QueryRow(t.Context(), waitingSQL).Scan(&n) == nil && n == 1
	}, "the API's query to wait for the lock")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want canceled", err)
	}
	start := time.Now()
	waitFor(t, 2*time.Second, func() bool {
		var n int
		return d.Pool.QueryRow(t.Context(), waitingSQL).Scan(&n) == nil && n == 0
	}, "the API's query to stop after the client left")
	t.Logf("query cancelled %v after the client disconnected (lock still held)", time.Since(start).Round(time.Millisecond))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
