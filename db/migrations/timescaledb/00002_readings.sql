-- Readings on TimescaleDB: a hypertable with chunk_interval chunks, compressed
-- per series after compress_after, optionally dropped after retention.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE sensorhub.readings (
    series_id      integer NOT NULL,
    time           timestamptz NOT NULL,
    utc_offset_min smallint NOT NULL CHECK (utc_offset_min BETWEEN -1439 AND 1439),
    value_num      double precision
        CHECK (value_num <> 'NaN'::float8 AND value_num <> 'Infinity'::float8 AND value_num <> '-Infinity'::float8),
    value_text     text,
    CHECK ((value_num IS NULL) <> (value_text IS NULL)),
    PRIMARY KEY (series_id, time)
);

SELECT create_hypertable('sensorhub.readings', by_range('time', current_setting('sensorhub.chunk_interval')::interval));

ALTER TABLE sensorhub.readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'series_id',
    timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('sensorhub.readings', current_setting('sensorhub.compress_after')::interval);

-- +goose StatementBegin
DO $$
BEGIN
    IF current_setting('sensorhub.retention') <> '' THEN
        PERFORM add_retention_policy('sensorhub.readings', current_setting('sensorhub.retention')::interval);
    END IF;
END
$$;
-- +goose StatementEnd

-- Hypertables create their chunks themselves; the function exists so that ingest
-- calls one interface on both paths.
-- +goose StatementBegin
CREATE FUNCTION sensorhub.ensure_partitions(times timestamptz[]) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, sensorhub AS $$ SELECT 0 $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sensorhub.ensure_partitions(timestamptz[]);
DROP TABLE sensorhub.readings;
