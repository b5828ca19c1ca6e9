package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sensorhub/sensorhub/db/dbtest"
)

// syncBuffer is a bytes.Buffer safe for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestListenDatasetVersion runs the listener as a member of
// sensorhub_reader, through a pool configured as the API's (read-only
// transactions by default): a committed bump reaches onVersion within 2 s, a
// rolled back one never does, and after its backend is terminated the
// listener reconnects and still delivers the next bump. Pings every 100ms
// check that waiting out a quiet spell leaves the connection usable.
func TestListenDatasetVersion(t *testing.T) {
	ping := listenPing
	listenPing = 100 * time.Millisecond
	t.Cleanup(func() { listenPing = ping })

	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		ctx := t.Context()
		pc, err := PoolConfig(d.RoleDSN(t, "sensorhub_reader"), 2, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s := New(pool)

		versions := make(chan int64, 100)
		var logs syncBuffer
		lctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- s.ListenDatasetVersion(lctx, func(v int64) { versions <- v }, slog.New(slog.NewTextHandler(&logs, nil)))
		}()
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ListenDatasetVersion returned %v after its context ended, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("ListenDatasetVersion did not return within 5s of its context ending")
			}
		}
		t.Cleanup(stop)

		// next waits for the next version passed to onVersion.
		next := func(what string, want int64) {
			t.Helper()
			select {
			case v := <-versions:
				if v != want {
					t.Fatalf("%s: onVersion(%d), want %d", what, v, want)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("%s: no onVersion within 2s; log:\n%s", what, logs.String())
			}
		}
		quiet := func(what string) {
			t.Helper()
			select {
			case v := <-versions:
				t.Fatalf("%s: onVersion(%d)", what, v)
			case <-time.After(500 * time.Millisecond):
			}
		}
		var v0 int64
		if err := d.Pool.QueryRow(ctx, datasetVersionSQL).Scan(&v0); err != nil {
			t.Fatal(err)
		}
		next("start", v0) // the version read once listening
		if up := testutil.ToFloat64(s.listenerUp); up != 1 {
			t.Errorf("listener_up %v while listening, want 1", up)
		}
		const bump = `UPDATE sensorhub.dataset_state SET version = version + 1, loaded_at = now()`

		tx, err := d.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, bump); err != nil {
			t.Fatal(err)
		}
		quiet("bump not yet committed")
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		quiet("rolled back bump")

		if _, err := d.Pool.Exec(ctx, bump); err != nil {
			t.Fatal(err)
		}
		next("committed bump", v0+1)

		// A forged notification only makes the listener read the version.
		if _, err := d.Pool.Exec(ctx, `SELECT pg_notify('sensorhub_dataset_version', '999999')`); err != nil {
			t.Fatal(err)
		}
		next("forged notification", v0+1)

		// Kill the listener's backend: it reconnects, reads the version
		// once more, and listens again.
		const pidSQL = `SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sensorhub-api-listener'`
		var pid int32
		if err := d.Pool.QueryRow(ctx, pidSQL).Scan(&pid); err != nil || pid == 0 {
			t.Fatalf("listener's backend not found in pg_stat_activity (pid %d): %v", pid, err)
		}
		var role string
		if err := d.Pool.QueryRow(ctx, `SELECT usename FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&role); err != nil || !strings.HasPrefix(role, "u_") {
			t.Errorf("listener connected as %q (%v), want the reader login", role, err)
		}
		var killed bool
		if err := d.Pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
			t.Fatalf("terminate the listener's backend %d: %v, %v", pid, killed, err)
		}
		next("reconnected", v0+1)
		var again int32
		if err := d.Pool.QueryRow(ctx, pidSQL).Scan(&again); err != nil || again == 0 || again == pid {
			t.Fatalf("listener's backend after reconnecting: pid %d (was %d), %v", again, pid, err)
		}
		if _, err := d.Pool.Exec(ctx, bump); err != nil {
			t.Fatal(err)
		}
		next("bump after reconnecting", v0+2)
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
			t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "listening for dataset version notifications again") {
			t.Errorf("reconnection not logged:\n%s", logs.String())
		}

		stop()
		if up := testutil.ToFloat64(s.listenerUp); up != 0 {
			t.Errorf("listener_up %v after the listener stopped, want 0", up)
		}
	})
}
