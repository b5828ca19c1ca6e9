package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

// FinishOptions say how a run treats its rollups.
type FinishOptions struct {
	// Wait refreshes the stale rollups before returning; otherwise they are
	// left pending for the background (answers stay exact: the API serves a
	// pending range from the raw readings).
	Wait bool
	// Workers recompute a range side by side on plain PostgreSQL.
	Workers int
	// Changed says the run inserted or updated readings.
	Changed bool
}

// Finish refreshes the rollups of what a run wrote (Wait) or merges the
// pending ranges for the background, then moves the dataset version if
// anything changed. It returns the summary's rollup line.
func Finish(ctx context.Context, pool *pgxpool.Pool, o FinishOptions, logger *slog.Logger) (string, error) {
	changed := o.Changed
	var note string
	if o.Wait {
		took, n, err := RefreshAll(ctx, pool, o.Workers, logger)
		if err != nil {
			return "", err
		}
		note = fmt.Sprintf("rollups: %d pending ranges refreshed in %s", n, took)
		changed = changed || n > 0
	} else {
		// Coalesce leaves one row per island of ranges, as Pending would
		// merge them: its count is the summary's.
		var pending int64
		err := dbretry.Idempotent(ctx, dbretry.Default, logger, "merge pending rollup ranges", func() (err error) {
			pending, err = rollup.Coalesce(ctx, pool)
			return err
		})
		if err != nil {
			return "", err
		}
		by, err := rollup.Materializer(ctx, pool)
		if err != nil {
			return "", err
		}
		logger.Info("rollups deferred", "pending_ranges", pending, "materialized_by", by)
		note = fmt.Sprintf("rollups: %d pending ranges left to %s; until then the API answers them from the raw readings "+
			"(caught up when sensorhub_rollup_pending_ranges is 0)", pending, by)
	}
	if changed {
		if err := db.BumpDatasetVersion(ctx, pool); err != nil {
			return note, err
		}
	}
	return note, nil
}
