-- TimescaleDB's 00016 drops the time index create_hypertable added to the
-- readings, which plain PostgreSQL never had, and refreshes its continuous
-- aggregates one chunk at a time. Plain PostgreSQL's rollups are tables
-- refreshed by sensorhub.refresh_rollups and need neither; this version keeps
-- both flavors at the same schema version.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
