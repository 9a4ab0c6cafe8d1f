-- errandpg schema version 2: NOTIFY on new due work and on finished tasks,
-- so workers wake within milliseconds of an insert and futures resolve in
-- every process. Pollers still cover what is not announced: tasks that
-- become due later (scheduled or backing off), and any notification a
-- listener missed while disconnected.
--
-- Channels are per schema, so two schemas on one database do not hear each
-- other: 'errand_work_' || schema and 'errand_done_' || schema, where schema
-- is the schema of the errand_tasks table firing the trigger
-- (TG_TABLE_SCHEMA, not the session's search_path). A channel name is an
-- identifier of at most 63 bytes: a schema name longer than 51 bytes is
-- replaced by its md5 in hex (32 bytes). notifyChannel in listen.go computes
-- the same names.
--
-- Cost: one pg_notify per inserted or newly due row and per finished row;
-- the WHEN clauses are evaluated without calling the functions, so other
-- updates (heartbeats, claims) pay nothing. Within one transaction
-- PostgreSQL folds identical notifications into one, so a bulk insert of one
-- kind announces it once; 'done' payloads are distinct ids, one per task.

-- errand_notify_work announces due work on 'errand_work_<schema>'; the
-- payload is the task's kind ('' for a kind longer than 1000 bytes, as a
-- payload must stay under 8000 bytes).
CREATE FUNCTION errand_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        CASE WHEN octet_length(TG_TABLE_SCHEMA) <= 51
            THEN 'errand_work_' || TG_TABLE_SCHEMA
            ELSE 'errand_work_' || md5(TG_TABLE_SCHEMA) END,
        CASE WHEN octet_length(NEW.kind) <= 1000 THEN NEW.kind ELSE '' END);
    RETURN NULL;
END
$$;

-- errand_notify_done announces a finished task's id on 'errand_done_<schema>'.
CREATE FUNCTION errand_notify_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        CASE WHEN octet_length(TG_TABLE_SCHEMA) <= 51
            THEN 'errand_done_' || TG_TABLE_SCHEMA
            ELSE 'errand_done_' || md5(TG_TABLE_SCHEMA) END,
        NEW.id::text);
    RETURN NULL;
END
$$;

-- A task inserted due: queued, or any waiting state with run_at <= now().
-- A task inserted for later ('scheduled') is not announced now, and nothing
-- announces it when its time comes: the poller finds it.
CREATE TRIGGER errand_tasks_work_insert
    AFTER INSERT ON errand_tasks
    FOR EACH ROW
    WHEN (NEW.state IN ('queued', 'scheduled', 'retrying') AND NEW.run_at <= now())
    EXECUTE FUNCTION errand_notify_work();

-- A task that becomes due by an update: handed back, retried without delay,
-- recovered from an expired lease, or moved to an earlier run_at. A task
-- that was already waiting and due was announced already.
CREATE TRIGGER errand_tasks_work_update
    AFTER UPDATE OF state, run_at ON errand_tasks
    FOR EACH ROW
    WHEN (NEW.state IN ('queued', 'scheduled', 'retrying') AND NEW.run_at <= now()
        AND NOT (OLD.state IN ('queued', 'scheduled', 'retrying') AND OLD.run_at <= now()))
    EXECUTE FUNCTION errand_notify_work();

-- A task that reaches a final state.
CREATE TRIGGER errand_tasks_done
    AFTER UPDATE OF state ON errand_tasks
    FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'failed', 'canceled') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION errand_notify_done();
