-- Nothing to do on TimescaleDB: continuous aggregates refresh themselves
-- (refresh_continuous_aggregate). The file keeps both paths at the same version.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
