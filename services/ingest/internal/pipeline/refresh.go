package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

// RefreshAll materializes every pending rollup range, retrying transient
// failures, and reports how long it took and how many ranges it refreshed.
func RefreshAll(ctx context.Context, pool *pgxpool.Pool, workers int, logger *slog.Logger) (time.Duration, int, error) {
	start := time.Now()
	var ranges []rollup.Range
	err := dbretry.Idempotent(ctx, dbretry.Default, logger, "refresh rollups", func() (err error) {
		ranges, err = rollup.Refresh(ctx, pool, workers)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	took := time.Since(start).Round(time.Millisecond)
	logger.Info("rollups refreshed", "ranges", len(ranges), "duration", took)
	return took, len(ranges), nil
}

// Refresher materializes the ranges pushed readings leave pending, at most
// once per interval: pushes arrive continuously, and refreshing after each
// would recompute the same recent buckets many times a second. Until it
// runs the API answers the pending ranges from the raw readings, so answers
// are exact at once; the refresh only brings the rollups' speed back.
type Refresher struct {
	pool     *pgxpool.Pool
	interval time.Duration
	logger   *slog.Logger
	kick     chan struct{}
}

// NewRefresher returns a Refresher; Run must run for it to act.
func NewRefresher(pool *pgxpool.Pool, interval time.Duration, logger *slog.Logger) *Refresher {
	return &Refresher{pool: pool, interval: interval, logger: logger, kick: make(chan struct{}, 1)}
}

// Changed tells the refresher that a commit left a range pending. It never
// blocks.
func (r *Refresher) Changed() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run refreshes after changes, no more often than the interval, until ctx
// ends. A failed refresh is logged and tried again at the next change: the
// ranges stay pending and the answers exact meanwhile.
func (r *Refresher) Run(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-r.kick:
		case <-ctx.Done():
			return
		}
		if d := r.interval - time.Since(last); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		last = time.Now()
		if _, err := rollup.Refresh(ctx, r.pool, 1); err != nil && ctx.Err() == nil {
			r.logger.Warn("refresh of pushed ranges failed; they stay pending and are answered from the raw readings", "err", err)
			r.Changed()
		}
	}
}
