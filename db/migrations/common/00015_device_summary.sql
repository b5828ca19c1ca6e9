-- One row per device with the totals of its series, kept by triggers on the
-- series catalog in the writers' own transactions, so that /v1/devices (and
-- the sensorhub.devices view Grafana reads) no longer aggregate every series
-- per request: that grew with the catalog (bench/scale.sh: 5x slower with
-- 6,400 series than with 400).
--
-- The triggers apply deltas (counts added, times widened with LEAST and
-- GREATEST), which commute, so concurrent writers need no recount: each
-- statement's upsert locks the device rows it changes, in device order, until
-- its transaction ends. Writers already queue for the one dataset_state row at
-- the end of every transaction, after their series updates, so this adds no
-- new waiting order and no deadlock. Writers only ever add readings and widen
-- a series' times; deleting series (by hand: sensorhub has no such path)
-- recounts the devices it touched, and TRUNCATE empties the summary.

-- +goose Up
CREATE TABLE sensorhub.device_summary (
    device_id     text COLLATE "C" PRIMARY KEY,
    series_count  integer NOT NULL CHECK (series_count >= 0),
    reading_count bigint NOT NULL CHECK (reading_count >= 0),
    first_time    timestamptz,
    last_time     timestamptz
);
COMMENT ON TABLE sensorhub.device_summary IS
    'Per-device totals of sensorhub.series, maintained by its triggers; read sensorhub.devices.';


-- +goose StatementBegin
CREATE FUNCTION sensorhub.device_summary_add() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sensorhub.device_summary AS d (device_id, series_count, reading_count, first_time, last_time)
        SELECT n.device_id, count(*), coalesce(sum(n.reading_count), 0), min(n.first_time), max(n.last_time)
        FROM new_series n GROUP BY n.device_id ORDER BY n.device_id
        ON CONFLICT (device_id) DO UPDATE
        SET series_count  = d.series_count + excluded.series_count,
            reading_count = d.reading_count + excluded.reading_count,
            first_time    = LEAST(d.first_time, excluded.first_time),
            last_time     = GREATEST(d.last_time, excluded.last_time);
    ELSE
        INSERT INTO sensorhub.device_summary AS d (device_id, series_count, reading_count, first_time, last_time)
        SELECT n.device_id, 0, sum(n.reading_count - o.reading_count), min(n.first_time), max(n.last_time)
        FROM new_series n JOIN old_series o USING (series_id)
        GROUP BY n.device_id ORDER BY n.device_id
        ON CONFLICT (device_id) DO UPDATE
        SET reading_count = d.reading_count + excluded.reading_count,
            first_time    = LEAST(d.first_time, excluded.first_time),
            last_time     = GREATEST(d.last_time, excluded.last_time);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION sensorhub.device_summary_recount() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM sensorhub.device_summary d
    WHERE d.device_id IN (SELECT device_id FROM old_series)
      AND NOT EXISTS (SELECT FROM sensorhub.series s WHERE s.device_id = d.device_id);
    UPDATE sensorhub.device_summary d
    SET (series_count, reading_count, first_time, last_time) =
        (SELECT count(*), coalesce(sum(s.reading_count), 0), min(s.first_time), max(s.last_time)
         FROM sensorhub.series s WHERE s.device_id = d.device_id)
    WHERE d.device_id IN (SELECT device_id FROM old_series);
    RETURN NULL;
END
$$;

CREATE FUNCTION sensorhub.device_summary_clear() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM sensorhub.device_summary;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION sensorhub.device_summary_add() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sensorhub.device_summary_recount() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sensorhub.device_summary_clear() FROM PUBLIC;

CREATE TRIGGER device_summary_insert AFTER INSERT ON sensorhub.series
    REFERENCING NEW TABLE AS new_series
    FOR EACH STATEMENT EXECUTE FUNCTION sensorhub.device_summary_add();
CREATE TRIGGER device_summary_update AFTER UPDATE ON sensorhub.series
    REFERENCING OLD TABLE AS old_series NEW TABLE AS new_series
    FOR EACH STATEMENT EXECUTE FUNCTION sensorhub.device_summary_add();
CREATE TRIGGER device_summary_delete AFTER DELETE ON sensorhub.series
    REFERENCING OLD TABLE AS old_series
    FOR EACH STATEMENT EXECUTE FUNCTION sensorhub.device_summary_recount();
CREATE TRIGGER device_summary_truncate AFTER TRUNCATE ON sensorhub.series
    FOR EACH STATEMENT EXECUTE FUNCTION sensorhub.device_summary_clear();

-- Writers wait from here to the migration's commit, so that no series
-- changes between the first count and the triggers taking over.
LOCK TABLE sensorhub.series IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO sensorhub.device_summary
SELECT device_id, count(*), coalesce(sum(reading_count), 0), min(first_time), max(last_time)
FROM sensorhub.series GROUP BY device_id;

-- A series never moves to another device: the update trigger's deltas assume it.
-- +goose StatementBegin
CREATE FUNCTION sensorhub.series_device_fixed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'series % belongs to device %: a series cannot move to another device', OLD.series_id, OLD.device_id;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION sensorhub.series_device_fixed() FROM PUBLIC;
CREATE TRIGGER series_device_fixed BEFORE UPDATE OF device_id ON sensorhub.series
    FOR EACH ROW WHEN (NEW.device_id IS DISTINCT FROM OLD.device_id)
    EXECUTE FUNCTION sensorhub.series_device_fixed();

-- The view keeps its columns and now reads the summary.
CREATE OR REPLACE VIEW sensorhub.devices AS
SELECT device_id, series_count, reading_count, first_time, last_time
FROM sensorhub.device_summary;

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_writer') THEN
        GRANT INSERT, UPDATE ON sensorhub.device_summary TO sensorhub_writer;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
CREATE OR REPLACE VIEW sensorhub.devices AS
SELECT device_id,
       count(*)::integer           AS series_count,
       sum(reading_count)::bigint  AS reading_count,
       min(first_time)             AS first_time,
       max(last_time)              AS last_time
FROM sensorhub.series
GROUP BY device_id;
DROP TRIGGER series_device_fixed ON sensorhub.series;
DROP FUNCTION sensorhub.series_device_fixed();
DROP TRIGGER device_summary_truncate ON sensorhub.series;
DROP FUNCTION sensorhub.device_summary_clear();
DROP TRIGGER device_summary_delete ON sensorhub.series;
DROP TRIGGER device_summary_update ON sensorhub.series;
DROP TRIGGER device_summary_insert ON sensorhub.series;
DROP FUNCTION sensorhub.device_summary_recount();
DROP FUNCTION sensorhub.device_summary_add();
DROP TABLE sensorhub.device_summary;
