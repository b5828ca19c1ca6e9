package copyload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
)

// partitionOrigin is the origin the schema bins partitions (and TimescaleDB its
// buckets) from; ensure_partitions uses the same one.
var partitionOrigin = time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC)

const chunkIntervalSQL = `
SELECT extract(epoch FROM value::interval)::bigint * 1000000
FROM sensorhub.settings WHERE name = 'chunk_interval'`

// partitions remembers which partition ranges exist so that ensure_partitions
// is called only when a batch reaches a new one.
type partitions struct {
	mu     sync.Mutex
	step   time.Duration // 0 when the database partitions by itself (TimescaleDB)
	origin time.Time
	known  map[int64]bool
}

func loadPartitions(ctx context.Context, pool *pgxpool.Pool) (*partitions, error) {
	flavor, err := db.ReadFlavor(ctx, pool)
	if err != nil {
		return nil, err
	}
	p := &partitions{origin: partitionOrigin, known: make(map[int64]bool)}
	if flavor == db.FlavorTimescaleDB {
		return p, nil
	}
	var micros int64
	if err := pool.QueryRow(ctx, chunkIntervalSQL).Scan(&micros); err != nil {
		return nil, fmt.Errorf("read chunk interval: %w", err)
	}
	if micros <= 0 {
		return nil, fmt.Errorf("chunk interval setting is %dµs; want a positive interval", micros)
	}
	p.step = time.Duration(micros) * time.Microsecond
	return p, nil
}

const ensurePartitionsSQL = `SELECT sensorhub.ensure_partitions($1)`

// ensure creates the partitions a batch needs. Partition creation takes a lock
// on the parent table, so it runs in its own short transaction, before the
// batch's, and only for ranges this process has not seen yet. The mutex is held
// across the call so that no worker copies into a range another is creating.
func (p *partitions) ensure(ctx context.Context, pool *pgxpool.Pool, times []time.Time) error {
	if p.step == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var missing []time.Time
	bins := make(map[int64]bool)
	for _, t := range times {
		bin := p.bin(t)
		if !p.known[bin] && !bins[bin] {
			bins[bin] = true
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := pool.Exec(ctx, ensurePartitionsSQL, missing); err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	for bin := range bins {
		p.known[bin] = true
	}
	return nil
}

// forget drops what p remembers, so that the next ensure asks the database
// again: after a COPY met a missing partition, one this process saw created
// is gone (dropped by hand or by retention, or the database was replaced).
func (p *partitions) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.known)
}

// noPartition reports PostgreSQL's refusal of a row that no partition holds.
func noPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.HasPrefix(pgErr.Message, "no partition of relation")
}

// bin numbers the partition t falls in. It counts in microseconds, not
// Durations, because a time.Duration overflows past 292 years.
func (p *partitions) bin(t time.Time) int64 {
	step := p.step.Microseconds()
	d := t.UnixMicro() - p.origin.UnixMicro()
	bin := d / step
	if d%step < 0 {
		bin--
	}
	return bin
}
