package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// TestETagFollowsNotifiedVersion wires store.ListenDatasetVersion to
// Server.SetDatasetVersion as main does, as a member of sensorhub_reader,
// with a DatasetVersionTTL of an hour, so that only the listener can move
// the version behind ETags: a committed load shows in the ETag (and the
// answer) within 2 s.
func TestETagFollowsNotifiedVersion(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	t0 := time.Date(2024, 3, 7, 10, 0, 0, 0, time.UTC)
	if err := seed.Load(ctx, d.Pool, []seed.Reading{{DeviceID: "device.one", Parameter: "p.x", Time: t0, Num: seed.Num(1)}}); err != nil {
		t.Fatal(err)
	}
	var st *store.Store
	ts := newTestServer(t, openPool(t, d.RoleDSN(t, "sensorhub_reader")), func(deps *Deps, o *Options) {
		o.DatasetVersionTTL = time.Hour
		st = deps.Store
	})
	version := func() int64 {
		t.Helper()
		var v int64
		if err := d.Pool.QueryRow(ctx, `SELECT version FROM sensorhub.dataset_state`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// etagOf is the version the ETag of /v1/devices carries, and the body.
	etagOf := func() (int64, string) {
		t.Helper()
		r := ts.getJSON(t, "/v1/devices", http.StatusOK, nil)
		tag := r.Header.Get("ETag")
		v, _, ok := strings.Cut(strings.TrimPrefix(tag, `W/"`), "-")
		n, err := strconv.ParseInt(v, 10, 64)
		if !strings.HasPrefix(tag, `W/"`) || !ok || err != nil {
			t.Fatalf("ETag %q is not W/\"<version>-...\"", tag)
		}
		return n, string(r.Body)
	}
	// waitFor polls until the ETag carries want, for up to 2 s.
	waitFor := func(what string, want int64) string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			got, body := etagOf()
			if got == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: ETag still carries version %d 2s later, want %d", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	bump := func() {
		t.Helper()
		if _, err := d.Pool.Exec(ctx, `UPDATE sensorhub.dataset_state SET version = version + 1, loaded_at = now()`); err != nil {
			t.Fatal(err)
		}
	}

	v0 := version()
	if got, _ := etagOf(); got != v0 {
		t.Fatalf("first ETag carries version %d, want %d", got, v0)
	}
	// Without the listener the hour-long TTL holds the version.
	bump()
	time.Sleep(200 * time.Millisecond)
	if got, _ := etagOf(); got != v0 {
		t.Fatalf("without the listener the ETag moved to version %d within the TTL", got)
	}

	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- st.ListenDatasetVersion(lctx, ts.SetDatasetVersion, testLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenDatasetVersion: %v", err)
		}
	})
	// Once listening it reads the version: the bump it missed shows.
	waitFor("listener started", v0+1)
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(string(ts.get(t, "/metrics").Body), "\nsensorhub_dataset_version_listener_up 1\n") {
		if time.Now().After(deadline) {
			t.Fatal("sensorhub_dataset_version_listener_up is not 1 while listening")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A load: its commit moves the ETag, and the answer has its data.
	old := ts.get(t, "/v1/devices").Header.Get("ETag")
	if err := seed.Load(ctx, d.Pool, []seed.Reading{{DeviceID: "device.two", Parameter: "p.x", Time: t0, Num: seed.Num(2)}}); err != nil {
		t.Fatal(err)
	}
	v := version()
	if v <= v0+1 {
		t.Fatalf("the load left the version at %d", v)
	}
	if body := waitFor("load committed", v); !strings.Contains(body, "device.two") {
		t.Errorf("answer under the new version lacks the loaded device: %s", body)
	}
	if r := ts.get(t, "/v1/devices", "If-None-Match: "+old); r.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with the ETag from before the load: %d, want 200", r.StatusCode)
	}
	bump()
	waitFor("bump committed", v+1)
}
