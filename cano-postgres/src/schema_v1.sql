-- cano-postgres schema, version 1: the schedule store and the fire ledger.
-- Times the scheduler chose (fire times, backoff ends) are whole microseconds since the Unix
-- epoch (bigint); lease times are timestamptz in the database clock (clock_timestamp()).

CREATE FUNCTION cano_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

CREATE FUNCTION cano_ts(us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT timestamptz 'epoch' + us * interval '1 microsecond' $$;

-- ScheduleStore: one row per flow.
CREATE TABLE cano_flow_records (
    flow text COLLATE "C" PRIMARY KEY,
    fence bigint NOT NULL,
    schedule_hash bigint NOT NULL,
    last_fire_us bigint,
    streak bigint NOT NULL,
    next_eligible_us bigint,
    paused boolean NOT NULL,
    tripped boolean NOT NULL,
    buffered_trigger boolean NOT NULL,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- FireLedger, per flow: the fence counter, the high-water mark, the abandoned count and the
-- ownership lease. Its row lock serialises everything that issues a fence for the flow.
CREATE TABLE cano_ledger_flows (
    flow text COLLATE "C" PRIMARY KEY,
    fence bigint NOT NULL DEFAULT 0,
    high_water_us bigint,
    abandoned bigint NOT NULL DEFAULT 0,
    owner text,
    owner_fence bigint,
    owner_until timestamptz
);

-- FireLedger, per fire. state: 0 claimed, 1 done, 2 abandoned.
CREATE TABLE cano_fire_claims (
    flow text COLLATE "C" NOT NULL,
    scheduled_us bigint NOT NULL,
    owner text NOT NULL,
    fence bigint NOT NULL,
    state smallint NOT NULL,
    outcome smallint,
    lease_until timestamptz NOT NULL,
    takeovers bigint NOT NULL DEFAULT 0,
    claimed_at timestamptz NOT NULL,
    ended_at timestamptz,
    PRIMARY KEY (flow, scheduled_us)
);
CREATE INDEX cano_fire_claims_live ON cano_fire_claims (lease_until) WHERE state = 0;
CREATE INDEX cano_fire_claims_live_by_flow ON cano_fire_claims (flow) WHERE state = 0;
CREATE INDEX cano_fire_claims_ended ON cano_fire_claims (ended_at) WHERE state <> 0;

-- Claim status codes (shared by cano_claim and cano_take_over):
-- 0 claimed, 1 taken/live, 2 done, 3 abandoned, 4 stale, 5 missing, 6 at the limit.
CREATE FUNCTION cano_claim(p_flow text, p_at bigint, p_node text, p_lease_us bigint, p_max_live bigint)
RETURNS TABLE (o_status smallint, o_fence bigint, o_expires_us bigint, o_takeovers bigint,
               o_owner text, o_outcome smallint, o_high_water_us bigint, o_now_us bigint,
               o_live bigint)
LANGUAGE plpgsql AS $$
DECLARE
    f cano_ledger_flows%ROWTYPE;
    c cano_fire_claims%ROWTYPE;
    t timestamptz;
    v_until timestamptz;
BEGIN
    INSERT INTO cano_ledger_flows AS l (flow) VALUES (p_flow) ON CONFLICT DO NOTHING;
    SELECT * INTO f FROM cano_ledger_flows l WHERE l.flow = p_flow FOR UPDATE;
    t := clock_timestamp();
    v_until := t + p_lease_us * interval '1 microsecond';
    o_now_us := cano_us(t);
    IF f.owner IS NOT NULL AND f.owner <> p_node AND t < f.owner_until THEN
        o_status := 1; o_owner := f.owner; o_expires_us := cano_us(f.owner_until);
        RETURN NEXT; RETURN;
    END IF;
    SELECT * INTO c FROM cano_fire_claims k WHERE k.flow = p_flow AND k.scheduled_us = p_at FOR UPDATE;
    IF FOUND THEN
        IF c.state = 0 AND c.owner = p_node AND t < c.lease_until THEN
            UPDATE cano_fire_claims k SET lease_until = v_until
             WHERE k.flow = p_flow AND k.scheduled_us = p_at;
            o_status := 0; o_fence := c.fence; o_expires_us := cano_us(v_until); o_takeovers := c.takeovers;
        ELSIF c.state = 0 THEN
            o_status := 1; o_owner := c.owner; o_expires_us := cano_us(c.lease_until);
        ELSIF c.state = 1 THEN
            o_status := 2; o_outcome := c.outcome;
        ELSE
            o_status := 3; o_takeovers := c.takeovers;
        END IF;
        RETURN NEXT; RETURN;
    END IF;
    IF f.high_water_us IS NOT NULL AND p_at <= f.high_water_us THEN
        o_status := 4; o_high_water_us := f.high_water_us;
        RETURN NEXT; RETURN;
    END IF;
    SELECT count(*) INTO o_live FROM cano_fire_claims k
     WHERE k.flow = p_flow AND k.state = 0 AND t < k.lease_until;
    IF o_live >= p_max_live THEN
        o_status := 6; RETURN NEXT; RETURN;
    END IF;
    UPDATE cano_ledger_flows l SET fence = l.fence + 1, high_water_us = p_at
     WHERE l.flow = p_flow RETURNING l.fence INTO o_fence;
    INSERT INTO cano_fire_claims (flow, scheduled_us, owner, fence, state, lease_until, takeovers, claimed_at)
    VALUES (p_flow, p_at, p_node, o_fence, 0, v_until, 0, t);
    o_status := 0; o_expires_us := cano_us(v_until); o_takeovers := 0;
    RETURN NEXT;
END $$;

CREATE FUNCTION cano_take_over(p_flow text, p_at bigint, p_node text, p_lease_us bigint, p_max bigint)
RETURNS TABLE (o_status smallint, o_fence bigint, o_expires_us bigint, o_takeovers bigint,
               o_owner text, o_outcome smallint, o_now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c cano_fire_claims%ROWTYPE;
    t timestamptz;
    v_until timestamptz;
BEGIN
    INSERT INTO cano_ledger_flows AS l (flow) VALUES (p_flow) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM cano_ledger_flows l WHERE l.flow = p_flow FOR UPDATE;
    t := clock_timestamp();
    v_until := t + p_lease_us * interval '1 microsecond';
    o_now_us := cano_us(t);
    SELECT * INTO c FROM cano_fire_claims k WHERE k.flow = p_flow AND k.scheduled_us = p_at FOR UPDATE;
    IF NOT FOUND THEN
        o_status := 5; RETURN NEXT; RETURN;
    END IF;
    IF c.state = 1 THEN
        o_status := 2; o_outcome := c.outcome; RETURN NEXT; RETURN;
    ELSIF c.state = 2 THEN
        o_status := 3; o_takeovers := c.takeovers; RETURN NEXT; RETURN;
    END IF;
    IF t < c.lease_until THEN
        IF c.owner = p_node THEN
            UPDATE cano_fire_claims k SET lease_until = v_until
             WHERE k.flow = p_flow AND k.scheduled_us = p_at;
            o_status := 0; o_fence := c.fence; o_expires_us := cano_us(v_until); o_takeovers := c.takeovers;
        ELSE
            o_status := 1; o_owner := c.owner; o_expires_us := cano_us(c.lease_until);
        END IF;
        RETURN NEXT; RETURN;
    END IF;
    IF c.takeovers >= p_max THEN
        UPDATE cano_fire_claims k SET state = 2, ended_at = t
         WHERE k.flow = p_flow AND k.scheduled_us = p_at;
        UPDATE cano_ledger_flows l SET abandoned = l.abandoned + 1 WHERE l.flow = p_flow;
        o_status := 3; o_takeovers := c.takeovers; RETURN NEXT; RETURN;
    END IF;
    UPDATE cano_ledger_flows l SET fence = l.fence + 1 WHERE l.flow = p_flow RETURNING l.fence INTO o_fence;
    UPDATE cano_fire_claims k
       SET fence = o_fence, owner = p_node, takeovers = k.takeovers + 1, lease_until = v_until
     WHERE k.flow = p_flow AND k.scheduled_us = p_at;
    o_status := 0; o_expires_us := cano_us(v_until); o_takeovers := c.takeovers + 1;
    RETURN NEXT;
END $$;

-- The fence in force for a fire: its claim's, else its flow's, else 0.
CREATE FUNCTION cano_current_fence(p_flow text, p_at bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT k.fence FROM cano_fire_claims k WHERE k.flow = p_flow AND k.scheduled_us = p_at),
        (SELECT l.fence FROM cano_ledger_flows l WHERE l.flow = p_flow),
        0)
$$;

CREATE FUNCTION cano_renew(p_flow text, p_at bigint, p_fence bigint, p_lease_us bigint)
RETURNS TABLE (o_ok boolean, o_current bigint, o_expires_us bigint, o_now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
    v_until timestamptz := t + p_lease_us * interval '1 microsecond';
BEGIN
    o_now_us := cano_us(t);
    UPDATE cano_fire_claims k SET lease_until = v_until
     WHERE k.flow = p_flow AND k.scheduled_us = p_at AND k.fence = p_fence
       AND k.state = 0 AND t < k.lease_until;
    IF FOUND THEN
        o_ok := true; o_current := p_fence; o_expires_us := cano_us(v_until);
    ELSE
        o_ok := false; o_current := cano_current_fence(p_flow, p_at);
    END IF;
    RETURN NEXT;
END $$;

CREATE FUNCTION cano_complete(p_flow text, p_at bigint, p_fence bigint, p_outcome smallint)
RETURNS TABLE (o_ok boolean, o_current bigint, o_now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
BEGIN
    o_now_us := cano_us(t);
    UPDATE cano_fire_claims k SET state = 1, outcome = p_outcome, ended_at = t
     WHERE k.flow = p_flow AND k.scheduled_us = p_at AND k.fence = p_fence
       AND k.state = 0 AND t < k.lease_until;
    IF FOUND THEN
        o_ok := true; o_current := p_fence;
    ELSIF EXISTS (SELECT 1 FROM cano_fire_claims k
                   WHERE k.flow = p_flow AND k.scheduled_us = p_at AND k.fence = p_fence
                     AND k.state = 1 AND k.outcome = p_outcome) THEN
        o_ok := true; o_current := p_fence; -- a retried acknowledgement
    ELSE
        o_ok := false; o_current := cano_current_fence(p_flow, p_at);
    END IF;
    RETURN NEXT;
END $$;

CREATE FUNCTION cano_acquire_flow(p_flow text, p_node text, p_lease_us bigint)
RETURNS TABLE (o_owned boolean, o_fence bigint, o_expires_us bigint, o_owner text, o_now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    f cano_ledger_flows%ROWTYPE;
    t timestamptz;
    v_until timestamptz;
BEGIN
    INSERT INTO cano_ledger_flows AS l (flow) VALUES (p_flow) ON CONFLICT DO NOTHING;
    SELECT * INTO f FROM cano_ledger_flows l WHERE l.flow = p_flow FOR UPDATE;
    t := clock_timestamp();
    v_until := t + p_lease_us * interval '1 microsecond';
    o_now_us := cano_us(t);
    IF f.owner IS NOT NULL AND t < f.owner_until THEN
        IF f.owner = p_node THEN
            UPDATE cano_ledger_flows l SET owner_until = v_until WHERE l.flow = p_flow;
            o_owned := true; o_fence := f.owner_fence; o_expires_us := cano_us(v_until);
        ELSE
            o_owned := false; o_owner := f.owner; o_expires_us := cano_us(f.owner_until);
        END IF;
        RETURN NEXT; RETURN;
    END IF;
    UPDATE cano_ledger_flows l
       SET fence = l.fence + 1, owner = p_node, owner_fence = l.fence + 1, owner_until = v_until
     WHERE l.flow = p_flow RETURNING l.fence INTO o_fence;
    o_owned := true; o_expires_us := cano_us(v_until);
    RETURN NEXT;
END $$;

CREATE FUNCTION cano_renew_flow(p_flow text, p_fence bigint, p_lease_us bigint)
RETURNS TABLE (o_ok boolean, o_current bigint, o_expires_us bigint, o_now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
    v_until timestamptz := t + p_lease_us * interval '1 microsecond';
BEGIN
    o_now_us := cano_us(t);
    UPDATE cano_ledger_flows l SET owner_until = v_until
     WHERE l.flow = p_flow AND l.owner_fence = p_fence AND t < l.owner_until;
    IF FOUND THEN
        o_ok := true; o_current := p_fence; o_expires_us := cano_us(v_until);
    ELSE
        o_ok := false;
        o_current := coalesce((SELECT l.fence FROM cano_ledger_flows l WHERE l.flow = p_flow), 0);
    END IF;
    RETURN NEXT;
END $$;

CREATE FUNCTION cano_save_flow(p_flow text, p_fence bigint, p_hash bigint, p_last_fire bigint,
                               p_streak bigint, p_next_eligible bigint, p_paused boolean,
                               p_tripped boolean, p_buffered boolean, p_last_error text)
RETURNS TABLE (o_ok boolean, o_current bigint)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cano_flow_records AS r (flow, fence, schedule_hash, last_fire_us, streak,
        next_eligible_us, paused, tripped, buffered_trigger, last_error, updated_at)
    VALUES (p_flow, p_fence, p_hash, p_last_fire, p_streak, p_next_eligible, p_paused,
        p_tripped, p_buffered, p_last_error, clock_timestamp())
    ON CONFLICT (flow) DO UPDATE SET
        fence = excluded.fence, schedule_hash = excluded.schedule_hash,
        last_fire_us = excluded.last_fire_us, streak = excluded.streak,
        next_eligible_us = excluded.next_eligible_us, paused = excluded.paused,
        tripped = excluded.tripped, buffered_trigger = excluded.buffered_trigger,
        last_error = excluded.last_error, updated_at = excluded.updated_at
    WHERE r.fence <= excluded.fence;
    IF FOUND THEN
        o_ok := true; o_current := p_fence;
    ELSE
        o_ok := false;
        SELECT r.fence INTO o_current FROM cano_flow_records r WHERE r.flow = p_flow;
    END IF;
    RETURN NEXT;
END $$;

CREATE FUNCTION cano_delete_flow(p_flow text, p_fence bigint)
RETURNS TABLE (o_ok boolean, o_current bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.fence INTO o_current FROM cano_flow_records r WHERE r.flow = p_flow FOR UPDATE;
    IF NOT FOUND OR o_current <= p_fence THEN
        DELETE FROM cano_flow_records r WHERE r.flow = p_flow;
        o_ok := true;
    ELSE
        o_ok := false;
    END IF;
    RETURN NEXT;
END $$;
