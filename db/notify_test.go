package db_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
)

// TestDatasetVersionNotifies: a committed bump of the dataset version is
// announced on sensorhub_dataset_version (migration 00014) to a listening
// member of sensorhub_reader, with the new version as payload; a bump that
// rolls back, or is not yet committed, and an update that leaves the
// version alone announce nothing.
func TestDatasetVersionNotifies(t *testing.T) {
	const channel = "sensorhub_dataset_version"
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		ctx := t.Context()
		reader, err := pgx.Connect(ctx, d.RoleDSN(t, db.ReaderRole))
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close(context.Background())
		writer, err := pgx.Connect(ctx, d.RoleDSN(t, db.WriterRole))
		if err != nil {
			t.Fatal(err)
		}
		defer writer.Close(context.Background())
		if _, err := reader.Exec(ctx, "LISTEN "+channel); err != nil {
			t.Fatalf("reader: LISTEN: %v", err)
		}
		var v int64
		if err := writer.QueryRow(ctx, `SELECT version FROM sensorhub.dataset_state`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		// none waits a moment and fails on any notification.
		none := func(what string) {
			t.Helper()
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			n, err := reader.WaitForNotification(wctx)
			if err == nil {
				t.Errorf("%s: notified %q on %s", what, n.Payload, n.Channel)
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: wait: %v", what, err)
			}
		}
		want := func(what string, version int64) {
			t.Helper()
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			n, err := reader.WaitForNotification(wctx)
			if err != nil {
				t.Fatalf("%s: no notification: %v", what, err)
			}
			if n.Channel != channel || n.Payload != strconv.FormatInt(version, 10) {
				t.Errorf("%s: notified %q on %s, want %d on %s", what, n.Payload, n.Channel, version, channel)
			}
		}
		const bump = `UPDATE sensorhub.dataset_state SET version = version + 1, loaded_at = now()`

		tx, err := writer.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, bump); err != nil {
			t.Fatalf("writer: bump: %v", err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		none("rolled back bump")

		for _, stmt := range []string{
			`UPDATE sensorhub.dataset_state SET loaded_at = now()`,
			`UPDATE sensorhub.dataset_state SET version = version`,
		} {
			if _, err := writer.Exec(ctx, stmt); err != nil {
				t.Fatalf("writer: %s: %v", stmt, err)
			}
			none(stmt)
		}

		tx, err = writer.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, bump); err != nil {
			t.Fatalf("writer: bump: %v", err)
		}
		none("bump not yet committed")
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want("committed bump", v+1)

		if _, err := writer.Exec(ctx, bump); err != nil {
			t.Fatalf("writer: bump: %v", err)
		}
		want("second bump", v+2)
	})
}
