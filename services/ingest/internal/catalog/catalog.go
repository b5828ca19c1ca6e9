// Package catalog resolves (device, parameter) pairs to series ids and keeps the
// value type of each series, creating series on first sight.
//
// A series has one value type for life: the first reading decides it, and a
// later reading of the other type is rejected rather than stored, so that
// numbers are never mixed with text in one series.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// Series is what ingest needs to know of one series.
type Series struct {
	ID   int32
	Type dataset.ValueType
}

type key struct{ device, parameter string }

// Catalog caches the series table. It is safe for concurrent use: the batch
// job resolves on one goroutine per file, the write service on one per
// request; lookups of known series share a read lock, and only the creation
// of a series takes the write lock.
type Catalog struct {
	pool   *pgxpool.Pool
	dryRun bool
	mu     sync.RWMutex
	byKey  map[key]Series
	nextID int32 // dry runs hand out negative ids for series they would create
}

// ErrTypeConflict is returned when a reading's type differs from its series'.
var ErrTypeConflict = errors.New("value type conflicts with the series' type")

// New returns a catalog backed by pool. In a dry run, unknown series are
// remembered in memory only.
func New(pool *pgxpool.Pool, dryRun bool) *Catalog {
	return &Catalog{pool: pool, dryRun: dryRun, byKey: make(map[key]Series)}
}

const loadSQL = `SELECT series_id, device_id, parameter, value_type FROM sensorhub.series`

// Preload reads the whole series table so that a load of known series does no
// per-series round trip.
func (c *Catalog) Preload(ctx context.Context) error {
	rows, err := c.pool.Query(ctx, loadSQL)
	if err != nil {
		return fmt.Errorf("load series catalog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			s        Series
			k        key
			typeName string
		)
		if err := rows.Scan(&s.ID, &k.device, &k.parameter, &typeName); err != nil {
			return fmt.Errorf("load series catalog: %w", err)
		}
		t, err := dataset.ParseValueType(typeName)
		if err != nil {
			return fmt.Errorf("load series catalog: series %d: %w", s.ID, err)
		}
		s.Type = t
		c.byKey[k] = s
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load series catalog: %w", err)
	}
	return nil
}

// Insert-or-read in one statement: concurrent jobs creating the same series
// both get the one row that won.
const upsertSQL = `
WITH ins AS (
    INSERT INTO sensorhub.series (device_id, parameter, value_type)
    VALUES ($1, $2, $3)
    ON CONFLICT (device_id, parameter) DO NOTHING
    RETURNING series_id, value_type
)
SELECT series_id, value_type FROM ins
UNION ALL
SELECT series_id, value_type FROM sensorhub.series WHERE device_id = $1 AND parameter = $2
LIMIT 1`

// Cached returns the series of (device, parameter) when the catalog knows it,
// without a round trip: ok is false for a series Resolve must look up or
// create. A known series of the other type is ErrTypeConflict, as from
// Resolve.
func (c *Catalog) Cached(device, parameter string, t dataset.ValueType) (s Series, ok bool, err error) {
	c.mu.RLock()
	s, ok = c.byKey[key{device, parameter}]
	c.mu.RUnlock()
	if ok && s.Type != t {
		return s, true, fmt.Errorf("%w: reading is %s, series %s/%s is %s", ErrTypeConflict, t, device, parameter, s.Type)
	}
	return s, ok, nil
}

// Resolve returns the series of (device, parameter), creating it with type t
// when it does not exist. It returns ErrTypeConflict (wrapped with both types)
// when the series exists with another type.
func (c *Catalog) Resolve(ctx context.Context, device, parameter string, t dataset.ValueType) (Series, error) {
	k := key{device, parameter}
	c.mu.RLock()
	s, ok := c.byKey[k]
	c.mu.RUnlock()
	if !ok {
		c.mu.Lock()
		if s, ok = c.byKey[k]; !ok {
			var err error
			if s, err = c.create(ctx, k, t); err != nil {
				c.mu.Unlock()
				return Series{}, err
			}
			c.byKey[k] = s
		}
		c.mu.Unlock()
	}
	if s.Type != t {
		return s, fmt.Errorf("%w: reading is %s, series %s/%s is %s", ErrTypeConflict, t, device, parameter, s.Type)
	}
	return s, nil
}

func (c *Catalog) create(ctx context.Context, k key, t dataset.ValueType) (Series, error) {
	if c.dryRun {
		c.nextID--
		return Series{ID: c.nextID, Type: t}, nil
	}
	var (
		s        Series
		typeName string
	)
	err := c.pool.QueryRow(ctx, upsertSQL, k.device, k.parameter, t.String()).Scan(&s.ID, &typeName)
	if errors.Is(err, pgx.ErrNoRows) {
		// The row that won the conflict is not visible yet to this snapshot
		// only if its transaction has not committed; READ COMMITTED retries see it.
		err = c.pool.QueryRow(ctx, upsertSQL, k.device, k.parameter, t.String()).Scan(&s.ID, &typeName)
	}
	if err != nil {
		return Series{}, fmt.Errorf("create series %s/%s: %w", k.device, k.parameter, err)
	}
	if s.Type, err = dataset.ParseValueType(typeName); err != nil {
		return Series{}, fmt.Errorf("create series %s/%s: %w", k.device, k.parameter, err)
	}
	return s, nil
}

// Len is the number of series known.
func (c *Catalog) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byKey)
}
