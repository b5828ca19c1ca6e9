-- Every load bumps sensorhub.dataset_state.version (ingest in each batch
-- transaction and at the end of a run, db/seed once), and the API derives its
-- ETags and cached answers from it. This trigger announces each new version on
-- the channel sensorhub_dataset_version, with the version as the payload, so an
-- API that LISTENs learns of a load the moment it commits: PostgreSQL delivers
-- a NOTIFY only at commit, and not at all when the transaction rolls back. The
-- API still polls the version (at most once per its DatasetVersionTTL) where it
-- cannot listen: behind PgBouncer in transaction mode, or on a standby, which
-- neither accepts LISTEN nor receives the primary's notifications.
--
-- Any role may LISTEN, so the reader needs no grant. The function is
-- plpgsql over pg_notify (executable by PUBLIC); a trigger function cannot be
-- called directly, and firing a trigger checks no EXECUTE privilege, so PUBLIC
-- keeps none, as 00004 set for the schema's functions.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION sensorhub.notify_dataset_version() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    PERFORM pg_notify('sensorhub_dataset_version', NEW.version::text);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION sensorhub.notify_dataset_version() FROM PUBLIC;
CREATE TRIGGER notify_dataset_version
    AFTER UPDATE OF version ON sensorhub.dataset_state
    FOR EACH ROW WHEN (NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION sensorhub.notify_dataset_version();

-- +goose Down
DROP TRIGGER notify_dataset_version ON sensorhub.dataset_state;
DROP FUNCTION sensorhub.notify_dataset_version();
