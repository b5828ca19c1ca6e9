package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DatasetVersionChannel is the channel on which migration 00014's trigger
// announces every committed change of sensorhub.dataset_state.version.
const DatasetVersionChannel = "sensorhub_dataset_version"

// Listener timing: reconnects back off from listenRetryMin, doubling up to
// listenRetryMax, or wait listenStandbyRetry on a standby; an idle
// connection is pinged every listenPing, so that one the network dropped
// silently is noticed and replaced.
const (
	listenRetryMin     = 250 * time.Millisecond
	listenRetryMax     = 10 * time.Second
	listenStandbyRetry = time.Minute
	listenTimeout      = 5 * time.Second // bound on connecting, LISTEN, a read, a ping
)

// listenPing is a variable so that a test can make it short.
var listenPing = time.Minute

// ListenDatasetVersion tells onVersion the dataset's version whenever a load
// commits a new one, until ctx ends; then it returns nil.
//
// It holds a connection of its own (not one of the pool's, and with the
// pool's configuration, so it reads the same server), on which it LISTENs on
// DatasetVersionChannel and then reads the version once, so that no bump
// between two connections is missed. Each notification wakes it to read the
// version again: the payload is not trusted, since any role that may connect
// may NOTIFY any channel. onVersion runs on the listener's goroutine, one
// call at a time; the versions it gets never go back unless the database's
// did.
//
// When the connection fails it logs one warning per outage and reconnects,
// backing off from 250ms to 10s; the caller's polling covers the gap. A
// standby (read replica) refuses LISTEN and receives no notifications: that
// is logged once, at info, and tried again every minute, in case it was
// promoted. Behind PgBouncer in transaction mode LISTEN seems to work but
// nothing is delivered: do not call this there.
//
// While it listens the gauge sensorhub_dataset_version_listener_up is 1.
func (s *Store) ListenDatasetVersion(ctx context.Context, onVersion func(int64), logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := s.pool.Config().ConnConfig.Copy()
	name := cfg.RuntimeParams["application_name"]
	if name == "" {
		name = "sensorhub-api"
	}
	cfg.RuntimeParams["application_name"] = name + "-listener"
	defer s.listenerUp.Set(0)

	delay := listenRetryMin
	down, standby := false, false
	for {
		err := s.listenOnce(ctx, cfg, onVersion, func() {
			s.listenerUp.Set(1)
			delay = listenRetryMin
			switch {
			case down || standby:
				logger.Info("listening for dataset version notifications again", "channel", DatasetVersionChannel)
			default:
				logger.Info("listening for dataset version notifications", "channel", DatasetVersionChannel)
			}
			down, standby = false, false
		})
		s.listenerUp.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		if isStandby(err) {
			if !standby {
				logger.Info("the database is a standby, which takes no LISTEN: the dataset version is polled; trying again now and then in case it was promoted",
					"retry", listenStandbyRetry, "err", err)
				standby = true
			}
			delay = listenStandbyRetry
		} else {
			standby = false
			if !down {
				logger.Warn("dataset version listener lost the database; reconnecting, and polling the version meanwhile", "err", err)
				down = true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		if !standby {
			delay = min(2*delay, listenRetryMax)
		}
	}
}

// listenOnce connects, listens and passes on versions until the connection
// fails or ctx ends; up is called once it listens and has read the version.
func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, onVersion func(int64), up func()) error {
	cctx, cancel := context.WithTimeout(ctx, listenTimeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if err := withTimeout(ctx, func(ctx context.Context) error {
		_, err := conn.Exec(ctx, "LISTEN "+DatasetVersionChannel)
		return err
	}); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	read := func() error {
		return withTimeout(ctx, func(ctx context.Context) error {
			var v int64
			if err := conn.QueryRow(ctx, datasetVersionSQL).Scan(&v); err != nil {
				return fmt.Errorf("read dataset version: %w", err)
			}
			onVersion(v)
			return nil
		})
	}
	// Read after LISTEN: a bump committed in between is then either seen
	// here or notified.
	if err := read(); err != nil {
		return err
	}
	up()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			if err := read(); err != nil {
				return err
			}
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for a while: make sure the connection still answers.
			if err := withTimeout(ctx, conn.Ping); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// withTimeout runs fn with ctx bounded by listenTimeout.
func withTimeout(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	return fn(ctx)
}

// isStandby reports whether err is a hot standby refusing LISTEN ("cannot
// execute LISTEN during recovery").
func isStandby(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "25006" // read_only_sql_transaction
}
