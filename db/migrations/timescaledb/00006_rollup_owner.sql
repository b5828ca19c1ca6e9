-- TimescaleDB lets only a continuous aggregate's owner refresh it, and ingest
-- (sensorhub_writer) refreshes exactly the ranges it loaded. The aggregates
-- are therefore owned by sensorhub_writer. Changing the owner also hands their
-- refresh policies to it, but background jobs only run as a role that may log
-- in, and sensorhub_writer is a NOLOGIN group role; so the policies go back to
-- the migrating user, which joins sensorhub_writer and thereby passes the
-- ownership check when they run.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_writer') THEN
        RAISE WARNING 'role sensorhub_writer does not exist: continuous aggregates stay owned by %, and ingest must run as that user to refresh them', current_user;
        RETURN;
    END IF;
    IF NOT pg_has_role(current_user, 'sensorhub_writer', 'MEMBER') THEN
        EXECUTE format('GRANT sensorhub_writer TO %I', current_user);
    END IF;
    ALTER MATERIALIZED VIEW sensorhub.rollup_1m OWNER TO sensorhub_writer;
    ALTER MATERIALIZED VIEW sensorhub.rollup_1h OWNER TO sensorhub_writer;
    ALTER MATERIALIZED VIEW sensorhub.rollup_1d OWNER TO sensorhub_writer;
    BEGIN
        UPDATE _timescaledb_config.bgw_job SET owner = current_user::regrole
        WHERE proc_name = 'policy_refresh_continuous_aggregate' AND owner = 'sensorhub_writer'::regrole;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'refresh policies now belong to the NOLOGIN role sensorhub_writer and will not run; give them to a login role';
    END;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    ALTER MATERIALIZED VIEW sensorhub.rollup_1m OWNER TO CURRENT_USER;
    ALTER MATERIALIZED VIEW sensorhub.rollup_1h OWNER TO CURRENT_USER;
    ALTER MATERIALIZED VIEW sensorhub.rollup_1d OWNER TO CURRENT_USER;
END
$$;
-- +goose StatementEnd
