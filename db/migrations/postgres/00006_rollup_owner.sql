-- Nothing to do on plain PostgreSQL: its rollups are tables that
-- sensorhub.refresh_rollups (SECURITY DEFINER) maintains for the writer.
-- The file keeps both paths at the same schema version.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
