// Package pipeline holds the stages the batch job (`ingest load`) and the
// write service (`ingest serve`) share around package copyload's parse →
// validate → resolve → batch → COPY: connecting to the database, and
// finishing what readings leave behind — the stale rollup ranges and the
// dataset version the API's caches follow.
package pipeline

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Connect opens a pool of at most maxConns connections to url.
func Connect(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg.MaxConns = int32(maxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// Redact renders the connection target of a pool without its password, for
// logs.
func Redact(p *pgxpool.Pool) string {
	cc := p.Config().ConnConfig
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
}
