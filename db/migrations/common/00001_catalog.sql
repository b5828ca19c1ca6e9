-- The series catalog and the bookkeeping tables that both physical paths share.
-- Identifiers use the C collation so that prefix filters (LIKE 'tenantA.%') can use
-- the btree indexes and ordering is the same on every cluster locale.

-- +goose Up
CREATE TABLE sensorhub.settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
COMMENT ON TABLE sensorhub.settings IS
    'Migration-time settings (flavor, chunk interval, ...) that code reads back; written once by migrate.';

INSERT INTO sensorhub.settings (name, value) VALUES
    ('flavor',         current_setting('sensorhub.flavor')),
    ('chunk_interval', current_setting('sensorhub.chunk_interval')),
    ('compress_after', current_setting('sensorhub.compress_after')),
    ('retention',      current_setting('sensorhub.retention'));

CREATE TABLE sensorhub.series (
    series_id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id     text COLLATE "C" NOT NULL CHECK (octet_length(device_id) BETWEEN 1 AND 256),
    parameter     text COLLATE "C" NOT NULL CHECK (octet_length(parameter) BETWEEN 1 AND 256),
    value_type    text NOT NULL CHECK (value_type IN ('numeric', 'text')),
    first_time    timestamptz,
    last_time     timestamptz,
    reading_count bigint NOT NULL DEFAULT 0 CHECK (reading_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, parameter)
);
-- Parameter prefix and glob searches across devices.
CREATE INDEX series_parameter_idx ON sensorhub.series (parameter);

CREATE VIEW sensorhub.devices AS
SELECT device_id,
       count(*)::integer           AS series_count,
       sum(reading_count)::bigint  AS reading_count,
       min(first_time)             AS first_time,
       max(last_time)              AS last_time
FROM sensorhub.series
GROUP BY device_id;

-- One row; version changes with every load so the API can derive cache validators.
CREATE TABLE sensorhub.dataset_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL DEFAULT 0,
    loaded_at timestamptz
);
INSERT INTO sensorhub.dataset_state DEFAULT VALUES;

-- Time ranges whose rollups are stale. Ingest writes a row in the same transaction
-- as the readings it commits, and deletes it only after the rollups were refreshed,
-- so a crash between the two is repaired by the next run.
CREATE TABLE sensorhub.rollup_pending (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lo         timestamptz NOT NULL,
    hi         timestamptz NOT NULL CHECK (hi >= lo),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE sensorhub.rollup_pending;
DROP TABLE sensorhub.dataset_state;
DROP VIEW sensorhub.devices;
DROP TABLE sensorhub.series;
DROP TABLE sensorhub.settings;
