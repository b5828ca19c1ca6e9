-- The naive-table baseline of bench/ingest.sh: the table a user would make by
-- hand for these readings, without sensorhub's series catalog (device and
-- parameter spelled out on every row), deduplicated by a unique index.
-- psql variables: hypertable (true on FLAVOR=timescaledb), chunk (interval,
-- sensorhub's chunk interval). create_hypertable keeps its defaults, so it
-- also adds its usual index on (time DESC), as it would for that user.
CREATE TABLE readings (
    time       timestamptz NOT NULL,
    device_id  text NOT NULL,
    parameter  text NOT NULL,
    value_num  double precision,
    value_text text
);
\if :hypertable
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('readings', by_range('time', :'chunk'::interval));
\endif
CREATE UNIQUE INDEX readings_device_parameter_time_key ON readings (device_id, parameter, time);
