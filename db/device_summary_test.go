package db_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

// TestDeviceSummaryFollowsSeries: the triggers of migration 00015 keep
// sensorhub.device_summary equal to an aggregation of the series through
// loads, concurrent writers on one device, deletes and TRUNCATE, and refuse to move a
// series to another device.
func TestDeviceSummaryFollowsSeries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		ctx := t.Context()
		start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
		var rs []seed.Reading
		for dev := range 3 {
			for p := range 5 {
				for i := range 10 {
					rs = append(rs, seed.Reading{DeviceID: fmt.Sprintf("dev.%d", dev), Parameter: fmt.Sprintf("p.%d", p),
						Time: start.Add(time.Duration(dev*100+p*10+i) * time.Minute), Num: seed.Num(float64(i))})
				}
			}
		}
		if err := seed.Load(ctx, d.Pool, rs); err != nil {
			t.Fatal(err)
		}
		dbtest.CheckDeviceSummary(t, d.Pool)
		var devices int
		if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM sensorhub.devices WHERE series_count = 5 AND reading_count = 50`).Scan(&devices); err != nil || devices != 3 {
			t.Errorf("sensorhub.devices has %d devices of 5 series and 50 readings (%v), want 3", devices, err)
		}

		// Writers as ingest's: each transaction locks its series, adds to
		// their counts and widens their times; five at once on one device,
		// each on its own series, many times over.
		var ids []int32
		if err := d.Pool.QueryRow(ctx, `SELECT array_agg(series_id ORDER BY series_id) FROM sensorhub.series WHERE device_id = 'dev.0'`).Scan(&ids); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(ids))
		for k, id := range ids {
			wg.Go(func() {
				for round := range 20 {
					err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, `SELECT FROM sensorhub.series WHERE series_id = $1 FOR UPDATE`, id); err != nil {
							return err
						}
						at := start.Add(time.Duration(1000+k*100+round) * time.Hour)
						_, err := tx.Exec(ctx, `
							UPDATE sensorhub.series SET reading_count = reading_count + $2,
							       first_time = LEAST(first_time, $3), last_time = GREATEST(last_time, $4)
							WHERE series_id = $1`, id, round+1, start.Add(-time.Duration(k+round)*time.Hour), at)
						return err
					})
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent writer: %v", err)
		}
		dbtest.CheckDeviceSummary(t, d.Pool)

		// A new series, then deletes: of one series, then of a whole device.
		if _, err := d.Pool.Exec(ctx, `INSERT INTO sensorhub.series (device_id, parameter, value_type) VALUES ('dev.new', 'x', 'numeric'), ('dev.1', 'x', 'text')`); err != nil {
			t.Fatal(err)
		}
		dbtest.CheckDeviceSummary(t, d.Pool)
		for _, q := range []string{
			`DELETE FROM sensorhub.series WHERE device_id = 'dev.1' AND parameter = 'x'`,
			`DELETE FROM sensorhub.series WHERE device_id = 'dev.new'`,
		} {
			if _, err := d.Pool.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			dbtest.CheckDeviceSummary(t, d.Pool)
		}
		if _, err := d.Pool.Exec(ctx, `TRUNCATE sensorhub.series, sensorhub.readings`); err != nil {
			t.Fatal(err)
		}
		dbtest.CheckDeviceSummary(t, d.Pool)
		if err := seed.Load(ctx, d.Pool, rs[:10]); err != nil {
			t.Fatal(err)
		}
		dbtest.CheckDeviceSummary(t, d.Pool)
		if _, err := d.Pool.Exec(ctx, `UPDATE sensorhub.series SET device_id = 'dev.2' WHERE device_id = 'dev.0'`); err == nil ||
			!strings.Contains(err.Error(), "cannot move to another device") {
			t.Errorf("moving a series to another device: %v, want refused", err)
		}
	})
}
