-- The schema of cronwright's own tables and functions after every migration in
-- engine/migrations/ (written by `make schema` from pg_dump; a test keeps it true).
-- Read it to see what cronwright keeps; change it with a new migration, never here.

CREATE SCHEMA cronwright;

CREATE FUNCTION cronwright.claim_slot(p_job text, p_slot timestamp with time zone, p_attempt integer, p_message_id text, p_started_at timestamp with time zone, p_timeout text, p_rerun_id text, p_lock text, p_supersede boolean) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_final text;
    v_run_id bigint;
    v_status text;
    v_rerun_id text;
BEGIN
    PERFORM set_config('statement_timeout', p_timeout, true),
            set_config('lock_timeout', p_timeout, true);
    IF EXISTS (
        SELECT 1 FROM cronwright.pauses AS p
        WHERE p.job = p_job AND p.paused_from <= p_slot
          AND (p.resumed_at IS NULL OR p.resumed_at > p_slot)) THEN
        v_final := 'paused';
    END IF;
    IF v_final IS NULL AND p_lock IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(p_job),
                                  (extract(epoch FROM p_slot) / 60)::integer);
    SELECT r.status, r.rerun_id INTO v_status, v_rerun_id
    FROM cronwright.runs AS r WHERE r.job = p_job AND r.slot = p_slot;
    IF v_status = 'succeeded'
       AND (v_final IS NOT NULL OR p_rerun_id IS NULL
            OR v_rerun_id IS NOT DISTINCT FROM p_rerun_id) THEN
        RETURN 0;
    END IF;
    IF v_final IS NULL AND p_supersede AND p_rerun_id IS NULL AND EXISTS (
        SELECT 1 FROM cronwright.runs AS r
        WHERE r.job = p_job AND r.slot > p_slot AND r.status = 'succeeded') THEN
        v_final := 'superseded';
    END IF;
    IF v_final IS NULL THEN
        RETURN 1;
    END IF;
    v_run_id := nextval('cronwright.run_ids');
    INSERT INTO cronwright.runs AS r
        (job, slot, status, attempt, message_id, started_at, finished_at, run_id, rerun_id)
    VALUES (p_job, p_slot, v_final, p_attempt, p_message_id, p_started_at, p_started_at,
            v_run_id, p_rerun_id)
    ON CONFLICT (job, slot) DO UPDATE
    SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,
        message_id = EXCLUDED.message_id, started_at = EXCLUDED.started_at,
        finished_at = EXCLUDED.finished_at, rows = NULL, duration_ms = NULL,
        error_class = NULL, error = NULL, run_id = EXCLUDED.run_id,
        rerun_id = EXCLUDED.rerun_id;
    INSERT INTO cronwright.run_history
        (run_id, job, slot, status, attempt, message_id, rerun_id, started_at,
         finished_at, duration_ms)
    VALUES (v_run_id, p_job, p_slot, v_final, p_attempt, p_message_id, p_rerun_id,
            p_started_at, p_started_at, 0);
    RETURN CASE v_final WHEN 'paused' THEN 2 ELSE 3 END;
END $$;

CREATE FUNCTION cronwright.queue_ack(p_id bigint, p_lease_id uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM cronwright.queue WHERE id = p_id AND lease_id = p_lease_id;
END $$;

CREATE FUNCTION cronwright.queue_claim(p_queue text, p_now timestamp with time zone, p_lease_seconds double precision, p_n integer) RETURNS TABLE(id bigint, body text, attempts integer, lease_id uuid, claimed_at timestamp with time zone)
    LANGUAGE plpgsql
    SET enable_bitmapscan TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_sort TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    RETURN QUERY
    UPDATE cronwright.queue AS q
    SET attempts = q.attempts + (q.attempts < 2147483647)::integer,
        visible_at = v_now + make_interval(secs => p_lease_seconds),
        lease_id = gen_random_uuid()
    FROM (
        SELECT r.id FROM cronwright.queue AS r
        WHERE r.queue = p_queue AND r.visible_at <= v_now
        ORDER BY r.visible_at, r.id
        LIMIT p_n
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE q.id = c.id
    RETURNING q.id, q.body, q.attempts, q.lease_id, v_now;
END $$;

CREATE FUNCTION cronwright.queue_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('cronwright_queue', q.queue)
    FROM (SELECT DISTINCT queue FROM added) AS q;
    RETURN NULL;
END $$;

CREATE FUNCTION cronwright.run_slot(p_job text, p_slot timestamp with time zone, p_attempt integer, p_message_id text, p_started_at timestamp with time zone, p_timeout_ms integer, p_slack_ms integer, p_rerun_id text, p_lock text, p_statements text[], p_ack text, p_finished_at timestamp with time zone, p_queue_id bigint, p_lease_id uuid, p_supersede boolean) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_have_ms double precision :=
        extract(epoch FROM current_setting('statement_timeout')::interval) * 1000;
    v_t0 timestamptz := clock_timestamp();
    v_claim integer;
    v_rows bigint := 0;
    v_count bigint;
    v_statement text;
BEGIN
    IF v_have_ms < p_timeout_ms OR v_have_ms > p_timeout_ms + p_slack_ms THEN
        RAISE EXCEPTION 'statement_timeout is %, the run needs % ms',
                        current_setting('statement_timeout'), p_timeout_ms
            USING ERRCODE = 'CW001';
    END IF;
    v_claim := cronwright.claim_slot(
        p_job, p_slot, p_attempt, p_message_id, p_started_at,
        greatest(1, p_timeout_ms - 5 - ceil(extract(epoch FROM clock_timestamp()
                                                    - statement_timestamp()) * 1000)::integer)
            || 'ms',
        p_rerun_id, p_lock, p_supersede);
    IF v_claim = 1 THEN
        FOREACH v_statement IN ARRAY p_statements LOOP
            EXECUTE v_statement;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_rows := v_rows + v_count;
        END LOOP;
        PERFORM cronwright.succeed_slot(
            p_job, p_slot, p_attempt, p_message_id, p_started_at, p_rerun_id, v_rows,
            extract(epoch FROM clock_timestamp() - v_t0) * 1000,
            p_finished_at + (clock_timestamp() - v_t0));
    END IF;
    IF p_queue_id IS NOT NULL THEN
        PERFORM cronwright.queue_ack(p_queue_id, p_lease_id);
    END IF;
    IF p_ack IS NOT NULL THEN
        EXECUTE p_ack;
    END IF;
    RETURN CASE v_claim WHEN 1 THEN v_rows WHEN 0 THEN -1 WHEN 2 THEN -2 ELSE -3 END;
END $$;

CREATE FUNCTION cronwright.succeed_slot(p_job text, p_slot timestamp with time zone, p_attempt integer, p_message_id text, p_started_at timestamp with time zone, p_rerun_id text, p_rows bigint, p_duration_ms double precision, p_finished_at timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_run_id bigint := nextval('cronwright.run_ids');
BEGIN
    INSERT INTO cronwright.runs AS r
        (job, slot, status, attempt, rows, duration_ms, message_id, started_at,
         finished_at, run_id, rerun_id)
    VALUES (p_job, p_slot, 'succeeded', p_attempt, p_rows, p_duration_ms, p_message_id,
            p_started_at, p_finished_at, v_run_id, p_rerun_id)
    ON CONFLICT (job, slot) DO UPDATE
    SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, rows = EXCLUDED.rows,
        duration_ms = EXCLUDED.duration_ms, message_id = EXCLUDED.message_id,
        started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
        error_class = NULL, error = NULL, run_id = EXCLUDED.run_id,
        rerun_id = EXCLUDED.rerun_id;
    INSERT INTO cronwright.run_history
        (run_id, job, slot, status, attempt, rows, duration_ms, message_id, rerun_id,
         started_at, finished_at)
    VALUES (v_run_id, p_job, p_slot, 'succeeded', p_attempt, p_rows, p_duration_ms,
            p_message_id, p_rerun_id, p_started_at, p_finished_at);
END $$;

CREATE TABLE cronwright.dead_letters (
    id bigint NOT NULL,
    job text,
    type text,
    slot timestamp with time zone,
    message_id text,
    body text NOT NULL,
    reason text NOT NULL,
    error_class text NOT NULL,
    attempts integer NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    replayed_at timestamp with time zone,
    replayed_as text,
    purged_at timestamp with time zone,
    replayed_by text,
    CONSTRAINT dead_letters_attempts_check CHECK ((attempts >= 1)),
    CONSTRAINT dead_letters_created_at_sane CHECK (((created_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (created_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT dead_letters_purged_at_sane CHECK (((purged_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (purged_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT dead_letters_replayed_at_sane CHECK (((replayed_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (replayed_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT dead_letters_slot_sane CHECK (((slot >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (slot < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

ALTER TABLE cronwright.dead_letters ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cronwright.dead_letters_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE cronwright.dispatched (
    job text NOT NULL,
    slot timestamp with time zone NOT NULL,
    source text NOT NULL,
    transport text NOT NULL,
    dispatched_at timestamp with time zone DEFAULT now() NOT NULL,
    requested_by text,
    rerun_id text,
    CONSTRAINT dispatched_dispatched_at_sane CHECK (((dispatched_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (dispatched_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT dispatched_slot_sane CHECK (((slot >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (slot < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

CREATE TABLE cronwright.handbacks (
    queue text NOT NULL,
    message_id text NOT NULL,
    count integer NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT handbacks_count_check CHECK ((count >= 1)),
    CONSTRAINT handbacks_updated_at_sane CHECK (((updated_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (updated_at < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

CREATE TABLE cronwright.jobs (
    job text NOT NULL,
    first_seen timestamp with time zone NOT NULL,
    CONSTRAINT jobs_first_seen_sane CHECK (((first_seen >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (first_seen < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

CREATE TABLE cronwright.notification_cursors (
    source text NOT NULL,
    last_id bigint NOT NULL,
    horizon_id bigint NOT NULL,
    horizon_at timestamp with time zone NOT NULL,
    CONSTRAINT notification_cursors_check CHECK ((last_id <= horizon_id)),
    CONSTRAINT notification_cursors_horizon_at_sane CHECK (((horizon_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (horizon_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT notification_cursors_source_check CHECK ((source = ANY (ARRAY['dead_letters'::text, 'run_history'::text])))
);

CREATE TABLE cronwright.notification_jobs (
    job text NOT NULL,
    incidents integer DEFAULT 0 NOT NULL,
    open_since timestamp with time zone,
    open_kinds text[] DEFAULT '{}'::text[] NOT NULL,
    problem_slot timestamp with time zone,
    CONSTRAINT notification_jobs_incidents_check CHECK ((incidents >= 0)),
    CONSTRAINT notification_jobs_open_since_sane CHECK (((open_since >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (open_since < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT notification_jobs_problem_slot_sane CHECK (((problem_slot >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (problem_slot < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

CREATE TABLE cronwright.notifications (
    id bigint NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    target text NOT NULL,
    job text,
    slot timestamp with time zone,
    title text NOT NULL,
    body text NOT NULL,
    ordered boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    due_at timestamp with time zone DEFAULT now() NOT NULL,
    tries integer DEFAULT 0 NOT NULL,
    sent_at timestamp with time zone,
    gave_up_at timestamp with time zone,
    last_error text,
    CONSTRAINT notifications_created_at_sane CHECK (((created_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (created_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT notifications_due_at_sane CHECK (((due_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (due_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT notifications_gave_up_at_sane CHECK (((gave_up_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (gave_up_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT notifications_kind_check CHECK ((kind = ANY (ARRAY['dead_letter'::text, 'missing'::text, 'recovery'::text, 'near_timeout'::text, 'ping_start'::text, 'ping_success'::text, 'ping_fail'::text]))),
    CONSTRAINT notifications_sent_at_sane CHECK (((sent_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (sent_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT notifications_slot_sane CHECK (((slot >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (slot < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT notifications_tries_check CHECK ((tries >= 0))
);

ALTER TABLE cronwright.notifications ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cronwright.notifications_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE cronwright.pauses (
    id bigint NOT NULL,
    job text NOT NULL,
    paused_from timestamp with time zone NOT NULL,
    resumed_at timestamp with time zone,
    reason text,
    paused_by text,
    resumed_by text,
    CONSTRAINT pauses_check CHECK (((resumed_at IS NULL) OR (resumed_at >= paused_from))),
    CONSTRAINT pauses_paused_from_sane CHECK (((paused_from >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (paused_from < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT pauses_resumed_at_sane CHECK (((resumed_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (resumed_at < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

ALTER TABLE cronwright.pauses ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cronwright.pauses_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE cronwright.queue (
    id bigint NOT NULL,
    queue text NOT NULL,
    body text NOT NULL,
    job text,
    slot timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    visible_at timestamp with time zone NOT NULL,
    lease_id uuid,
    enqueued_at timestamp with time zone NOT NULL,
    CONSTRAINT queue_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT queue_enqueued_at_sane CHECK (((enqueued_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (enqueued_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT queue_slot_sane CHECK (((slot >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (slot < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT queue_visible_at_sane CHECK (((visible_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (visible_at < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

ALTER TABLE cronwright.queue ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cronwright.queue_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE cronwright.run_history (
    run_id bigint NOT NULL,
    job text NOT NULL,
    slot timestamp with time zone NOT NULL,
    status text NOT NULL,
    attempt integer NOT NULL,
    rows bigint,
    duration_ms double precision,
    error_class text,
    error text,
    message_id text,
    rerun_id text,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    CONSTRAINT run_history_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT run_history_finished_at_sane CHECK (((finished_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (finished_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT run_history_slot_sane CHECK (((slot >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (slot < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT run_history_started_at_sane CHECK (((started_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (started_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT run_history_status_check CHECK ((status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'dead_lettered'::text, 'paused'::text, 'superseded'::text])))
);

CREATE SEQUENCE cronwright.run_ids
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE cronwright.runs (
    job text NOT NULL,
    slot timestamp with time zone NOT NULL,
    status text NOT NULL,
    attempt integer NOT NULL,
    rows bigint,
    duration_ms double precision,
    error_class text,
    error text,
    message_id text,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    run_id bigint,
    rerun_id text,
    CONSTRAINT runs_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT runs_finished_at_sane CHECK (((finished_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (finished_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT runs_slot_sane CHECK (((slot >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (slot < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT runs_started_at_sane CHECK (((started_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (started_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'succeeded'::text, 'failed'::text, 'dead_lettered'::text, 'paused'::text, 'superseded'::text])))
);

CREATE TABLE cronwright.schema_migrations (
    source text NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schema_migrations_applied_at_sane CHECK (((applied_at >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND (applied_at < '10000-01-01 00:00:00+00'::timestamp with time zone)))
);

ALTER TABLE ONLY cronwright.dead_letters
    ADD CONSTRAINT dead_letters_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cronwright.dispatched
    ADD CONSTRAINT dispatched_pkey PRIMARY KEY (job, slot);

ALTER TABLE ONLY cronwright.handbacks
    ADD CONSTRAINT handbacks_pkey PRIMARY KEY (queue, message_id);

ALTER TABLE ONLY cronwright.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (job);

ALTER TABLE ONLY cronwright.notification_cursors
    ADD CONSTRAINT notification_cursors_pkey PRIMARY KEY (source);

ALTER TABLE ONLY cronwright.notification_jobs
    ADD CONSTRAINT notification_jobs_pkey PRIMARY KEY (job);

ALTER TABLE ONLY cronwright.notifications
    ADD CONSTRAINT notifications_key UNIQUE (kind, subject, target);

ALTER TABLE ONLY cronwright.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cronwright.pauses
    ADD CONSTRAINT pauses_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cronwright.queue
    ADD CONSTRAINT queue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cronwright.run_history
    ADD CONSTRAINT run_history_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY cronwright.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (job, slot);

ALTER TABLE ONLY cronwright.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (source, name);

CREATE INDEX dead_letters_created_idx ON cronwright.dead_letters USING btree (created_at);

CREATE INDEX dead_letters_job_slot_idx ON cronwright.dead_letters USING btree (job, slot);

CREATE INDEX notifications_created_idx ON cronwright.notifications USING btree (created_at);

CREATE INDEX notifications_due_idx ON cronwright.notifications USING btree (due_at, id) WHERE ((sent_at IS NULL) AND (gave_up_at IS NULL));

CREATE INDEX notifications_ordered_idx ON cronwright.notifications USING btree (target, id) WHERE (ordered AND (sent_at IS NULL) AND (gave_up_at IS NULL));

CREATE INDEX pauses_job_idx ON cronwright.pauses USING btree (job, paused_from);

CREATE UNIQUE INDEX pauses_one_open_idx ON cronwright.pauses USING btree (job) WHERE (resumed_at IS NULL);

CREATE INDEX queue_ready_idx ON cronwright.queue USING btree (queue, visible_at, id);

CREATE INDEX run_history_job_slot_idx ON cronwright.run_history USING btree (job, slot, run_id);

CREATE INDEX runs_failed_idx ON cronwright.runs USING btree (finished_at DESC) WHERE (status = ANY (ARRAY['failed'::text, 'dead_lettered'::text]));

CREATE TRIGGER queue_notify AFTER INSERT ON cronwright.queue REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cronwright.queue_notify();
