-- Nothing to do on plain PostgreSQL: 00011 recomputed the stored rollups in
-- place (see timescaledb/00012_materialize_rollups.sql). The file keeps both
-- paths at the same schema version.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
