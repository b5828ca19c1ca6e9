-- Nothing to do on TimescaleDB (see postgres/00008_one_refresh.sql); the file
-- keeps both paths at the same schema version.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
