-- refresh_rollups(lo, hi) and refresh_rollups(lo, hi, part, parts) held two
-- copies of the same recomputation. The two-argument form is now the whole
-- range as one part, so there is one definition to keep right.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION sensorhub.refresh_rollups(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, sensorhub AS $$
    SELECT sensorhub.refresh_rollups(lo, hi, 0, 1)
$$;
-- +goose StatementEnd

-- +goose Down
SELECT 1;
