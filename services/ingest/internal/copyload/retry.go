package copyload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RetryPolicy bounds the retries of a batch after a transient error.
type RetryPolicy struct {
	Attempts   int           // tries in all, the first included
	FirstDelay time.Duration // doubled after each failure
	MaxDelay   time.Duration
}

// DefaultRetry rides out a database restart or failover of about half a minute.
var DefaultRetry = RetryPolicy{Attempts: 8, FirstDelay: 200 * time.Millisecond, MaxDelay: 8 * time.Second}

// Transient reports whether err may go away when the same batch is tried
// again: lost connections, a server shutting down or not yet accepting
// connections, serialization failures and deadlocks. Retrying is safe because
// a batch is one transaction and re-copying stored readings only skips them.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", // serialization failure, deadlock
			"57P01", "57P02", "57P03", // admin/crash shutdown, cannot connect now
			"53300": // too many connections
			return true
		}
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08" // connection exceptions
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// writer owns one pooled connection at a time; it drops it after a failure,
// since a connection that saw a network error cannot be trusted again.
type writer struct {
	pool      *pgxpool.Pool
	conn      *pgxpool.Conn
	mode      Mode
	stageDone bool
	retry     RetryPolicy
	logger    *slog.Logger
	buf       []byte // COPY data, reused from batch to batch
}

func (w *writer) acquire(ctx context.Context) error {
	if w.conn != nil {
		return nil
	}
	c, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	w.conn, w.stageDone = c, false
	return nil
}

func (w *writer) release() {
	if w.conn != nil {
		w.conn.Release()
		w.conn = nil
	}
}

// discard closes the connection instead of returning it to the pool.
func (w *writer) discard() {
	if w.conn != nil {
		_ = w.conn.Hijack().Close(context.Background())
		w.conn = nil
	}
}

// writeWithRetry writes b under the retry policy. Re-copying a batch whose
// commit answer was lost only skips its readings, so batches retry like any
// idempotent work; a connection that saw a transient error is dropped.
func (w *writer) writeWithRetry(ctx context.Context, b *batch) (batchOutcome, error) {
	var out batchOutcome
	err := RetryIdempotent(ctx, w.retry, w.logger.With("at", b.first.String()), "the batch", func() error {
		err := w.acquire(ctx)
		if err == nil {
			out, err = w.write(ctx, b)
		}
		if Transient(err) {
			w.discard()
		}
		return err
	})
	return out, err
}

// RetryIdempotent runs op, idempotent database work (a batch, a series
// upsert, creating partitions, the rollup refresh), until it succeeds, fails
// for good, or p's attempts are spent, doubling the delay between tries: a
// database outage must not fail a load whichever statement it meets.
func RetryIdempotent(ctx context.Context, p RetryPolicy, logger *slog.Logger, what string, op func() error) error {
	delay := p.FirstDelay
	var err error
	for attempt := 1; ; attempt++ {
		if err = op(); err == nil || !Transient(err) {
			return err
		}
		if attempt >= max(1, p.Attempts) {
			return fmt.Errorf("gave up after %d attempts: %w", max(1, p.Attempts), err)
		}
		logger.Warn("transient database error; retrying "+what, "op", what, "attempt", attempt, "delay", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, p.MaxDelay)
	}
}
