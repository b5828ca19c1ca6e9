// Package seed writes readings straight into a migrated database for tests of
// code that reads them (the API), independently of the ingest job: plain
// INSERTs, the catalog recomputed from what was stored, rollups refreshed the
// way each flavor does it. It favours obviousness over speed.
package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
)

// Reading is one reading to store; exactly one of Num and Text is set.
type Reading struct {
	DeviceID  string
	Parameter string
	// Time keeps its offset; the store records it as utc_offset_min.
	Time time.Time
	Num  *float64
	Text *string
}

// Num returns a pointer for Reading.Num.
func Num(v float64) *float64 { return &v }

// Text returns a pointer for Reading.Text.
func Text(s string) *string { return &s }

// Load stores readings (skipping any whose series and time exist), brings the
// series catalog and the rollups up to date and bumps the dataset version.
func Load(ctx context.Context, pool *pgxpool.Pool, readings []Reading) error {
	if len(readings) == 0 {
		return nil
	}
	flavor, err := db.ReadFlavor(ctx, pool)
	if err != nil {
		return err
	}
	lo, hi := readings[0].Time, readings[0].Time
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		ids := map[[2]string]int32{}
		for _, r := range readings {
			if r.Time.Before(lo) {
				lo = r.Time
			}
			if r.Time.After(hi) {
				hi = r.Time
			}
			k := [2]string{r.DeviceID, r.Parameter}
			if _, ok := ids[k]; ok {
				continue
			}
			typ := "numeric"
			if r.Text != nil {
				typ = "text"
			}
			var id int32
			err := tx.QueryRow(ctx, `
				INSERT INTO sensorhub.series (device_id, parameter, value_type) VALUES ($1, $2, $3)
				ON CONFLICT (device_id, parameter) DO UPDATE SET device_id = EXCLUDED.device_id
				RETURNING series_id`, r.DeviceID, r.Parameter, typ).Scan(&id)
			if err != nil {
				return fmt.Errorf("series %s/%s: %w", r.DeviceID, r.Parameter, err)
			}
			ids[k] = id
		}
		times := make([]time.Time, 0, len(readings))
		for _, r := range readings {
			times = append(times, r.Time)
		}
		if _, err := tx.Exec(ctx, `SELECT sensorhub.ensure_partitions($1)`, times); err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE seed_readings (LIKE sensorhub.readings) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"seed_readings"},
			[]string{"series_id", "time", "utc_offset_min", "value_num", "value_text"},
			pgx.CopyFromSlice(len(readings), func(i int) ([]any, error) {
				r := readings[i]
				_, offset := r.Time.Zone()
				return []any{ids[[2]string{r.DeviceID, r.Parameter}], r.Time, int16(offset / 60), r.Num, r.Text}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy readings: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sensorhub.readings SELECT * FROM seed_readings ON CONFLICT DO NOTHING`); err != nil {
			return fmt.Errorf("insert readings: %w", err)
		}
		_, err = tx.Exec(ctx, `
			UPDATE sensorhub.series s SET reading_count = c.n, first_time = c.lo, last_time = c.hi
			FROM (SELECT series_id, count(*) AS n, min(time) AS lo, max(time) AS hi
			      FROM sensorhub.readings GROUP BY series_id) c
			WHERE s.series_id = c.series_id`)
		if err != nil {
			return fmt.Errorf("series counts: %w", err)
		}
		if err := db.BumpDatasetVersion(ctx, tx); err != nil {
			return fmt.Errorf("dataset version: %w", err)
		}
		if flavor == db.FlavorPostgres {
			if _, err := tx.Exec(ctx, `SELECT sensorhub.refresh_rollups($1, $2)`, lo, hi); err != nil {
				return fmt.Errorf("refresh rollups: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if flavor == db.FlavorTimescaleDB {
		// Continuous aggregates refresh outside a transaction, finest first.
		for _, c := range []struct {
			name  string
			width time.Duration
		}{{"sensorhub.rollup_1m", time.Minute}, {"sensorhub.rollup_1h", time.Hour}, {"sensorhub.rollup_1d", 24 * time.Hour}} {
			from, to := lo.UTC().Truncate(c.width), hi.UTC().Truncate(c.width).Add(c.width)
			if err := db.RefreshContinuousAggregate(ctx, pool, c.name, from, to, time.Minute); err != nil {
				return fmt.Errorf("seed: refresh %s: %w", c.name, err)
			}
		}
	}
	return nil
}

// ReferenceReading is one record of the reference dataset as its file has it.
type ReferenceReading struct {
	Parameter string          `json:"parameter"`
	Timestamp string          `json:"timestamp"`
	Value     json.RawMessage `json:"value"`
	Type      string          `json:"type"`
}

// ReadReferenceFile decodes the reference dataset (an object keyed by device
// id) with encoding/json, independently of the ingest parsers.
func ReadReferenceFile(path string) ([]Reading, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read reference dataset: %w", err)
	}
	var doc map[string][]ReferenceReading
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	var out []Reading
	for device, rs := range doc {
		for i, r := range rs {
			t, err := time.Parse(time.RFC3339Nano, r.Timestamp)
			if err != nil {
				return nil, fmt.Errorf("%s: /%s/%d: %w", path, device, i, err)
			}
			rd := Reading{DeviceID: device, Parameter: r.Parameter, Time: t}
			switch r.Type {
			case "numeric":
				var v float64
				if err := json.Unmarshal(r.Value, &v); err != nil {
					return nil, fmt.Errorf("%s: /%s/%d/value: %w", path, device, i, err)
				}
				rd.Num = &v
			default:
				var s string
				if err := json.Unmarshal(r.Value, &s); err != nil {
					return nil, fmt.Errorf("%s: /%s/%d/value: %w", path, device, i, err)
				}
				rd.Text = &s
			}
			out = append(out, rd)
		}
	}
	return out, nil
}

// FindReferenceFile walks up from the working directory to the folder that
// holds shared/datasets/sensor-target/data.json (the checkout's sibling) and
// returns its path, or "" when there is none.
func FindReferenceFile() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "shared", "datasets", "sensor-target", "data.json")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
