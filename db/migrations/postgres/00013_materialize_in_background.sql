-- Nothing to do on plain PostgreSQL: the database has no job scheduler, so
-- ranges a load left pending (ingest load -rollups defer) are materialized by
-- `ingest refresh` (the CronJob in deploy/k8s). The file keeps both paths at
-- the same schema version; see timescaledb/00013_materialize_in_background.sql.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
