// Package dbretry retries idempotent database work through transient
// errors (a lost connection, a restart, a failover, a deadlock) with a
// bounded, doubling delay; copyload, the series catalog and the rollup
// refresh all use it.
package dbretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Policy bounds the retries of idempotent database work after a transient
// error.
type Policy struct {
	Attempts   int           // tries in all, the first included
	FirstDelay time.Duration // doubled after each failure
	MaxDelay   time.Duration
}

// Default rides out a database restart or failover of about half a minute.
var Default = Policy{Attempts: 8, FirstDelay: 200 * time.Millisecond, MaxDelay: 8 * time.Second}

// Transient reports whether err may go away when the same work is tried
// again: lost connections, a server shutting down or not yet accepting
// connections, serialization failures and deadlocks. Retrying is safe for
// work that is one transaction and idempotent, such as a batch, whose
// re-copied readings are only skipped.
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

// Idempotent runs op, idempotent database work (a batch, a series
// upsert, creating partitions, the rollup refresh), until it succeeds, fails
// for good, or p's attempts are spent, doubling the delay between tries: a
// database outage must not fail a load whichever statement it meets.
func Idempotent(ctx context.Context, p Policy, logger *slog.Logger, what string, op func() error) error {
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
