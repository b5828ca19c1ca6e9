-- Nothing to do on TimescaleDB, whose rollups are continuous aggregates (see
-- postgres/00009_refresh_without_group_sorts.sql); the file keeps both paths
-- at the same schema version.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
