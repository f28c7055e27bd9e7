-- cano-postgres schema, version 3: a takeover within the flow's overlap limit.
-- cano_take_over with a sixth argument, p_max_live: it refuses (status 6, at the limit) when
-- the flow already holds that many live claims, so a fire taken over while a later fire of
-- its flow runs cannot take the flow past its limit (Skip: at most one run, fleet-wide).
-- The five-argument version stays for older cano-postgres builds sharing the schema.

CREATE FUNCTION cano_take_over(p_flow text, p_at bigint, p_node text, p_lease_us bigint, p_max bigint,
                               p_max_live bigint)
RETURNS TABLE (o_status smallint, o_fence bigint, o_expires_us bigint, o_takeovers bigint,
               o_owner text, o_outcome smallint, o_now_us bigint, o_live bigint)
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
    SELECT count(*) INTO o_live FROM cano_fire_claims k
     WHERE k.flow = p_flow AND k.state = 0 AND t < k.lease_until;
    IF o_live >= p_max_live THEN
        o_status := 6; RETURN NEXT; RETURN;
    END IF;
    UPDATE cano_ledger_flows l SET fence = l.fence + 1 WHERE l.flow = p_flow RETURNING l.fence INTO o_fence;
    UPDATE cano_fire_claims k
       SET fence = o_fence, owner = p_node, takeovers = k.takeovers + 1, lease_until = v_until
     WHERE k.flow = p_flow AND k.scheduled_us = p_at;
    o_status := 0; o_expires_us := cano_us(v_until); o_takeovers := c.takeovers + 1;
    RETURN NEXT;
END $$;
