package db

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
)

// TimescaleDB's job scheduler must not run while migrations drop and recreate
// the continuous aggregates and their policy jobs: TimescaleDB 2.28.3 has
// been seen to crash a policy worker with a segmentation fault when jobs are
// deleted as it starts them ("scheduler detected that job 1002 was deleted
// when starting job", then signal 11), and PostgreSQL then restarts every
// backend of the cluster. So migrate stops the database's background workers
// from before the first pending migration until the last one has run, as
// timescaledb_pre_restore does around a restore.
//
// Stopping them takes a superuser; other roles (managed services) migrate
// with the scheduler running, as before. A migrate killed in between leaves
// the workers stopped until the next migrate run, which starts them again,
// or the next server restart.
const (
	timescaleInstalledSQL = `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'timescaledb')`
	createExtensionSQL    = `CREATE EXTENSION IF NOT EXISTS timescaledb`
	superuserSQL          = `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`
	stopWorkersSQL        = `SELECT _timescaledb_functions.stop_background_workers()`
	startWorkersSQL       = `SELECT _timescaledb_functions.start_background_workers()`
)

// jobPause stops and restarts the background workers of one database.
type jobPause struct {
	conn    *pgx.Conn
	logger  *slog.Logger
	enabled bool // TimescaleDB flavor and a superuser session
	stopped bool
}

func newJobPause(ctx context.Context, conn *pgx.Conn, flavor Flavor, logger *slog.Logger) (*jobPause, error) {
	j := &jobPause{conn: conn, logger: logger}
	if flavor != FlavorTimescaleDB {
		return j, nil
	}
	if err := conn.QueryRow(ctx, superuserSQL).Scan(&j.enabled); err != nil {
		return nil, fmt.Errorf("migrate: read role attributes: %w", err)
	}
	if !j.enabled {
		logger.Info("not a superuser: TimescaleDB's jobs keep running during the migrations")
	}
	return j, nil
}

// stop stops the workers before the pending migrations. On a new database
// it creates the extension first (as the first TimescaleDB migration would,
// IF NOT EXISTS), so that no job of the schema exists yet when the
// scheduler is stopped.
func (j *jobPause) stop(ctx context.Context) error {
	if !j.enabled {
		return nil
	}
	if _, err := j.conn.Exec(ctx, createExtensionSQL); err != nil {
		return fmt.Errorf("migrate: create extension timescaledb: %w", err)
	}
	if _, err := j.conn.Exec(ctx, stopWorkersSQL); err != nil {
		return fmt.Errorf("migrate: stop TimescaleDB's background workers: %w", err)
	}
	j.stopped = true
	j.logger.Info("TimescaleDB's background workers stopped for the migrations")
	return nil
}

// resume starts the workers again. It runs after every migrate of a
// superuser on TimescaleDB, also when nothing was pending, so that a migrate
// killed while they were stopped is repaired by the next one.
func (j *jobPause) resume(ctx context.Context) error {
	if !j.enabled {
		return nil
	}
	var installed bool
	if err := j.conn.QueryRow(ctx, timescaleInstalledSQL).Scan(&installed); err != nil {
		return fmt.Errorf("migrate: detect timescaledb: %w", err)
	}
	if !installed {
		return nil
	}
	if _, err := j.conn.Exec(ctx, startWorkersSQL); err != nil {
		return fmt.Errorf("migrate: start TimescaleDB's background workers: %w", err)
	}
	if j.stopped {
		j.logger.Info("TimescaleDB's background workers started again")
	}
	return nil
}
