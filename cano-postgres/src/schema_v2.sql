-- cano-postgres schema, version 2: the checkpoint store (durable workflow runs).
-- A run's rows are the core's encoded CheckpointRow bytes (format byte + postcard).
-- Fences come from one sequence, so they are unique and increase across the whole store.

CREATE SEQUENCE cano_checkpoint_fences;

CREATE TABLE cano_checkpoint_runs (
    run text COLLATE "C" PRIMARY KEY,
    fence bigint NOT NULL,
    last_sequence bigint NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE cano_checkpoint_rows (
    run text COLLATE "C" NOT NULL REFERENCES cano_checkpoint_runs (run) ON DELETE CASCADE,
    sequence bigint NOT NULL,
    row_bytes bytea NOT NULL,
    PRIMARY KEY (run, sequence)
);

-- Status codes: 0 ok, 1 conflict, 2 fenced, 3 not found.
CREATE FUNCTION cano_checkpoint_start(p_run text, p_sequence bigint, p_row bytea)
RETURNS TABLE (o_status smallint, o_fence bigint)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_sequence <> 0 THEN
        o_status := 1; RETURN NEXT; RETURN;
    END IF;
    INSERT INTO cano_checkpoint_runs AS r (run, fence, last_sequence)
    VALUES (p_run, nextval('cano_checkpoint_fences'), 0)
    ON CONFLICT (run) DO NOTHING
    RETURNING r.fence INTO o_fence;
    IF NOT FOUND THEN
        o_status := 1; RETURN NEXT; RETURN; -- an unfinished run of this id
    END IF;
    INSERT INTO cano_checkpoint_rows (run, sequence, row_bytes) VALUES (p_run, 0, p_row);
    o_status := 0; RETURN NEXT;
END $$;

CREATE FUNCTION cano_checkpoint_resume(p_run text)
RETURNS TABLE (o_status smallint, o_fence bigint)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cano_checkpoint_runs r SET fence = nextval('cano_checkpoint_fences')
     WHERE r.run = p_run RETURNING r.fence INTO o_fence;
    o_status := CASE WHEN FOUND THEN 0 ELSE 3 END;
    RETURN NEXT;
END $$;

CREATE FUNCTION cano_checkpoint_append(p_run text, p_fence bigint, p_sequence bigint, p_row bytea)
RETURNS TABLE (o_status smallint, o_current bigint, o_last bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r cano_checkpoint_runs%ROWTYPE;
BEGIN
    SELECT * INTO r FROM cano_checkpoint_runs k WHERE k.run = p_run FOR UPDATE;
    IF NOT FOUND THEN
        o_status := 2; RETURN NEXT; RETURN;
    END IF;
    o_current := r.fence; o_last := r.last_sequence;
    IF r.fence <> p_fence THEN
        o_status := 2; RETURN NEXT; RETURN;
    END IF;
    IF p_sequence <> r.last_sequence + 1 THEN
        o_status := 1; RETURN NEXT; RETURN;
    END IF;
    INSERT INTO cano_checkpoint_rows (run, sequence, row_bytes) VALUES (p_run, p_sequence, p_row);
    UPDATE cano_checkpoint_runs k SET last_sequence = p_sequence WHERE k.run = p_run;
    o_status := 0; RETURN NEXT;
END $$;

CREATE FUNCTION cano_checkpoint_finish(p_run text, p_fence bigint)
RETURNS TABLE (o_status smallint, o_current bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT k.fence INTO o_current FROM cano_checkpoint_runs k WHERE k.run = p_run FOR UPDATE;
    IF NOT FOUND OR o_current <> p_fence THEN
        o_status := 2; RETURN NEXT; RETURN;
    END IF;
    DELETE FROM cano_checkpoint_runs k WHERE k.run = p_run;
    o_status := 0; RETURN NEXT;
END $$;
