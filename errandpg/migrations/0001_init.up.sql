-- errandpg schema version 1: tasks and recurring schedules.
-- Applied by errandpg.Migrate inside one transaction; the tables are created
-- in the first schema of the connection's search_path.

CREATE TABLE errand_schedules (
    -- The schedule's stable name: every process registering the same
    -- recurring schedule points at the same row.
    id           text        PRIMARY KEY,
    kind         text        NOT NULL,
    -- The recurrence (cron expression or @every spec) as the core parses it.
    spec         text        NOT NULL,
    args         bytea,
    priority     integer     NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    timeout_ms   bigint      NOT NULL DEFAULT 0 CHECK (timeout_ms >= 0),
    -- The next due time. A process fires it by moving it forward with
    -- UPDATE ... WHERE next_run_at = <the due time it saw>; only one can.
    next_run_at  timestamptz NOT NULL,
    last_run_at  timestamptz,
    paused       boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Due schedules: WHERE NOT paused AND next_run_at <= now().
CREATE INDEX errand_schedules_due_idx ON errand_schedules (next_run_at) WHERE NOT paused;

CREATE TABLE errand_tasks (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL,
    args         bytea,
    result       bytea,
    -- queued:    due when inserted; scheduled: inserted with a later run_at;
    -- retrying:  waiting for its next attempt; running: leased to a worker;
    -- succeeded, failed, canceled: final.
    -- queued, scheduled and retrying are all "waiting": run_at decides when
    -- a task is due, by the database clock.
    state        text        NOT NULL DEFAULT 'queued' CHECK (state IN
                     ('queued', 'scheduled', 'retrying', 'running', 'succeeded', 'failed', 'canceled')),
    priority     integer     NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer     NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    last_error   text,
    unique_key   text,
    -- The lease: a fresh token per claim fences every later write by the
    -- worker holding it; lease_until is renewed by heartbeats.
    lease_token  uuid,
    lease_until  timestamptz,
    leased_by    text,
    -- The handler's timeout (0: none); separate from the lease.
    timeout_ms   bigint      NOT NULL DEFAULT 0 CHECK (timeout_ms >= 0),
    schedule_id  text        REFERENCES errand_schedules (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    CONSTRAINT errand_tasks_lease_check CHECK (
        (state = 'running') = (lease_token IS NOT NULL AND lease_until IS NOT NULL)),
    CONSTRAINT errand_tasks_finished_check CHECK (
        (state IN ('succeeded', 'failed', 'canceled')) = (finished_at IS NOT NULL))
);

-- The fetch query:
--   WHERE state IN ('queued','scheduled','retrying') AND run_at <= now()
--   ORDER BY priority DESC, run_at, id LIMIT n FOR UPDATE SKIP LOCKED
-- reads this index in order and stops after n due rows; finished and running
-- tasks are not in it at all.
CREATE INDEX errand_tasks_fetch_idx ON errand_tasks (priority DESC, run_at, id)
    WHERE state IN ('queued', 'scheduled', 'retrying');

-- Unique keys are enforced by the database while a task waits or runs, and
-- free again once it has finished.
CREATE UNIQUE INDEX errand_tasks_unique_key_idx ON errand_tasks (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'scheduled', 'retrying', 'running');

-- Recovery of expired leases: WHERE state = 'running' AND lease_until < now().
CREATE INDEX errand_tasks_lease_idx ON errand_tasks (lease_until) WHERE state = 'running';

-- Retention: WHERE state IN (final) AND finished_at < cutoff.
CREATE INDEX errand_tasks_finished_idx ON errand_tasks (finished_at)
    WHERE state IN ('succeeded', 'failed', 'canceled');

-- Runs of a recurring schedule (dashboard, and the FK's ON DELETE SET NULL).
CREATE INDEX errand_tasks_schedule_idx ON errand_tasks (schedule_id) WHERE schedule_id IS NOT NULL;
