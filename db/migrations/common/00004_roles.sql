-- Least privilege: sensorhub_writer (ingest) may add readings and keep the catalog
-- and rollups current; sensorhub_reader (API) may only read. Both are NOLOGIN
-- group roles: operators create LOGIN users that are members of them. They are
-- created only when the migrating user may create roles (managed databases often
-- forbid it); otherwise create them by hand as the README's operations section
-- shows and run migrate again.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    may_create boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_reader') THEN
        IF may_create THEN
            CREATE ROLE sensorhub_reader NOLOGIN;
        ELSE
            RAISE WARNING 'role sensorhub_reader does not exist and % may not create roles: grants skipped', current_user;
        END IF;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_writer') THEN
        IF may_create THEN
            CREATE ROLE sensorhub_writer NOLOGIN;
        ELSE
            RAISE WARNING 'role sensorhub_writer does not exist and % may not create roles: grants skipped', current_user;
        END IF;
    END IF;

    -- Functions are executable by PUBLIC by default; only the writer may call ours.
    REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA sensorhub FROM PUBLIC;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_reader') THEN
        GRANT USAGE ON SCHEMA sensorhub TO sensorhub_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA sensorhub TO sensorhub_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA sensorhub GRANT SELECT ON TABLES TO sensorhub_reader;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_writer') THEN
        GRANT USAGE ON SCHEMA sensorhub TO sensorhub_writer;
        GRANT SELECT ON ALL TABLES IN SCHEMA sensorhub TO sensorhub_writer;
        GRANT INSERT, UPDATE ON sensorhub.series, sensorhub.readings TO sensorhub_writer;
        GRANT UPDATE ON sensorhub.dataset_state TO sensorhub_writer;
        GRANT INSERT, DELETE ON sensorhub.rollup_pending TO sensorhub_writer;
        GRANT EXECUTE ON FUNCTION sensorhub.ensure_partitions(timestamptz[]) TO sensorhub_writer;
        IF to_regprocedure('sensorhub.refresh_rollups(timestamptz,timestamptz)') IS NOT NULL THEN
            GRANT EXECUTE ON FUNCTION sensorhub.refresh_rollups(timestamptz, timestamptz) TO sensorhub_writer;
        END IF;
        ALTER DEFAULT PRIVILEGES IN SCHEMA sensorhub GRANT SELECT ON TABLES TO sensorhub_writer;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Roles are cluster-wide and may be shared by other databases: leave them.
SELECT 1;
