-- errandpg schema version 3: finished tasks are announced once per
-- statement instead of once per row.
--
-- Why: a transaction that sends any notification takes a database-wide lock
-- at commit, held through its WAL flush, so transactions that notify commit
-- one at a time. With the per-row trigger of version 2 every completion
-- notified; now a batch of completions (Store.CompleteMany, one UPDATE)
-- sends one notification per 200 finished tasks, and its commit takes the
-- lock once.
--
-- Payload: the ids of the rows that became final in the statement
-- (succeeded, failed or canceled, from another state), comma-separated, 200
-- at most per notification (36 + 1 bytes each: under 7,400 bytes, below the
-- 8,000-byte payload limit). A listener splits it on commas; a payload of a
-- single id, as version 2 sent, reads the same. Same channel as version 2:
-- 'errand_done_' || schema, or its md5 for a schema longer than 51 bytes
-- (notifyChannel in listen.go).
--
-- Cost: the trigger fires once per UPDATE statement on errand_tasks
-- (claims, heartbeats, completions, recoveries), and PostgreSQL keeps the
-- statement's old and new rows in memory for it (transition tables). When
-- no updated row is final (heartbeats, claims, retries) it does one scan of
-- the new rows and returns. Transition tables do not allow a column list
-- (UPDATE OF state), hence the check on the rows themselves.

DROP TRIGGER errand_tasks_done ON errand_tasks;
DROP FUNCTION errand_notify_done();

CREATE FUNCTION errand_notify_done_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE state IN ('succeeded', 'failed', 'canceled')) THEN
        RETURN NULL;
    END IF;
    FOR payload IN
        SELECT string_agg(f.id::text, ',')
        FROM (SELECT n.id, (row_number() OVER () - 1) / 200 AS chunk
              FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE n.state IN ('succeeded', 'failed', 'canceled')
                AND o.state IS DISTINCT FROM n.state) AS f
        GROUP BY f.chunk
    LOOP
        PERFORM pg_notify(
            CASE WHEN octet_length(TG_TABLE_SCHEMA) <= 51
                THEN 'errand_done_' || TG_TABLE_SCHEMA
                ELSE 'errand_done_' || md5(TG_TABLE_SCHEMA) END,
            payload);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER errand_tasks_done_rows
    AFTER UPDATE ON errand_tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION errand_notify_done_rows();
