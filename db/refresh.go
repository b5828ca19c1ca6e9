package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer is a pool or one of its connections.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Continuous aggregates are refreshed in one pass (buckets_per_batch 0):
// TimescaleDB 2.28 otherwise splits a refresh into batches of 10 buckets and
// skips the bucket that starts exactly where the newest invalidation ends
// when that falls on a batch edge (timescale/timescaledb#10221, fixed only in
// 2.29, which has no PostgreSQL 15 build). The bucket would stay stale below
// the watermark, where real-time aggregation does not cover it. Migration
// 00011 sets the same option on the refresh policies.
const refreshCaggSQL = `CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz, options => '{"buckets_per_batch": 0}')`

// RefreshContinuousAggregate refreshes the continuous aggregate name over
// [lo, hi). TimescaleDB refuses a refresh while another refresh of the same
// aggregate runs (SQLSTATE 55P03, e.g. a policy's job) instead of waiting for
// it, so a refused refresh is tried again, with a growing delay, for up to
// wait. It must run outside a transaction block.
func RefreshContinuousAggregate(ctx context.Context, q Execer, name string, lo, hi time.Time, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := 50 * time.Millisecond
	for {
		_, err := q.Exec(ctx, refreshCaggSQL, name, lo, hi)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			return err
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("a concurrent refresh still ran after %v: %w", wait, err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, 2*time.Second)
	}
}
