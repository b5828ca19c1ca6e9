-- Readings on plain PostgreSQL: declarative range partitions on time, one per
-- chunk_interval, created on demand by ensure_partitions (ingest calls it before
-- it copies a batch into a range it has not seen).

-- +goose Up
CREATE TABLE sensorhub.readings (
    series_id      integer NOT NULL,
    time           timestamptz NOT NULL,
    utc_offset_min smallint NOT NULL CHECK (utc_offset_min BETWEEN -1439 AND 1439),
    value_num      double precision
        CHECK (value_num <> 'NaN'::float8 AND value_num <> 'Infinity'::float8 AND value_num <> '-Infinity'::float8),
    value_text     text,
    CHECK ((value_num IS NULL) <> (value_text IS NULL)),
    PRIMARY KEY (series_id, time)
) PARTITION BY RANGE (time);

-- +goose StatementBegin
CREATE FUNCTION sensorhub.ensure_partitions(times timestamptz[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sensorhub AS $$
DECLARE
    step    interval := (SELECT value::interval FROM sensorhub.settings WHERE name = 'chunk_interval');
    origin  constant timestamptz := '2000-01-03 00:00:00+00';
    s       timestamptz;
    pname   text;
    created integer := 0;
BEGIN
    -- Serialise creators: two ingest workers may reach a new range at once.
    PERFORM pg_advisory_xact_lock(hashtext('sensorhub.ensure_partitions'));
    FOR s IN SELECT DISTINCT date_bin(step, t, origin) FROM unnest(times) AS t ORDER BY 1 LOOP
        pname := 'readings_' || to_char(s AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS');
        IF to_regclass('sensorhub.' || quote_ident(pname)) IS NULL THEN
            EXECUTE format('CREATE TABLE sensorhub.%I PARTITION OF sensorhub.readings FOR VALUES FROM (%L) TO (%L)',
                           pname, s, s + step);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sensorhub.ensure_partitions(timestamptz[]);
DROP TABLE sensorhub.readings;
